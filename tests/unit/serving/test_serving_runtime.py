"""Tokenize-once length bucketing and post-processing (a tiny in-test tokenizer; no model files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.runtime import Encoder, softmax


@pytest.fixture
def encoder(tmp_path: Path) -> Encoder:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {
        "[PAD]": 0,
        "[UNK]": 1,
        "[CLS]": 2,
        "[SEP]": 3,
        **{ch: i + 4 for i, ch in enumerate("我要退货快递发票怎么开")},
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return Encoder(path, max_seq_len=6)


def test_buckets_sorted_by_length_and_padded_per_bucket(encoder: Encoder) -> None:
    texts = ["我要退货快递发票", "我", "快递", "我要退", "发", "怎么开"]
    buckets, real, padded = encoder.encode(texts, bucket_size=2)
    assert sorted(int(i) for b in buckets for i in b.index) == list(range(len(texts)))
    widths = [b.input_ids.shape[1] for b in buckets]
    assert widths == sorted(widths) and widths[-1] == 6  # truncated to max_seq_len
    assert widths[0] == 3  # [CLS] x [SEP]: short texts are not padded to the longest one
    assert real == sum(int(b.attention_mask.sum()) for b in buckets)
    assert padded == sum(b.input_ids.size for b in buckets) and padded >= real
    first = buckets[0]
    assert first.input_ids[0, 0] == 2 and (first.input_ids[first.attention_mask == 0] == 0).all()


def test_bucketing_cuts_padding_vs_one_batch(encoder: Encoder) -> None:
    texts = ["我"] * 8 + ["我要退货快递发票"] * 2
    _, real, sorted_padded = encoder.encode(texts, bucket_size=4)
    _, _, one_batch_padded = encoder.encode(texts, bucket_size=len(texts))
    assert sorted_padded < one_batch_padded
    assert real <= sorted_padded


def test_softmax_rows_sum_to_one() -> None:
    p = softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[1, 0] == pytest.approx(1.0)


_THREADS_PROBE = """
import os, sys
from pathlib import Path
from serving.providers import Device
from serving.runtime import ClassifierRuntime

rt = ClassifierRuntime(Path(sys.argv[1]), device=Device.CPU, intra_op_threads=1)
before = len(os.listdir("/proc/self/task"))
rt.predict(rt.normalize(["我想问一下我的订单什么时候能发货"] * 256))
print("THREADS_ADDED", len(os.listdir("/proc/self/task")) - before)
"""


def test_a_one_thread_replica_does_not_start_a_tokenizer_thread_pool(tiny_model_store: Path) -> None:
    """HF tokenizers' encode_batch started a Rayon pool of one thread per machine core (a pod sees the node's
    cores) in every replica, beside the one ORT thread a replica is sized for. A fresh process, since the pool
    lives for the process once started."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS")}
    bundle = tiny_model_store / "intent" / (tiny_model_store / "intent" / "LIVE").read_text().strip()
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE, str(bundle)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("THREADS_ADDED")), None)
    assert line is not None, out.stderr[-2000:]
    assert int(line.split()[1]) == 0
