"""ONNX Runtime model runtimes (no Ray): load a verified bundle, tokenize once per batch, run sorted length
buckets to cut padding, post-process (softmax / pooling + L2).

Backend split (pre / core / post): `Encoder` tokenizes, `OnnxModel.run_batches` runs sessions, the classifier
and embedder runtimes post-process. `load_runtime` maps a bundle kind to its runtime class.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bundle.manifest import BundleKind, Manifest
from bundle.normalize import normalize
from bundle.store import verify_bundle
from serving.providers import Device, OrtPlan, open_session, select_ort

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class EncodedBucket:
    """Rows `index` of the original batch, padded to the longest row of this bucket."""

    index: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray


def limit_tokenizer_threads(threads: int) -> None:
    """Give HF tokenizers the replica's thread budget. By default `encode_batch` fans out over a Rayon pool of one
    thread per *machine* core (`os.cpu_count()`: in a pod, the node's cores, not the pod's CPU limit), in every
    replica process, next to the one ORT thread the replica is sized for: oversubscribed cores and throttled
    quotas for no gain on batches of short chat texts. `threads <= 0` (the naive benchmark baseline) keeps the
    library defaults; an explicit TOKENIZERS_PARALLELISM / RAYON_NUM_THREADS in the environment wins."""
    if threads <= 0:
        return
    if threads == 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # read per call: no pool at all
    else:
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))  # read when the pool starts (first batch)


class Encoder:
    """A `tokenizers.Tokenizer` (adds [CLS]/[SEP]) with truncation to the bundle's max_seq_len; we pad per bucket."""

    def __init__(
        self, tokenizer_path: Path, max_seq_len: int, pad_id: int | None = None, threads: int = 1
    ) -> None:
        from tokenizers import Tokenizer

        limit_tokenizer_threads(threads)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_seq_len)
        if pad_id is None:
            pad_id = self.tokenizer.token_to_id("[PAD]")
        self.pad_id = int(pad_id or 0)

    def encode(self, texts: Sequence[str], bucket_size: int) -> tuple[list[EncodedBucket], int, int]:
        """Tokenize once, sort by length, cut into buckets of `bucket_size`. Returns buckets, real, padded tokens."""
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        order = np.argsort(lengths, kind="stable")
        buckets: list[EncodedBucket] = []
        padded = 0
        for start in range(0, len(order), max(1, bucket_size)):
            idx = order[start : start + bucket_size]
            width = int(lengths[idx].max())
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encs[int(i)]
                n = len(e.ids)
                ids[row, :n] = e.ids
                mask[row, :n] = 1
                types[row, :n] = e.type_ids
            padded += len(idx) * width
            buckets.append(EncodedBucket(idx, ids, mask, types))
        return buckets, int(lengths.sum()), padded


@dataclass
class RunStats:
    rows: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    tokenize_s: float = 0.0
    infer_s: float = 0.0


class OnnxModel:
    """One verified bundle + one ORT session chosen by the provider-selection point."""

    kind: BundleKind

    def __init__(
        self,
        bundle_dir: Path,
        *,
        device: Device = Device.AUTO,
        intra_op_threads: int = 1,
        bucket_size: int = 32,
        available_providers: Sequence[str] | None = None,
    ) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.manifest: Manifest = verify_bundle(self.bundle_dir)
        variants = set(self.manifest.variants)
        self.plan: OrtPlan
        self.session, self.plan = open_session(
            lambda v: str(self.bundle_dir / self.manifest.model_file(v)),
            select_ort(device, variants, available_providers),
            variants,
            intra_op_threads,
        )
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.encoder = Encoder(
            self.bundle_dir / TOKENIZER_FILE, self.manifest.max_seq_len, threads=intra_op_threads
        )
        self.bucket_size = bucket_size
        log.info(
            "loaded %s %s variant=%s provider=%s threads=%d",
            self.manifest.kind.value,
            self.manifest.version,
            self.plan.variant.value,
            self.plan.provider,
            intra_op_threads,
        )

    @property
    def version(self) -> str:
        return self.manifest.version

    def normalize(self, texts: Sequence[str]) -> list[str]:
        return [normalize(t, self.manifest.normalize) for t in texts]

    def _feeds(self, b: EncodedBucket) -> dict[str, np.ndarray]:
        feeds = {
            "input_ids": b.input_ids,
            "attention_mask": b.attention_mask,
            "token_type_ids": b.token_type_ids,
        }
        return {k: v for k, v in feeds.items() if k in self._input_names}

    def run_batches(self, normalized: Sequence[str], output: str | None = None) -> tuple[list[Any], RunStats]:
        """Tokenize once, run every bucket; returns per-bucket (bucket, first output) in bucket order."""
        stats = RunStats(rows=len(normalized))
        t0 = time.perf_counter()
        buckets, stats.real_tokens, stats.padded_tokens = self.encoder.encode(normalized, self.bucket_size)
        t1 = time.perf_counter()
        outs = []
        names = [output] if output else None
        for b in buckets:
            outs.append((b, self.session.run(names, self._feeds(b))[0]))
        stats.tokenize_s = t1 - t0
        stats.infer_s = time.perf_counter() - t1
        return outs, stats


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


class ClassifierRuntime(OnnxModel):
    """Intent / sentiment: logits -> probabilities (n, num_labels) in the manifest's label order."""

    def predict(self, normalized: Sequence[str]) -> tuple[np.ndarray, RunStats]:
        n_labels = len(self.manifest.labels)
        probs = np.zeros((len(normalized), n_labels), dtype=np.float32)
        if not normalized:
            return probs, RunStats()
        outs, stats = self.run_batches(normalized)
        for b, logits in outs:
            probs[b.index] = softmax(np.asarray(logits, dtype=np.float32))
        return probs, stats


class EmbedderRuntime(OnnxModel):
    """Sentence embeddings, L2-normalized. Uses a pooled 2-D output when the model has one (e.g.
    `sentence_embedding`); otherwise mean-pools the 3-D token embeddings with the attention mask
    (manifest `pooling: mean`)."""

    def __init__(self, bundle_dir: Path, **kwargs: Any) -> None:
        super().__init__(bundle_dir, **kwargs)
        outputs = self.session.get_outputs()
        wanted = getattr(self.manifest, "embedding_output", None) or "sentence_embedding"
        pooled = [o for o in outputs if len(o.shape) == 2]
        choice = next((o for o in pooled if o.name == wanted), pooled[0] if pooled else None)
        self._pooled_output: str | None = choice.name if choice is not None else None
        token_out = [o for o in outputs if len(o.shape) == 3]
        self._token_output: str | None = token_out[0].name if token_out else None
        if self._pooled_output is None and self._token_output is None:
            raise ValueError("embedder has neither a pooled nor a token-embedding output")
        self.dim = int(self.manifest.embedding_dim or 0)

    def embed(self, normalized: Sequence[str]) -> tuple[np.ndarray, RunStats]:
        if not normalized:
            return np.zeros((0, self.dim), dtype=np.float32), RunStats()
        use_pooled = self._pooled_output is not None
        outs, stats = self.run_batches(normalized, self._pooled_output or self._token_output)
        result: np.ndarray | None = None
        for b, out in outs:
            out = np.asarray(out, dtype=np.float32)
            if not use_pooled:
                mask = b.attention_mask[..., None].astype(np.float32)
                out = (out * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if result is None:
                result = np.zeros((len(normalized), out.shape[-1]), dtype=np.float32)
            result[b.index] = out
        assert result is not None
        result /= np.maximum(np.linalg.norm(result, axis=1, keepdims=True), 1e-12)
        self.dim = result.shape[1]
        return result, stats


RUNTIMES: dict[BundleKind, type[OnnxModel]] = {
    BundleKind.INTENT: ClassifierRuntime,
    BundleKind.SENTIMENT: ClassifierRuntime,
    BundleKind.EMBEDDER: EmbedderRuntime,
}


def load_runtime(kind: BundleKind, bundle_dir: Path, **kwargs: Any) -> OnnxModel:
    runtime = RUNTIMES[kind](bundle_dir, **kwargs)
    if runtime.manifest.kind is not kind:
        raise ValueError(
            f"bundle at {bundle_dir} is a {runtime.manifest.kind.value} bundle, not {kind.value}"
        )
    return runtime
