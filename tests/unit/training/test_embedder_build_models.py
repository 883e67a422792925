"""training.build_models no-op rule: the inputs hash and the stamp check (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundle.manifest import BundleKind, Manifest, Variant
from bundle.store import ModelStore, write_manifest
from training import build_models as bm


def test_inputs_hash_tracks_recipe_and_pretrain_choice() -> None:
    a, parts = bm.inputs_hash(bm.Recipe(), "auto")
    assert a == bm.inputs_hash(bm.Recipe(), "auto")[0]
    assert a != bm.inputs_hash(bm.Recipe(intent_epochs=9.0), "auto")[0]
    assert a != bm.inputs_hash(bm.Recipe(), "no")[0]
    assert "data/demo/intents/train.jsonl" in parts and "training/embedder.py" in parts
    assert "serving/retrieval/fusion.py" in parts  # thresholds are calibrated on the serving scorer


def test_inputs_hash_tracks_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data" / "demo" / "intents"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text('{"text": "你好", "label": "greeting"}\n', encoding="utf-8")
    monkeypatch.setattr(bm, "REPO", tmp_path)
    before = bm.inputs_hash(bm.Recipe(), "auto")[0]
    (data / "train.jsonl").write_text('{"text": "您好", "label": "greeting"}\n', encoding="utf-8")
    assert bm.inputs_hash(bm.Recipe(), "auto")[0] != before


def _publish_fake(store: ModelStore, tmp: Path, kind: BundleKind, version: str) -> None:
    d = tmp / f"{kind.value}-{version}"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"fake " + kind.value.encode())
    write_manifest(
        d, Manifest(kind=kind, version=version, source_checkpoint="x", variants={Variant.FP32: "model.onnx"})
    )
    store.publish(d)


def test_up_to_date_needs_matching_hash_live_versions_and_intact_bundles(tmp_path: Path) -> None:
    root = tmp_path / "models"
    store = ModelStore(root)
    for kind in BundleKind:
        _publish_fake(store, tmp_path, kind, "v1")
    assert not bm.up_to_date(root, "abc")  # no stamp yet
    versions = {k.value: "v1" for k in BundleKind}
    (root / bm.STAMP).write_text(json.dumps({"inputs_sha256": "abc", "versions": versions}), encoding="utf-8")
    assert bm.up_to_date(root, "abc")
    assert not bm.up_to_date(root, "changed")

    _publish_fake(store, tmp_path, BundleKind.INTENT, "v2")  # someone made another version LIVE
    assert not bm.up_to_date(root, "abc")
    store.set_live(BundleKind.INTENT, "v1")
    assert bm.up_to_date(root, "abc")
    (store.resolve(BundleKind.SENTIMENT) / "model.onnx").write_bytes(b"tampered")
    assert not bm.up_to_date(root, "abc")


def test_build_is_a_noop_when_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "models"
    store = ModelStore(root)
    for kind in BundleKind:
        _publish_fake(store, tmp_path, kind, "v1")
    digest = bm.inputs_hash(bm.Recipe(), "auto")[0]
    stamp = {"inputs_sha256": digest, "versions": {k.value: "v1" for k in BundleKind}}
    (root / bm.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    said: list[str] = []
    out = bm.build(root, say=said.append)  # would train for minutes if it were not a no-op
    assert out["versions"] == stamp["versions"]
    assert any("nothing to do" in s for s in said)


def _manifest(kind: BundleKind, version: str, metrics: dict) -> Manifest:
    return Manifest(kind=kind, version=version, source_checkpoint="x", metrics=metrics)


def test_gate_floor_regression_and_first_publish(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    ok = _manifest(BundleKind.INTENT, "v2", {"accuracy": 0.9})
    assert bm.gate(store, ok) is None  # nothing live yet
    low = _manifest(BundleKind.INTENT, "v2", {"accuracy": 0.08})
    assert "floor" in (bm.gate(store, low) or "")
    missing = _manifest(BundleKind.EMBEDDER, "v2", {})
    assert "faq_val_hybrid.recall_at_1" in (bm.gate(store, missing) or "")

    d = tmp_path / "live"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"x")
    write_manifest(
        d,
        _manifest(BundleKind.INTENT, "v1", {"accuracy": 0.95}).model_copy(
            update={"variants": {Variant.FP32: "model.onnx"}}
        ),
    )
    store.publish(d)
    worse = _manifest(BundleKind.INTENT, "v2", {"accuracy": 0.90})
    assert "worse than LIVE v1" in (bm.gate(store, worse) or "")
    assert bm.gate(store, worse, allow_regression=True) is None
    assert bm.gate(store, _manifest(BundleKind.INTENT, "v2", {"accuracy": 0.94})) is None  # within tolerance
    # trained on other data: its validation split is another set, so only the floor applies
    other_data = worse.model_copy(update={"training_data_sha256": "f" * 64})
    assert bm.gate(store, other_data) is None
    assert "floor" in (bm.gate(store, low.model_copy(update={"training_data_sha256": "f" * 64})) or "")
    emb = _manifest(BundleKind.EMBEDDER, "v2", {"faq_val_hybrid": {"recall_at_1": 0.7}})
    assert bm.quality_of(emb) == 0.7 and bm.gate(store, emb) is None
