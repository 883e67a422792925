"""Configuration of the inference server.

* `ServingSettings` (env prefix `SERVING_`, pydantic-settings): process-level defaults.
* `ServingArgs`: the typed arguments of `serving.app:build_app` (the `args:` block of a Serve config file). Any
  field left unset falls back to the environment / defaults of `ServingSettings`.
* `ModelUserConfig` / `IngressUserConfig`: the `user_config` of deployments, applied in place by
  `reconfigure()` (batching knobs, bundle version, shadow bundle, admission limit).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bundle.contracts import MAX_TEXTS
from serving.providers import Device

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BOOTSTRAP_FAQ = REPO_ROOT / "data" / "demo" / "faq" / "faq.jsonl"


def data_dir() -> Path:
    return Path(os.environ.get("XIAOKE_DATA_DIR") or REPO_ROOT / "var")


class Topology(StrEnum):
    SPLIT = "split"  # ingress + one deployment per model + retriever, connected by handles
    FUSED = "fused"  # the ingress runs every model and the retriever in-process (no handle hops)


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVING_", extra="ignore")

    model_store: Path | None = None  # default: $XIAOKE_DATA_DIR/models
    device: Device = Device.AUTO
    topology: Topology = Topology.FUSED
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    bucket_size: int = Field(default=32, ge=1, le=1024)  # rows per ORT run after length sorting
    index_poll_s: float = Field(default=2.0, gt=0)
    bootstrap: bool = True  # build + activate an index from bootstrap_faq when none is active
    bootstrap_faq: Path | None = DEFAULT_BOOTSTRAP_FAQ
    jieba_cache_dir: Path | None = None  # default: $XIAOKE_DATA_DIR/cache/jieba
    max_inflight: int = Field(default=256, ge=1)  # admitted /v1/nlu + /v1/embed requests per ingress replica
    request_timeout_s: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_index_body_bytes: int = Field(default=512 << 20, ge=1024)

    def resolved(self) -> ResolvedSettings:
        root = data_dir()
        return ResolvedSettings(
            **self.model_dump(exclude={"model_store", "jieba_cache_dir"}),
            model_store=self.model_store or root / "models",
            jieba_cache_dir=self.jieba_cache_dir or root / "cache" / "jieba",
        )


class ResolvedSettings(BaseModel):
    """Settings with every path resolved; what build_app hands to deployments (picklable, env-independent)."""

    model_config = ConfigDict(frozen=True)

    model_store: Path
    jieba_cache_dir: Path
    device: Device
    topology: Topology
    intra_op_threads: int
    bucket_size: int
    index_poll_s: float
    bootstrap: bool
    bootstrap_faq: Path | None
    max_inflight: int
    request_timeout_s: float
    max_body_bytes: int
    max_index_body_bytes: int

    @property
    def index_root(self) -> Path:
        return self.model_store / "indexes"


class ServingArgs(BaseModel):
    """`build_app` arguments. Unset fields come from `SERVING_*` environment variables / defaults."""

    model_config = ConfigDict(extra="forbid")

    model_store: Path | None = None
    device: Device | None = None
    topology: Topology | None = None
    intra_op_threads: int | None = Field(default=None, ge=1, le=64)
    bucket_size: int | None = Field(default=None, ge=1, le=1024)
    index_poll_s: float | None = Field(default=None, gt=0)
    bootstrap: bool | None = None
    bootstrap_faq: Path | None = None
    jieba_cache_dir: Path | None = None
    max_inflight: int | None = Field(default=None, ge=1)
    request_timeout_s: float | None = Field(default=None, gt=0)

    def settings(self) -> ResolvedSettings:
        overrides = self.model_dump(exclude_none=True)
        return ServingSettings(**overrides).resolved()


class ModelUserConfig(BaseModel):
    """user_config of a model deployment (or of the ingress's in-process model in the fused topology)."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=256, ge=MAX_TEXTS, le=8192)  # texts per model run (>= one request)
    batch_wait_timeout_s: float = Field(default=0.004, ge=0.0, le=1.0)
    bundle_version: str | None = None  # None / "live": the store's LIVE version
    shadow_version: str | None = None
    shadow_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class IngressUserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_inflight: int | None = Field(default=None, ge=1)
    request_timeout_s: float | None = Field(default=None, gt=0)
    # fused topology only: per-model user_config. Keys are checked: a misspelt kind ("intnet") was accepted and
    # ignored, so a pinned bundle_version or shadow silently never applied (make validate-deploy uses this model)
    models: dict[Literal["intent", "sentiment", "embedder"], ModelUserConfig] = Field(default_factory=dict)
