"""Reading a training checkpoint: HF save_pretrained dir + tokenizer files + ``xiaoke_training.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bundle.manifest import BundleKind, Thresholds
from bundle.normalize import NormalizeConfig
from export.errors import ExportError

TRAINING_META = "xiaoke_training.json"
# Tokenizer files copied into every bundle (whichever of them the checkpoint has).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


class TrainingMeta(BaseModel):
    """The part of ``xiaoke_training.json`` export relies on (other keys are kept in ``extra``)."""

    model_config = ConfigDict(extra="allow")

    kind: BundleKind
    labels: list[str] = Field(default_factory=list)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    metrics: dict[str, Any] = Field(default_factory=dict)
    max_seq_len: int = 64
    training_data_sha256: str | None = None
    base: str | None = None

    def bundle_thresholds(self) -> Thresholds:
        """Thresholds restricted to the manifest schema (free-text keys such as ``rule`` are dropped)."""
        known = set(Thresholds.model_fields)
        return Thresholds.model_validate({k: v for k, v in self.thresholds.items() if k in known})


def read_training_meta(checkpoint: Path) -> TrainingMeta:
    path = checkpoint / TRAINING_META
    if not path.is_file():
        raise ExportError(
            "CHECKPOINT_INVALID", f"{checkpoint}: no {TRAINING_META} (not a training checkpoint)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return TrainingMeta.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        raise ExportError("CHECKPOINT_INVALID", f"{path}: unreadable or does not match the schema") from exc


def check_checkpoint(checkpoint: Path) -> TrainingMeta:
    """Validate the directory layout and the metadata; return the metadata."""
    if not checkpoint.is_dir():
        what = "not a directory" if checkpoint.exists() else "no such directory"
        raise ExportError("CHECKPOINT_INVALID", f"{checkpoint}: {what}")
    meta = read_training_meta(checkpoint)
    if not (checkpoint / "config.json").is_file():
        raise ExportError("CHECKPOINT_INVALID", f"{checkpoint}: no config.json (not a save_pretrained dir)")
    if not any((checkpoint / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise ExportError("CHECKPOINT_INVALID", f"{checkpoint}: no tokenizer files")
    if meta.kind.is_classifier:
        try:
            config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
            id2label = config.get("id2label") or {}
            hf_labels = [id2label[k] for k in sorted(id2label, key=int)]
        except (ValueError, AttributeError) as exc:  # bad JSON / not an object / non-integer id2label keys
            raise ExportError(
                "CHECKPOINT_INVALID", f"{checkpoint / 'config.json'}: unreadable or has no valid id2label"
            ) from exc
        if not meta.labels:
            meta = meta.model_copy(update={"labels": hf_labels})
        elif hf_labels and hf_labels != meta.labels:
            raise ExportError(
                "CHECKPOINT_INVALID",
                f"{checkpoint}: labels in {TRAINING_META} differ from config.json id2label",
            )
        if len(meta.labels) < 2:
            raise ExportError("CHECKPOINT_INVALID", f"{checkpoint}: a classifier needs at least 2 labels")
    else:
        if not (checkpoint / "modules.json").is_file():
            raise ExportError(
                "CHECKPOINT_INVALID",
                f"{checkpoint}: an embedder must be a sentence-transformers dir (modules.json)",
            )
    return meta


_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def embedder_layout(checkpoint: Path) -> dict[str, Any]:
    """Pooling mode and whether a Normalize module follows, from the sentence-transformers files."""
    modules = json.loads((checkpoint / "modules.json").read_text(encoding="utf-8"))
    pooling = None
    normalized = False
    for module in modules:
        mtype = str(module.get("type", ""))
        if mtype.endswith("Pooling"):
            cfg_path = checkpoint / module.get("path", "") / "config.json"
            cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
            mode = cfg.get("pooling_mode")  # sentence-transformers >= 5.x
            if isinstance(mode, list):
                mode = "+".join(str(m) for m in mode)
            if not mode:  # older layout: one boolean per mode
                mode = "+".join(name for key, name in _POOLING_KEYS.items() if cfg.get(key) is True)
            pooling = str(mode) if mode else None
        elif mtype.endswith("Normalize"):
            normalized = True
    return {"pooling": pooling, "normalized": normalized}


def is_custom_classifier(checkpoint: Path) -> bool:
    """Our BERT + in-graph n-gram classifier (training.ngram_model): needs its own class to load."""
    try:
        config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("xiaoke_ngram_branch")) or any(
        "Ngram" in str(a) for a in config.get("architectures") or []
    )


def load_torch_classifier(checkpoint: Path) -> Any:
    """The PyTorch classifier in eval mode, with the right class for our custom architectures."""
    if is_custom_classifier(checkpoint):
        from training.ngram_model import load_classifier_model

        return load_classifier_model(checkpoint).eval()
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
