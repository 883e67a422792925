"""The n-gram-branch model exports to ONNX with the plain BERT classifier interface and ORT matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")


def tiny_ngram_model(num_labels: int, ngram_buckets: int):
    from training.ngram_model import XiaokeBertNgramConfig, XiaokeBertNgramForSequenceClassification

    cfg = XiaokeBertNgramConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=num_labels,
        ngram_buckets=ngram_buckets,
    )
    return XiaokeBertNgramForSequenceClassification(cfg)


def test_export_onnx_parity(tmp_path):
    from training.ngram_model import export_onnx

    torch.manual_seed(0)
    model = tiny_ngram_model(4, 509).eval()
    torch.nn.init.normal_(model.ngram.weight)
    with torch.no_grad():
        model.ngram.weight[0].zero_()
    model.save_pretrained(str(tmp_path / "ckpt"))
    path = export_onnx(tmp_path / "ckpt", tmp_path / "model.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    rng = np.random.default_rng(0)
    for batch, length in ((1, 3), (3, 11), (5, 30)):
        ids = rng.integers(5, 60, size=(batch, length)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[0, length // 2 :] = 0  # padding in the first row
        ids[0, length // 2 :] = 0
        types = np.zeros_like(ids)
        got = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        with torch.no_grad():
            want = model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
            ).logits.numpy()
        assert np.abs(got - want).max() < 1e-4


def test_ngram_model_initialises_its_own_parameter_and_buffers():
    """from_pretrained(plain BERT) allocates ngram_bias / ngram_idf / bert_weight uninitialised (seen: 4.5e30
    in the bias) and calls _init_weights on the model itself for them."""
    model = tiny_ngram_model(3, 64)
    with torch.no_grad():
        model.ngram_bias.fill_(float("nan"))
        model.ngram_idf.fill_(4.5e30)
        model.bert_weight.fill_(float("nan"))
    model._init_weights(model)
    assert bool((model.ngram_bias == 0).all()) and bool((model.ngram_idf == 1).all())
    assert float(model.bert_weight) == 1.0
