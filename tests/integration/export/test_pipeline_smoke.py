"""End to end: train a tiny model -> export -> parity -> verify -> tamper one byte -> verify refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bundle.manifest import BundleKind, Variant
from bundle.normalize import normalize
from bundle.store import BundleError, ModelStore, verify_bundle
from export import ExportError, export_bundle
from export import parity as parity_mod
from tests.fixtures.bundles import (
    DEMO,
    SENTIMENTS,
    STEPS,
    _labelled,
    _pairs,
    export_through_gate,
    train_tiny_classifier,
    train_tiny_embedder,
)

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def sentiment_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = _labelled(DEMO / "sentiment" / "train.jsonl", SENTIMENTS)
    return train_tiny_classifier("sentiment", SENTIMENTS, rows, tmp_path_factory.mktemp("ckpt") / "sentiment")


def _ort_logits(bundle_dir: Path, variant: Variant, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    manifest = verify_bundle(bundle_dir)
    tok = Tokenizer.from_file(str(bundle_dir / "tokenizer.json"))
    sess = ort.InferenceSession(
        str(bundle_dir / manifest.model_file(variant)), providers=["CPUExecutionProvider"]
    )
    names = {i.name for i in sess.get_inputs()}
    out = []
    for text in texts:
        enc = tok.encode(normalize(text, manifest.normalize))
        feed = {
            "input_ids": np.array([enc.ids[: manifest.max_seq_len]], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask[: manifest.max_seq_len]], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids[: manifest.max_seq_len]], dtype=np.int64),
        }
        out.append(sess.run(None, {k: v for k, v in feed.items() if k in names})[0][0])
    return np.stack(out)


def test_classifier_export_verify_tamper(sentiment_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    manifest = export_bundle(sentiment_checkpoint, out, version="smoke-1")

    # manifest carries the training metadata and passing parity figures within the named tolerances
    assert manifest.kind is BundleKind.SENTIMENT
    assert manifest.labels == SENTIMENTS
    assert set(manifest.variants) == {Variant.FP32, Variant.INT8}
    assert manifest.parity.passed
    assert manifest.parity.sentences >= parity_mod.MIN_SENTENCES
    assert manifest.parity.fp32_max_abs_diff is not None
    assert manifest.parity.fp32_max_abs_diff <= parity_mod.FP32_MAX_ABS_DIFF
    assert manifest.parity.int8_top1_agreement is not None
    assert manifest.parity.int8_top1_agreement >= parity_mod.INT8_MIN_TOP1_AGREEMENT
    assert manifest.training_data_sha256
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json"} <= set(manifest.files)
    sizes = manifest.metrics["export"]["onnx_size_bytes"]
    assert sizes["int8"] * 3 <= sizes["fp32"]

    # the bundle runs standalone (tokenizers + ORT, no torch) and its outputs depend on the input
    texts = ["太失望了，质量这么差", "非常满意，物流很快，好评", "请问什么时候发货"]
    logits = _ort_logits(out, Variant.FP32, texts)
    assert logits.shape == (3, 3)
    assert not np.allclose(logits[0], logits[1])
    int8 = _ort_logits(out, Variant.INT8, texts)
    assert np.array_equal(int8.argmax(1), logits.argmax(1))

    ok = _cli("verify", str(out))
    assert ok.returncode == 0, ok.stderr
    assert "smoke-1" in ok.stdout

    # flip one byte in the int8 model: verify must refuse, naming the file
    target = out / "model.int8.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        verify_bundle(out)
    assert err.value.code == "BUNDLE_TAMPERED"
    bad = _cli("verify", str(out))
    assert bad.returncode == 1
    assert "BUNDLE_TAMPERED" in bad.stderr and "model.int8.onnx" in bad.stderr
    assert "Traceback" not in bad.stderr

    # a tampered bundle cannot be published
    with pytest.raises(BundleError):
        ModelStore(tmp_path / "store").publish(out)


def test_cli_bundle_and_publish(sentiment_checkpoint: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    res = _cli(
        "bundle", "--checkpoint", str(sentiment_checkpoint), "--out", str(tmp_path / "b"), "--version", "cli-1",
        "--no-int8", "--fp16", "--publish", str(store),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["version"] == "cli-1" and summary["parity"]["passed"] is True
    s = ModelStore(store)
    assert s.live_version(BundleKind.SENTIMENT) == "cli-1"
    m = verify_bundle(s.resolve(BundleKind.SENTIMENT))
    assert set(m.variants) == {Variant.FP32, Variant.FP16}
    assert m.parity.fp16_max_abs_diff is not None and m.parity.fp16_max_abs_diff < 0.05

    # publish the same bundle again under --no-live into a second store: LIVE untouched there
    other = tmp_path / "store2"
    res2 = _cli("publish", str(tmp_path / "b"), "--store", str(other), "--no-live")
    assert res2.returncode == 0, res2.stderr
    assert ModelStore(other).versions(BundleKind.SENTIMENT) == ["cli-1"]
    assert ModelStore(other).live_version(BundleKind.SENTIMENT) is None
    again = _cli("publish", str(tmp_path / "b"), "--store", str(other))
    assert again.returncode == 1 and "BUNDLE_EXISTS" in again.stderr


def test_parity_gate_failure_leaves_nothing(
    sentiment_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parity_mod, "FP32_MAX_ABS_DIFF", -1.0)  # impossible: every export must fail
    out = tmp_path / "bundle"
    with pytest.raises(ExportError) as err:
        export_bundle(sentiment_checkpoint, out, quantize=False)
    assert err.value.code == "PARITY_FAILED"
    assert "fp32" in err.value.message
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind

    forced = export_bundle(sentiment_checkpoint, out, quantize=False, allow_parity_failure=True)
    assert forced.parity.passed is False
    assert verify_bundle(out).parity.model_dump()["failures"]


def test_ngram_classifier_export(tmp_path: Path) -> None:
    """training.ngram_model's BERT + in-graph n-gram classifier exports with plain BERT inputs and passes parity."""
    rows = _labelled(DEMO / "sentiment" / "train.jsonl", SENTIMENTS)
    ckpt = tmp_path / "ckpt"
    export_through_gate(
        lambda steps: train_tiny_classifier("sentiment", SENTIMENTS, rows, ckpt, ngram=True, steps=steps),
        tmp_path / "bundle",
        STEPS,
        "ngram-1",
    )
    m = verify_bundle(tmp_path / "bundle")
    assert m.parity.passed
    assert (
        m.parity.fp32_max_abs_diff is not None and m.parity.fp32_max_abs_diff <= parity_mod.FP32_MAX_ABS_DIFF
    )
    logits = _ort_logits(tmp_path / "bundle", Variant.FP32, ["太失望了", "非常满意"])
    from training.ngram_model import load_classifier_model

    torch_model = load_classifier_model(ckpt).eval()
    # the n-gram head is part of the graph: ONNX logits equal the full model's, not BERT's head alone
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    with torch.inference_mode():
        ref = [
            torch_model(**tok(normalize(t), return_tensors="pt")).logits[0].numpy()
            for t in ["太失望了", "非常满意"]
        ]
    assert np.allclose(logits, np.stack(ref), atol=1e-4)


def test_embedder_export_outputs_normalized_mean_pooled(tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    ckpt = train_tiny_embedder(_pairs()[:200], tmp_path / "ckpt")
    out = tmp_path / "bundle"
    m = export_bundle(ckpt, out, version="emb-1")
    assert m.kind is BundleKind.EMBEDDER
    assert m.pooling == "mean" and m.embedding_output == "sentence_embedding" and m.embedding_normalized
    assert m.embedding_dim == 32
    assert m.parity.int8_min_cosine is not None and m.parity.int8_min_cosine >= parity_mod.INT8_MIN_COSINE
    assert m.parity.int8_mean_cosine is not None and m.parity.int8_mean_cosine >= m.parity.int8_min_cosine

    texts = ["我要退货", "快递到哪了"]
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    encs = tok.encode_batch([normalize(t, m.normalize) for t in texts])
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    names = {i.name for i in sess.get_inputs()}
    token_emb, sent = sess.run(
        ["token_embeddings", "sentence_embedding"], {k: v for k, v in feed.items() if k in names}
    )
    assert np.allclose(np.linalg.norm(sent, axis=1), 1.0, atol=1e-5)
    # serving may equally pool token_embeddings itself: same result
    pooled = (token_emb * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.allclose(pooled, sent, atol=1e-5)
    ref = SentenceTransformer(str(ckpt), device="cpu").encode(
        [normalize(t, m.normalize) for t in texts], convert_to_tensor=True
    )
    assert torch.allclose(ref, torch.from_numpy(sent), atol=1e-4)


def test_tiny_model_store_fixture(tiny_model_store: Path) -> None:
    store = ModelStore(tiny_model_store)
    for kind in BundleKind:
        m = verify_bundle(store.resolve(kind))
        assert m.parity.passed
        assert Variant.INT8 in m.variants
    assert len(verify_bundle(store.resolve(BundleKind.INTENT)).labels) == 16
    assert verify_bundle(store.resolve(BundleKind.SENTIMENT)).labels == SENTIMENTS
