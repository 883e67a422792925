"""ONNX export (optimum), int8 dynamic quantization and fp16 conversion.

Measured choices (see ../shared/FINDINGS.md): optimum's exporter for both model kinds, plain
``quantize_dynamic(QInt8)`` (it beat optimum's avx2 preset on these CPUs), ``quant_pre_process`` with
``skip_symbolic_shape=True`` before quantizing, falling back to the raw fp32 graph when pre-processing fails.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from bundle.manifest import BundleKind
from export.errors import ExportError

log = logging.getLogger(__name__)

CLASSIFIER_OUTPUT = "logits"
EMBEDDING_OUTPUT = "sentence_embedding"
TOKEN_OUTPUT = "token_embeddings"


def onnx_export(checkpoint: Path, kind: BundleKind, workdir: Path, *, opset: int | None = None) -> Path:
    """Export `checkpoint` with optimum into `workdir`; return the fp32 model path.

    Classifiers: task text-classification (output ``logits``). Embedders: library sentence_transformers,
    task feature-extraction (outputs ``token_embeddings`` and the pooled ``sentence_embedding``).
    """
    from optimum.exporters.onnx import main_export
    from optimum.exporters.onnx.convert import export
    from optimum.exporters.onnx.model_configs import BertOnnxConfig

    from export.checkpoint import is_custom_classifier, load_torch_classifier

    workdir.mkdir(parents=True, exist_ok=True)
    if kind.is_classifier:
        task, library = "text-classification", "transformers"
    else:
        task, library = "feature-extraction", "sentence_transformers"
    try:
        if kind.is_classifier and is_custom_classifier(checkpoint):
            # Our BERT subclass (training.ngram_model) keeps BERT's inputs and `logits` output, so optimum's BERT
            # ONNX config describes it; optimum's high-level entry points refuse classes outside transformers.
            model = load_torch_classifier(checkpoint)
            onnx_config = BertOnnxConfig(model.config, task=task)
            export(model, onnx_config, workdir / "model.onnx", opset=opset or onnx_config.DEFAULT_ONNX_OPSET)
        else:
            main_export(
                str(checkpoint),
                output=workdir,
                task=task,
                library_name=library,
                opset=opset,
                device="cpu",
                local_files_only=True,
                do_validation=False,  # we run our own parity gate on Chinese sentences
            )
    except Exception as exc:  # optimum raises many types; keep the cause chained for the log
        log.exception("optimum export failed")
        raise ExportError(
            "EXPORT_FAILED", f"optimum ONNX export of {checkpoint} failed ({type(exc).__name__})"
        ) from exc
    model = workdir / "model.onnx"
    if not model.is_file():
        raise ExportError("EXPORT_FAILED", f"optimum wrote no model.onnx into {workdir}")
    if any(workdir.glob("*.onnx_data")) or any(workdir.glob("*.onnx.data")):
        raise ExportError(
            "EXPORT_FAILED", "model exported with external data; bundles hold one file per variant"
        )
    return model


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 (QInt8 weights) quantization of `src` into `dst`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="xiaoke-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            source = pre
        except Exception:  # pre-processing is an optimisation only
            log.warning("quant_pre_process failed; quantizing the raw graph", exc_info=True)
            source = src
        try:
            quantize_dynamic(str(source), str(dst), weight_type=QuantType.QInt8)
        except Exception as exc:
            raise ExportError(
                "QUANTIZE_FAILED", f"int8 quantization of {src.name} failed ({type(exc).__name__})"
            ) from exc
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """fp16 weights/activations for CUDA; inputs and outputs stay int64/fp32 (keep_io_types)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        model = onnx.load(str(src))
        model16 = convert_float_to_float16(model, keep_io_types=True)
        onnx.save(model16, str(dst))
    except Exception as exc:
        raise ExportError(
            "EXPORT_FAILED", f"fp16 conversion of {src.name} failed ({type(exc).__name__})"
        ) from exc
    return dst


def copy_files(src_dir: Path, dst_dir: Path, names: tuple[str, ...]) -> list[str]:
    copied = []
    for name in names:
        if (src_dir / name).is_file():
            shutil.copy2(src_dir / name, dst_dir / name)
            copied.append(name)
    return copied
