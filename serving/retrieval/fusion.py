"""Fusion of dense and keyword scores into one score per FAQ.

Default (`weighted`), the score the dialog manager thresholds on:

    fused = w_dense * clip(cosine, 0, 1) + w_keyword * keyword_score        (w_dense + w_keyword = 1)

with `keyword_score` the query-normalized BM25 of `serving.retrieval.keyword` (idf-weighted share of the query
covered). Both inputs live on [0, 1] with a meaning that does not depend on the other candidates, so `fused`
is an absolute score that the embedder manifest's `thresholds.answer` / `thresholds.suggest` can be calibrated
on. Reciprocal-rank fusion (`rrf`, `sum 1 / (k + rank)`) is available for ranking experiments, but its value
depends only on ranks - a query with no good answer still gets a top score of ~2/(k+1) - so it is not usable
for answer/suggest thresholds and is not the default.

Every candidate is scored on both signals exactly (the retriever re-scores the union of dense and keyword
hits), then questions (standard + similar) collapse to their FAQ: the FAQ keeps its best-fused question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class FusionMethod(StrEnum):
    WEIGHTED = "weighted"
    RRF = "rrf"


@dataclass(frozen=True)
class FusionConfig:
    method: FusionMethod = FusionMethod.WEIGHTED
    dense_weight: float = 0.7
    rrf_k: int = 60
    # keyword evidence per candidate: max(question-level jieba BM25, FAQ-level character BM25); False keeps
    # the question-level score only (the ablation `training.benchmarks retrieval` reports side by side)
    faq_keyword: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be within [0, 1]")

    @property
    def keyword_weight(self) -> float:
        return 1.0 - self.dense_weight


@dataclass(frozen=True)
class FusedHit:
    doc: int  # row of the matched question in the index
    faq_id: str
    dense: float
    keyword: float
    fused: float


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every element by descending score (ties share order of appearance)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def fuse_scores(dense: np.ndarray, keyword: np.ndarray, config: FusionConfig) -> np.ndarray:
    """Fused score for aligned arrays of candidate scores (cosine, normalized BM25)."""
    dense = np.asarray(dense, dtype=np.float64)
    keyword = np.asarray(keyword, dtype=np.float64)
    if config.method is FusionMethod.WEIGHTED:
        return config.dense_weight * np.clip(dense, 0.0, 1.0) + config.keyword_weight * np.clip(
            keyword, 0.0, 1.0
        )
    rd = 1.0 / (config.rrf_k + _ranks(dense))
    rk = np.where(keyword > 0, 1.0 / (config.rrf_k + _ranks(keyword)), 0.0)
    return config.dense_weight * rd + config.keyword_weight * rk


def collapse_by_faq(
    docs: Sequence[int] | np.ndarray,
    dense: np.ndarray,
    keyword: np.ndarray,
    doc_faq: Sequence[str],
    config: FusionConfig,
    top_k: int,
) -> list[FusedHit]:
    """Fuse candidate questions, keep each FAQ's best question, return the top_k FAQs by fused score."""
    if len(docs) == 0 or top_k <= 0:
        return []
    fused = fuse_scores(dense, keyword, config)
    best: dict[str, FusedHit] = {}
    for i in np.argsort(-fused, kind="stable"):
        doc = int(docs[i])
        faq = doc_faq[doc]
        if faq in best:
            continue
        best[faq] = FusedHit(doc, faq, float(dense[i]), float(keyword[i]), float(fused[i]))
        if len(best) >= top_k:
            break
    return list(best.values())
