"""Pure FAQ retrieval (no Ray): jieba BM25 keyword index, FAISS dense index, fusion, versioned FAQ index.

Used by the Retriever deployment and by training/benchmarks/retrieval.py.
"""

from serving.retrieval.dense import DenseBuildConfig, DenseIndex, IndexType, l2_normalize, recall_at_k
from serving.retrieval.fusion import FusedHit, FusionConfig, FusionMethod, collapse_by_faq, fuse_scores
from serving.retrieval.index import (
    FaqIndex,
    IndexedQuestion,
    IndexStore,
    IndexStoreError,
    default_version,
    flatten_entries,
)
from serving.retrieval.keyword import BM25Params, CharNgramSegmenter, JiebaSegmenter, KeywordIndex

__all__ = [
    "BM25Params",
    "DenseBuildConfig",
    "DenseIndex",
    "FaqIndex",
    "FusedHit",
    "FusionConfig",
    "FusionMethod",
    "IndexStore",
    "IndexStoreError",
    "IndexType",
    "IndexedQuestion",
    "CharNgramSegmenter",
    "JiebaSegmenter",
    "KeywordIndex",
    "collapse_by_faq",
    "default_version",
    "flatten_entries",
    "fuse_scores",
    "l2_normalize",
    "recall_at_k",
]
