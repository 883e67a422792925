"""training.embedder end to end at toy size: train -> sentence-transformers dir + meta -> export -> benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bundle.manifest import BundleKind
from export import export_bundle
from training.embedder import DEFAULT_FAQ, EmbedderConfig, ScratchArch, load_faq, train_embedder


@pytest.fixture(scope="module")
def toy_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("emb")
    entries = [
        json.loads(line) for line in DEFAULT_FAQ.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    faq = tmp / "faq.jsonl"
    faq.write_text(
        "\n".join(json.dumps(e, ensure_ascii=False) for e in entries[:40]) + "\n", encoding="utf-8"
    )
    pairs = tmp / "pairs.tsv"
    pairs.write_text("怎么改地址\t地址填错了怎么改\t1\n发票怎么开\t退货运费\t0\n", encoding="utf-8")
    cfg = EmbedderConfig(
        epochs=2.0,
        batch_size=16,
        max_len=24,
        threads=1,
        cosent_weight=1.0,
        arch=ScratchArch(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64),
    )
    res = train_embedder(
        tmp / "out", pair_files=[pairs], faq=faq, base="none", config=cfg, on_log=lambda m: None
    )
    return res.out_dir


def test_checkpoint_layout_and_meta(toy_embedder: Path) -> None:
    meta = json.loads((toy_embedder / "xiaoke_training.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "embedder" and meta["pooling"] == "mean"
    assert (toy_embedder / "modules.json").is_file() and (toy_embedder / "tokenizer.json").is_file()
    t = meta["thresholds"]
    assert 0.3 <= t["suggest"] <= t["answer"] <= 0.99
    assert "answer_agree" in t and (t["answer_agree"] is None or t["suggest"] <= t["answer_agree"])
    assert meta["metrics"]["train_pairs"] > 40 and meta["metrics"]["steps"] >= 1
    assert meta["training_data"]["pair_files"][0]["positives"] == 1
    assert meta["metrics"]["train_labelled_rows"] == 2  # the CoSENT term saw the label-0 row too
    assert "CoSENT" in meta["recipe"]["loss"]
    assert meta["metrics"]["faq_val_hybrid"]["n"] == 40
    held = sum(len(e.heldout) for e in load_faq(toy_embedder.parent / "faq.jsonl"))
    assert meta["metrics"]["faq_heldout_hybrid"]["n"] == held


def test_export_and_benchmark(toy_embedder: Path, tmp_path: Path) -> None:
    from training.benchmarks.retrieval import OnnxEncoder, RetrievalTask, TorchEncoder, evaluate

    m = export_bundle(toy_embedder, tmp_path / "bundle", version="toy-1")
    assert m.kind is BundleKind.EMBEDDER and m.parity.passed and m.embedding_dim == 32
    assert m.thresholds.answer is not None and m.thresholds.suggest is not None

    torch_enc, onnx_enc = TorchEncoder(toy_embedder), OnnxEncoder(tmp_path / "bundle")
    texts = ["退货运费谁出", "发票怎么开", "我的快递到哪了"]
    a, b = torch_enc.encode(texts), onnx_enc.encode(texts)
    assert np.min(np.sum(a * b, axis=1)) > 0.99  # int8 bundle ~ PyTorch

    docs = ["退货运费谁承担", "怎么开发票", "快递多久到"]
    task = RetrievalTask(docs, ["退货运费谁出", "发票怎么开", "快递多久能到"], [{0}, {1}, {2}], [-1, -1, -1])
    result = evaluate(task, onnx_enc)
    for system in ("dense", "keyword", "hybrid"):
        assert set(result[system]) == {"recall_at_1", "recall_at_5", "mrr_at_10"}
        assert 0.0 <= result[system]["recall_at_1"] <= result[system]["recall_at_5"] <= 1.0
    # dense and hybrid rank every document (only 3); keyword ranks only documents sharing a word
    assert result["dense"]["recall_at_5"] == result["hybrid"]["recall_at_5"] == 1.0
    assert result["keyword"]["recall_at_1"] == 1.0  # each query shares its answer's key words
    assert result["n_docs"] == 3 and result["n_queries"] == 3
