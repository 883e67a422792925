"""manifest.json: what a bundle is, where it came from, how good it is, and the hash of every file."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bundle.normalize import NormalizeConfig

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class BundleKind(StrEnum):
    INTENT = "intent"
    EMBEDDER = "embedder"
    SENTIMENT = "sentiment"

    @property
    def is_classifier(self) -> bool:
        return self is not BundleKind.EMBEDDER


class Variant(StrEnum):
    """Model file variants. The provider-selection point in serving picks one per device."""

    FP32 = "fp32"
    INT8 = "int8"  # dynamic int8, for CPU
    FP16 = "fp16"  # for CUDA


VARIANT_FILES: dict[Variant, str] = {
    Variant.FP32: "model.onnx",
    Variant.INT8: "model.int8.onnx",
    Variant.FP16: "model.fp16.onnx",
}


class Thresholds(BaseModel):
    """Calibrated decision thresholds.

    Classifiers: `per_label` minimum confidence to accept a label (calibrated on the eval split).
    Embedders: `answer` / `suggest` bands on the fused retrieval score, and `answer_margin`: a top FAQ in the
    suggest band is also answered when its fused score leads the best other FAQ's by at least this much;
    `answer_agree`: a top FAQ scoring at least this is also answered when its intent is the one the intent
    classifier read with confidence (two independent models agree).
    """

    model_config = ConfigDict(extra="forbid")

    default: float = 0.5
    per_label: dict[str, float] = Field(default_factory=dict)
    answer: float | None = None
    suggest: float | None = None
    answer_margin: float | None = None
    answer_agree: float | None = None

    def for_label(self, label: str) -> float:
        return self.per_label.get(label, self.default)


class Parity(BaseModel):
    model_config = ConfigDict(extra="allow")

    sentences: int = 0
    fp32_max_abs_diff: float | None = None
    int8_top1_agreement: float | None = None
    int8_min_cosine: float | None = None
    int8_mean_cosine: float | None = None
    fp16_max_abs_diff: float | None = None
    passed: bool = False


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: BundleKind
    version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source_checkpoint: str
    training_data_sha256: str | None = None
    labels: list[str] = Field(default_factory=list)  # classifiers: index -> label id
    thresholds: Thresholds = Field(default_factory=Thresholds)
    max_seq_len: int = 64
    embedding_dim: int | None = None  # embedders
    pooling: str | None = None  # embedders: "mean"
    # embedders: name of the ONNX output that already holds the pooled (and, when `embedding_normalized`,
    # L2-normalized) sentence embedding; None means serving must pool `token_embeddings` itself.
    embedding_output: str | None = None
    embedding_normalized: bool | None = None
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    variants: dict[Variant, str] = Field(default_factory=dict)  # variant -> file name
    metrics: dict[str, Any] = Field(default_factory=dict)
    parity: Parity = Field(default_factory=Parity)
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> sha256
    # sha256 of this manifest's own content (every other key, canonical JSON: ``manifest_digest``), so an
    # edit of the manifest itself (a label, a threshold, a file hash) is caught like an edit of any other file;
    # None in manifests written before 2026-12-06 (still accepted)
    manifest_sha256: str | None = None

    def model_file(self, variant: Variant) -> str:
        try:
            return self.variants[variant]
        except KeyError:
            raise KeyError(f"bundle {self.kind}/{self.version} has no {variant} variant") from None


def manifest_digest(data: dict[str, Any]) -> str:
    """sha256 of a manifest's JSON object without its ``manifest_sha256`` key: keys sorted, no whitespace,
    UTF-8. Computed on the JSON (not on the parsed model) so that it is what the file says that is checked."""
    body = {k: v for k, v in data.items() if k != "manifest_sha256"}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
