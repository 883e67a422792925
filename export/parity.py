"""Parity of the exported ONNX variants against the PyTorch checkpoint on fixed Chinese sentences.

Both sides see the exact same token ids (normalized with the checkpoint's NormalizeConfig, tokenized once,
padded per batch so the attention mask is exercised). Named tolerances, gated by :func:`check_gates`:

* fp32: max |logit or embedding difference| <= ``FP32_MAX_ABS_DIFF``
* int8 classifiers: top-1 agreement >= ``INT8_MIN_TOP1_AGREEMENT``
* int8 embedders: minimum cosine(int8, PyTorch) >= ``INT8_MIN_COSINE`` (mean is reported too)
* fp16 (a CUDA variant): measured on CPU when ORT can run it and reported, not gated.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bundle.manifest import BundleKind, Parity, Variant
from bundle.normalize import NormalizeConfig, normalize
from export.onnx_tools import CLASSIFIER_OUTPUT, EMBEDDING_OUTPUT

FP32_MAX_ABS_DIFF = 1e-4
INT8_MIN_TOP1_AGREEMENT = 0.99
INT8_MIN_COSINE = 0.99
MIN_SENTENCES = 50
BATCH = 16


def load_parity_sentences(path: Path | None = None) -> list[str]:
    """The fixed parity set (export/parity_sentences.txt), or lines of `path`. '#' lines are comments."""
    if path is None:
        text = resources.files("export").joinpath("parity_sentences.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _encode(tokenizer: Any, texts: Sequence[str], max_len: int) -> dict[str, np.ndarray]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_len, padding=True, return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


class _TorchReference:
    def __init__(self, checkpoint: Path, kind: BundleKind) -> None:
        self.kind = kind
        if kind.is_classifier:
            from export.checkpoint import load_torch_classifier

            self.model = load_torch_classifier(checkpoint)
        else:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(str(checkpoint), device="cpu", local_files_only=True).eval()

    def __call__(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        tensors = {k: torch.from_numpy(v) for k, v in feats.items()}
        with torch.inference_mode():
            if self.kind.is_classifier:
                out = self.model(**tensors).logits
            else:
                out = self.model(tensors)["sentence_embedding"]
        return out.float().numpy()


class _OrtModel:
    def __init__(self, path: Path, kind: BundleKind) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.output = CLASSIFIER_OUTPUT if kind.is_classifier else EMBEDDING_OUTPUT

    def __call__(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v for k, v in feats.items() if k in self.inputs}
        for name in self.inputs - feed.keys():
            if name == "token_type_ids":
                feed[name] = np.zeros_like(feats["input_ids"])
        (out,) = self.session.run([self.output], feed)
        return np.asarray(out, dtype=np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)


def measure_parity(
    checkpoint: Path,
    kind: BundleKind,
    tokenizer: Any,
    models: dict[Variant, Path],
    sentences: Sequence[str],
    *,
    max_seq_len: int,
    normalize_config: NormalizeConfig,
) -> Parity:
    """Run PyTorch and every ONNX variant on `sentences`; return the figures (gates not applied)."""
    texts = [normalize(s, normalize_config) for s in sentences]
    feats = [_encode(tokenizer, texts[sl], max_seq_len) for sl in _batches(len(texts), BATCH)]
    ref_model = _TorchReference(checkpoint, kind)
    ref = np.concatenate([ref_model(f) for f in feats])
    del ref_model
    extra: dict[str, Any] = {"tolerances": tolerances()}
    result = Parity(sentences=len(texts))
    for variant, path in models.items():
        try:
            onnx_model = _OrtModel(path, kind)
        except Exception as exc:  # fp16 graphs may have no CPU kernels for some ops
            if variant is Variant.FP16:
                extra["fp16_checked_on_cpu"] = False
                extra["fp16_cpu_error"] = type(exc).__name__
                continue
            raise
        out = np.concatenate([onnx_model(f) for f in feats])
        diff = float(np.max(np.abs(out - ref)))
        if variant is Variant.FP32:
            result.fp32_max_abs_diff = diff
            extra["output_dim"] = int(out.shape[-1])
            if not kind.is_classifier:
                norms = np.linalg.norm(out, axis=1)
                extra["fp32_embedding_norm_min"] = float(norms.min())
                extra["fp32_embedding_norm_max"] = float(norms.max())
        elif variant is Variant.INT8:
            extra["int8_max_abs_diff"] = diff
            if kind.is_classifier:
                result.int8_top1_agreement = float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1)))
            else:
                cos = _cosine(out, ref)
                result.int8_min_cosine = float(cos.min())
                result.int8_mean_cosine = float(cos.mean())
        elif variant is Variant.FP16:
            result.fp16_max_abs_diff = diff
            extra["fp16_checked_on_cpu"] = True
            if kind.is_classifier:
                extra["fp16_top1_agreement"] = float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1)))
            else:
                extra["fp16_min_cosine"] = float(_cosine(out, ref).min())
    return result.model_copy(update=extra)


def tolerances() -> dict[str, float]:
    return {
        "fp32_max_abs_diff": FP32_MAX_ABS_DIFF,
        "int8_min_top1_agreement": INT8_MIN_TOP1_AGREEMENT,
        "int8_min_cosine": INT8_MIN_COSINE,
        "min_sentences": MIN_SENTENCES,
    }


def check_gates(parity: Parity, kind: BundleKind, variants: Sequence[Variant]) -> list[str]:
    """Human-readable failures; empty when every gate passes."""
    failures: list[str] = []
    if parity.sentences < MIN_SENTENCES:
        failures.append(f"only {parity.sentences} parity sentences (need >= {MIN_SENTENCES})")
    if parity.fp32_max_abs_diff is None or parity.fp32_max_abs_diff > FP32_MAX_ABS_DIFF:
        failures.append(f"fp32 max abs diff {parity.fp32_max_abs_diff} > {FP32_MAX_ABS_DIFF}")
    if Variant.INT8 in variants:
        if kind.is_classifier:
            agree = parity.int8_top1_agreement
            if agree is None or agree < INT8_MIN_TOP1_AGREEMENT:
                failures.append(f"int8 top-1 agreement {agree} < {INT8_MIN_TOP1_AGREEMENT}")
        else:
            cos = parity.int8_min_cosine
            if cos is None or cos < INT8_MIN_COSINE:
                failures.append(f"int8 min cosine {cos} < {INT8_MIN_COSINE}")
    return failures
