"""One real local Ray Serve instance (scripts/serve.sh) inside a private network namespace, probed over HTTP.

Split topology with two Retriever replicas: index activation and rollback must reach every replica.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).with_name("serve_probe.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def _config(path: Path) -> Path:
    cfg = yaml.safe_load((REPO / "serving" / "config" / "cpu.yaml").read_text(encoding="utf-8"))
    app = cfg["applications"][0]
    app["args"].update({"topology": "split", "bootstrap": False, "index_poll_s": 0.5})
    small = {"num_cpus": 0}  # five deployments on a 2-core test box
    app["deployments"] = [
        {
            "name": "NluIngress",
            "num_replicas": 1,
            "ray_actor_options": small,
            "user_config": {"max_inflight": 64},
        },
        *(
            {
                "name": n,
                "num_replicas": 1,
                "ray_actor_options": small,
                "user_config": {"max_batch_size": 128, "batch_wait_timeout_s": 0.002},
            }
            for n in ("IntentClassifier", "SentimentClassifier", "Embedder")
        ),  # fmt: skip
        {"name": "Retriever", "num_replicas": 2, "ray_actor_options": small},
    ]
    for d in app["deployments"]:
        d["graceful_shutdown_timeout_s"] = 2
        d["graceful_shutdown_wait_loop_s"] = 0.5
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _in_netns(probe: Path, *args: object, tmp_path: Path, timeout: float = 140) -> dict:
    """Run a probe script inside a private network namespace (Ray binds ports on all interfaces); its result."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare not available")
    # Short (Ray's socket paths must stay under 107 characters) and this run's own: two test runs on one machine
    # (two checkouts) shared /tmp/xk-it-<test name>, and one's cleanup removed the other's Ray session directory.
    ray_tmp = Path("/tmp") / f"xk-it-{os.getpid()}-{tmp_path.name[-12:]}"
    cmd = f"ip link set lo up && exec {sys.executable} {probe} {' '.join(map(str, args))} {ray_tmp}"
    proc = subprocess.run(
        ["unshare", "--net", "--fork", "bash", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    shutil.rmtree(ray_tmp, ignore_errors=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE_RESULT ")), None)
    if line is None and "Operation not permitted" in proc.stderr:
        pytest.skip("cannot create a network namespace here")
    assert line is not None, proc.stderr[-3000:]
    return json.loads(line.removeprefix("PROBE_RESULT "))  # type: ignore[no-any-return]


def test_real_serve_over_http(tiny_model_store: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_model_store, data / "models", ignore=shutil.ignore_patterns("indexes"))
    config = _config(tmp_path / "serve.yaml")
    out = _in_netns(PROBE, data, config, tmp_path=tmp_path)
    assert "exited" not in out, out.get("log_tail")
    assert out["healthz"] == 200 and out["readyz"]["status"] == "ready"
    assert out["readyz"]["models"]["intent"]["provider"] == "CPUExecutionProvider"

    nlu = out["nlu"]
    assert nlu["status"] == 200 and nlu["rid"] == "it-1"
    assert [r["text"] for r in nlu["body"]["results"]] == ["我要退货", "发票怎么开"]
    assert nlu["body"]["model_versions"]["embedder"] == "tiny-1"

    assert out["too_long"]["status"] == 422 and out["too_long"]["body"]["error"]["code"] == "TEXT_TOO_LONG"
    assert out["bad_utf8"]["status"] == 400 and out["bad_utf8"]["body"]["error"]["code"] == "INVALID_ENCODING"

    assert out["build_v1"] == 201 and out["build_v2"] == 201
    again = out["build_again"]  # a ServingError raised in another process keeps its code across Ray
    assert again["status"] == 409 and again["body"]["error"]["code"] == "INDEX_EXISTS"
    assert set(out["after_v2"]) == {"it-v2"}, "every Retriever replica serves the activated version"
    assert out["rollback"] == 200 and set(out["after_rollback"]) == {"it-v1"}
    assert out["indexes"]["active"] == "it-v1"
    assert 'xiaoke_serving_requests_total{code="OK",endpoint="nlu"}' in out["metrics"]
    assert "xiaoke_serving_batch_rows_bucket" in out["metrics"]
    # the same series reach the node's Ray metrics port, which Prometheus scrapes (the replica's own /metrics
    # above is one random replica's view)
    assert {"ray_xiaoke_serving_requests_total", "ray_xiaoke_serving_batch_rows_bucket"} <= set(
        out["cluster_metrics"]
    )


def test_real_serve_keeps_serving_when_a_pinned_bundle_is_refused(
    tiny_model_store: Path, tmp_path: Path
) -> None:
    """A user_config update pinning a tampered intent bundle. Before: reconfigure() raised, Serve stopped the
    (only) replica whose in-place update failed, its replacements failed the same way: DEPLOY_FAILED and every
    /v1/nlu answered 503 until someone deployed again. Now the bundle is refused and the replica keeps serving."""
    from bundle_edits import publish_permuted_intent, tamper

    store = tmp_path / "data" / "models"
    shutil.copytree(tiny_model_store, store, ignore=shutil.ignore_patterns("indexes"))
    tamper(store / "intent" / publish_permuted_intent(store, tmp_path))
    out = _in_netns(PROBE.with_name("reload_probe.py"), store, "tiny-2", 15, tmp_path=tmp_path)
    assert out["before"] == "200 tiny-1"
    assert set(out["during"]) == {"200 tiny-1"}, out["during"]
    assert out["app_status"] == "RUNNING" and out["replicas"] == {"RUNNING": 1}
    intent = out["readyz"]["models"]["intent"]
    assert intent["version"] == "tiny-1" and "BUNDLE_TAMPERED" in intent["load_error"]
