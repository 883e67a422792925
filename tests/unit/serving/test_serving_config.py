"""The Serve config profiles parse as Ray's ServeDeploySchema and match what build_app builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from serving.settings import IngressUserConfig, ModelUserConfig, ServingArgs, Topology

CONFIG_DIR = Path(__file__).resolve().parents[3] / "serving" / "config"
NAMES = {
    Topology.FUSED: {"NluIngress"},
    Topology.SPLIT: {"NluIngress", "IntentClassifier", "SentimentClassifier", "Embedder", "Retriever"},
}


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_profile_is_a_valid_serve_config(profile: str) -> None:
    raw = yaml.safe_load((CONFIG_DIR / f"{profile}.yaml").read_text(encoding="utf-8"))
    cfg = ServeDeploySchema.model_validate(raw)
    assert cfg.http_options.host == "127.0.0.1" and cfg.http_options.port == 8001
    (app,) = cfg.applications
    assert app.import_path == "serving.app:build_app"
    args = ServingArgs.model_validate(app.args)
    assert args.device == profile
    topology = args.topology or Topology.FUSED
    deployments = {d.name: d for d in app.deployments}
    assert set(deployments) <= NAMES[topology]
    for name, d in deployments.items():
        if name == "NluIngress":
            IngressUserConfig.model_validate(d.user_config or {})
        elif name != "Retriever":
            ModelUserConfig.model_validate(d.user_config or {})
        if profile == "gpu" and name != "NluIngress":
            assert (d.ray_actor_options.num_gpus or 0) > 0, name


def test_user_config_bounds() -> None:
    with pytest.raises(ValueError):
        ModelUserConfig(max_batch_size=32)  # must hold one full request (64 texts)
    with pytest.raises(ValueError):
        ModelUserConfig(shadow_sample_rate=1.5)
    with pytest.raises(ValueError):
        IngressUserConfig.model_validate({"models": {"intent": {"bogus": 1}}})


def test_args_fall_back_to_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XIAOKE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SERVING_MAX_INFLIGHT", "7")
    s = ServingArgs(topology="split").settings()
    assert s.model_store == tmp_path / "models" and s.index_root == tmp_path / "models" / "indexes"
    assert s.jieba_cache_dir == tmp_path / "cache" / "jieba"
    assert s.max_inflight == 7 and s.topology is Topology.SPLIT
    assert ServingArgs(max_inflight=3).settings().max_inflight == 3  # explicit args beat the environment


def test_a_misspelt_model_kind_in_user_config_is_refused() -> None:
    """`models: {intnet: {bundle_version: v2}}` passed validation (and make validate-deploy) and was ignored at
    reconfigure: the operator believed v2 was pinned while every replica kept the old bundle."""
    with pytest.raises(ValueError):
        IngressUserConfig.model_validate({"models": {"intnet": {"bundle_version": "intent-v2"}}})
    cfg = IngressUserConfig.model_validate({"models": {"intent": {"bundle_version": "intent-v2"}}})
    assert cfg.models["intent"].bundle_version == "intent-v2"
