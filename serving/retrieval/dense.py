"""Dense retrieval over FAISS with the index type chosen by size.

* `size <= flat_max`: exact `IndexFlatIP` (inner product == cosine for L2-normalized vectors).
* above it: `IndexIVFFlat` (default; builds in seconds even at 1M) or `IndexHNSWFlat` (config), inner product.
  At build time the approximate index is checked against exact search on perturbed copies of indexed vectors;
  the search knob (nprobe / efSearch) is raised until recall@10 >= `recall_target`. If no setting reaches it,
  the build falls back to the exact index rather than serve a bad one.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class IndexType(StrEnum):
    FLAT = "flat"
    IVF = "ivf"
    HNSW = "hnsw"


@dataclass(frozen=True)
class DenseBuildConfig:
    flat_max: int = 20_000  # exact search below this many vectors (~3 ms/query single-threaded at d=256)
    approximate: IndexType = IndexType.IVF
    recall_target: float = 0.95
    recall_queries: int = 200
    recall_noise: float = 0.6  # L2 norm of the perturbation added to sampled vectors to make recall queries
    ivf_lists_per_sqrt: float = 2.0  # nlist = ivf_lists_per_sqrt * sqrt(n) (1M: 2000 lists)
    ivf_train_points_per_list: int = 50
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    seed: int = 1234


@dataclass
class DenseIndexMeta:
    index_type: IndexType
    dim: int
    size: int
    recall_at_10: float | None = None
    build_seconds: float = 0.0
    search_params: dict[str, int] = field(default_factory=dict)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    hits = 0
    total = 0
    for a, e in zip(approx_ids[:, :k], exact_ids[:, :k], strict=True):
        truth = {int(i) for i in e if i >= 0}
        hits += len(truth & {int(i) for i in a if i >= 0})
        total += len(truth)
    return hits / total if total else 1.0


def _on_gpu(index: Any) -> bool:
    return type(index).__name__.startswith("Gpu")  # faiss.GpuIndexFlatIP, GpuIndexIVFFlat, ...


class DenseIndex:
    """A FAISS index plus the search parameters that were tuned for it. Vectors must be L2-normalized."""

    def __init__(self, index: Any, meta: DenseIndexMeta) -> None:
        self.index = index
        self.meta = meta
        self._gpu_lock = threading.Lock()
        self._apply_search_params()

    @property
    def size(self) -> int:
        return self.meta.size

    def _apply_search_params(self) -> None:
        import faiss

        if self.meta.index_type is IndexType.IVF and "nprobe" in self.meta.search_params:
            faiss.extract_index_ivf(self.index).nprobe = self.meta.search_params["nprobe"]
        elif self.meta.index_type is IndexType.HNSW and "ef_search" in self.meta.search_params:
            hnsw: Any = faiss.downcast_index(self.index)
            hnsw.hnsw.efSearch = self.meta.search_params["ef_search"]

    # -- build ---------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, vectors: np.ndarray, config: DenseBuildConfig | None = None) -> DenseIndex:
        import faiss

        cfg = config or DenseBuildConfig()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError("vectors must be a non-empty (n, d) array")
        n, d = x.shape
        t0 = time.perf_counter()
        if n <= cfg.flat_max:
            flat = faiss.IndexFlatIP(d)
            flat.add(x)
            meta = DenseIndexMeta(IndexType.FLAT, d, n, None, time.perf_counter() - t0)
            return cls(flat, meta)

        rng = np.random.default_rng(cfg.seed)
        index: Any
        if cfg.approximate is IndexType.HNSW:
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.hnsw_ef_construction
            index.add(x)
            knob, candidates = "ef_search", [16, 32, 64, 128, 256, 512]
        else:
            nlist = max(16, int(cfg.ivf_lists_per_sqrt * math.sqrt(n)))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            n_train = min(n, nlist * cfg.ivf_train_points_per_list)
            train = x[rng.choice(n, size=n_train, replace=False)] if n_train < n else x
            index.cp.seed = cfg.seed
            index.train(train)
            index.add(x)
            knob = "nprobe"
            candidates = sorted({min(p, nlist) for p in (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, nlist)})

        # recall check against exact search
        nq = min(cfg.recall_queries, n)
        sample = x[rng.choice(n, size=nq, replace=False)]
        noise = rng.standard_normal(sample.shape).astype(np.float32)
        noise *= cfg.recall_noise / np.linalg.norm(noise, axis=1, keepdims=True)
        queries = l2_normalize(sample + noise)
        exact = faiss.IndexFlatIP(d)
        exact.add(x)
        _, truth = exact.search(queries, 10)
        del exact

        best: tuple[int, float] | None = None
        for value in candidates:
            meta = DenseIndexMeta(cfg.approximate, d, n, None, 0.0, {knob: value})
            candidate = cls(index, meta)
            _, got = candidate.index.search(queries, 10)
            r = recall_at_k(got, truth, 10)
            log.info("dense index %s %s=%d recall@10=%.3f", cfg.approximate, knob, value, r)
            best = (value, r)
            if r >= cfg.recall_target:
                break
        assert best is not None
        value, r = best
        if r < cfg.recall_target:
            log.warning(
                "approximate index misses recall target (%.3f < %.3f); using exact", r, cfg.recall_target
            )
            flat = faiss.IndexFlatIP(d)
            flat.add(x)
            return cls(flat, DenseIndexMeta(IndexType.FLAT, d, n, 1.0, time.perf_counter() - t0))
        meta = DenseIndexMeta(cfg.approximate, d, n, r, time.perf_counter() - t0, {knob: value})
        return cls(index, meta)

    # -- query ---------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if _on_gpu(self.index):
            # FAISS GPU indexes are not thread-safe even for searches (their StandardGpuResources has one user
            # at a time); CPU indexes are, so only GPU searches are serialized.
            with self._gpu_lock:
                return self.index.search(q, min(k, self.meta.size))  # type: ignore[no-any-return]
        return self.index.search(q, min(k, self.meta.size))  # type: ignore[no-any-return]

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        cpu_index = self.index
        if hasattr(faiss, "index_gpu_to_cpu") and _on_gpu(self.index):
            cpu_index = faiss.index_gpu_to_cpu(self.index)
        faiss.write_index(cpu_index, str(directory / "dense.faiss"))
        meta = asdict(self.meta)
        meta["index_type"] = self.meta.index_type.value
        (directory / "dense.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> DenseIndex:
        import faiss

        raw = json.loads((directory / "dense.json").read_text(encoding="utf-8"))
        raw["index_type"] = IndexType(raw["index_type"])
        meta = DenseIndexMeta(**raw)
        index = faiss.read_index(str(directory / "dense.faiss"))
        return cls(index, meta)
