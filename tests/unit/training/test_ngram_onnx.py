"""The n-gram-branch model exports to ONNX with the plain BERT classifier interface and ORT matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")


def test_export_onnx_parity(tmp_path):
    from training.ngram_model import (
        XiaokeBertNgramConfig,
        XiaokeBertNgramForSequenceClassification,
        export_onnx,
    )

    cfg = XiaokeBertNgramConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=4,
        ngram_buckets=509,
    )
    torch.manual_seed(0)
    model = XiaokeBertNgramForSequenceClassification(cfg).eval()
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
