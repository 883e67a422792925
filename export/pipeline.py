"""checkpoint -> bundle directory: ONNX export, int8/fp16 variants, parity gate, tokenizer, manifest.

The bundle is assembled in a temporary sibling of `out_dir` and renamed into place only when every step
(including the parity gate) passed, so a failed export never leaves a half-written bundle behind.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bundle.manifest import VARIANT_FILES, BundleKind, Manifest, Variant
from bundle.store import check_version, sha256_file, staged_dir, write_manifest
from export.checkpoint import TOKENIZER_FILES, check_checkpoint, embedder_layout
from export.errors import ExportError
from export.onnx_tools import EMBEDDING_OUTPUT, convert_fp16, copy_files, onnx_export, quantize_int8
from export.parity import check_gates, load_parity_sentences, measure_parity

log = logging.getLogger(__name__)


def default_version(model_file: Path, now: datetime | None = None) -> str:
    """``YYYYMMDD.HHMMSS-<first 8 hex of the fp32 model's sha256>`` (sortable, content-tagged)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d.%H%M%S")
    return f"{stamp}-{sha256_file(model_file)[:8]}"


def export_bundle(
    checkpoint_dir: Path | str,
    out_dir: Path | str,
    *,
    version: str | None = None,
    quantize: bool = True,
    fp16: bool = False,
    parity_sentences: Sequence[str] | None = None,
    allow_parity_failure: bool = False,
    overwrite: bool = False,
    on_log: Callable[[str], None] | None = None,
) -> Manifest:
    """Export one training checkpoint into a verified bundle directory at `out_dir`; return its manifest.

    Raises ExportError (CHECKPOINT_INVALID, EXPORT_FAILED, QUANTIZE_FAILED, PARITY_FAILED, OUTPUT_EXISTS).
    """
    from transformers import AutoTokenizer

    say = on_log or log.info
    checkpoint = Path(checkpoint_dir).resolve()
    out = Path(out_dir)
    if version is not None:
        check_version(version)
    if out.exists() and not out.is_dir():
        raise ExportError("OUTPUT_EXISTS", f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(
            "OUTPUT_EXISTS", f"{out} exists and is not empty (--overwrite / overwrite=True replaces it)"
        )
    meta = check_checkpoint(checkpoint)
    kind = meta.kind
    sentences = list(parity_sentences) if parity_sentences is not None else load_parity_sentences()

    with staged_dir(out) as stage:
        with tempfile.TemporaryDirectory(prefix="xiaoke-onnx-") as work:
            say(f"[export] {kind.value}: optimum ONNX export of {checkpoint}")
            fp32_src = onnx_export(checkpoint, kind, Path(work) / "onnx")
            variants: dict[Variant, str] = {Variant.FP32: VARIANT_FILES[Variant.FP32]}
            shutil.copy2(fp32_src, stage / variants[Variant.FP32])
            if quantize:
                say("[export] int8 dynamic quantization (QInt8)")
                quantize_int8(stage / variants[Variant.FP32], stage / VARIANT_FILES[Variant.INT8])
                variants[Variant.INT8] = VARIANT_FILES[Variant.INT8]
            if fp16:
                say("[export] fp16 conversion (CUDA variant)")
                convert_fp16(stage / variants[Variant.FP32], stage / VARIANT_FILES[Variant.FP16])
                variants[Variant.FP16] = VARIANT_FILES[Variant.FP16]
        copied = copy_files(checkpoint, stage, TOKENIZER_FILES)
        if "tokenizer.json" not in copied:
            raise ExportError(
                "CHECKPOINT_INVALID", f"{checkpoint}: no tokenizer.json (serving needs the fast tokenizer)"
            )

        tokenizer = AutoTokenizer.from_pretrained(str(stage))
        say(f"[export] parity vs PyTorch on {len(sentences)} sentences")
        parity = measure_parity(
            checkpoint,
            kind,
            tokenizer,
            {v: stage / name for v, name in variants.items()},
            sentences,
            max_seq_len=meta.max_seq_len,
            normalize_config=meta.normalize,
        )
        failures = check_gates(parity, kind, list(variants))
        parity = parity.model_copy(update={"passed": not failures})
        if failures:
            parity = parity.model_copy(update={"failures": failures})
        say(f"[export] parity: {_parity_line(parity)}")
        if failures and not allow_parity_failure:
            raise ExportError("PARITY_FAILED", "parity gate failed: " + "; ".join(failures))

        sizes = {v.value: (stage / name).stat().st_size for v, name in variants.items()}
        metrics = dict(meta.metrics)
        metrics["export"] = {"onnx_size_bytes": sizes}
        if "rule" in meta.thresholds:
            metrics["threshold_rule"] = meta.thresholds["rule"]
        embedding_dim = pooling = embedding_output = None
        normalized: bool | None = None
        if kind is BundleKind.EMBEDDER:
            layout = embedder_layout(checkpoint)
            pooling, normalized = layout["pooling"], layout["normalized"]
            embedding_output = EMBEDDING_OUTPUT
            embedding_dim = int(parity.model_dump()["output_dim"])
        manifest = Manifest(
            kind=kind,
            version=version or default_version(stage / variants[Variant.FP32]),
            source_checkpoint=str(checkpoint),
            training_data_sha256=meta.training_data_sha256,
            labels=meta.labels if kind.is_classifier else [],
            thresholds=meta.bundle_thresholds(),
            max_seq_len=meta.max_seq_len,
            embedding_dim=embedding_dim,
            pooling=pooling,
            embedding_output=embedding_output,
            embedding_normalized=normalized,
            normalize=meta.normalize,
            variants=variants,
            metrics=metrics,
            parity=parity,
        )
        manifest = write_manifest(stage, manifest)
    say(f"[export] wrote {kind.value} bundle {manifest.version} -> {out} ({_sizes_line(sizes)})")
    return manifest


def _parity_line(p: object) -> str:
    data = p.model_dump() if hasattr(p, "model_dump") else {}
    keys = (
        "sentences",
        "fp32_max_abs_diff",
        "int8_top1_agreement",
        "int8_min_cosine",
        "int8_mean_cosine",
        "fp16_max_abs_diff",
        "passed",
    )
    return " ".join(f"{k}={_fmt(data.get(k))}" for k in keys if data.get(k) is not None)


def _fmt(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _sizes_line(sizes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items())


def checkpoint_fingerprint(checkpoint: Path) -> str:
    """sha256 over every file of a checkpoint (names + contents), e.g. for build stamps."""
    h = hashlib.sha256()
    for p in sorted(Path(checkpoint).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(checkpoint).as_posix().encode())
            h.update(sha256_file(p).encode())
    return h.hexdigest()
