"""Keyword retrieval: Okapi BM25 over an in-memory inverted index, with two tokenizers: jieba words
(`JiebaSegmenter`, question-level) and character unigrams + bigrams (`CharNgramSegmenter`, used FAQ-level by
`serving.retrieval.index`: every question of one FAQ pooled into one document).

Score normalization (the `keyword_score` of `bundle.contracts.Candidate`):

    keyword_score(q, d) = min(1, BM25(q, d) / sum_{t in unique(q)} idf(t))

With BM25's term weight `tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))`, a document of average length
that contains every query term once scores exactly `sum idf`, so the normalized score reads as "the idf-weighted
share of the query that the document covers" and is comparable across queries (unlike max-normalization,
which gives the best hit 1.0 even when it shares a single stop-like word with the query). Query terms unknown
to the index count in the denominator with the idf of an unseen term, so an unmatched rare word lowers it.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

# Particles, greetings and fillers that carry no FAQ meaning. Kept short on purpose: words like 怎么 / 能 / 要
# change what a customer asks for and stay in.
STOPWORDS: frozenset[str] = frozenset(
    "的 了 吗 呢 啊 吧 呀 哦 嘛 哈 呗 么 啦 喔 哎 嗯 请问 请 问下 问一下 一下 您好 你好 谢谢 麻烦 我 我的 你 你们 您 是 在 和".split()
)
_SKIP = re.compile(r"^[\W_]+$", re.UNICODE)  # punctuation / whitespace only


class Segmenter(Protocol):
    def tokens(self, text: str) -> list[str]: ...


class JiebaSegmenter:
    """A private jieba.Tokenizer, initialized on first use, with its dictionary cache under `cache_dir`.

    Thread-safe. Never touches jieba's global tokenizer, so several indexes (or tests) can coexist.
    """

    def __init__(self, cache_dir: Path | str | None = None) -> None:
        self._cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "xiaoke-jieba"
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    import jieba  # imported lazily: importing jieba is cheap, initialize() loads the dictionary

                    jieba.setLogLevel(logging.WARNING)
                    self._cache_dir.mkdir(parents=True, exist_ok=True)
                    tok = jieba.Tokenizer()
                    tok.tmp_dir = str(self._cache_dir)
                    tok.initialize()
                    self._tokenizer = tok
        return self._tokenizer

    def tokens(self, text: str) -> list[str]:
        """Search-mode segmentation (long words also yield their sub-words), minus stopwords and punctuation."""
        out: list[str] = []
        for raw in self._get().lcut_for_search(text, HMM=True):
            t = raw.strip()
            if t and t not in STOPWORDS and not _SKIP.match(t):
                out.append(t)
        return out


_RUN = re.compile(r"\w+", re.UNICODE)  # letters, digits and CJK; punctuation and spaces split runs


class CharNgramSegmenter:
    """Character unigrams and bigrams inside each run of word characters (no dictionary, no stopwords).

    Robust to what word segmentation gets wrong on customer text (typos, unseen product words, colloquial
    phrasing: "咋退款" and "怎么退款" still share 退款). Pooled over all of an FAQ's questions, the bigrams of
    every paraphrase the knowledge base lists vote for that FAQ, and idf over FAQs (not over questions) weighs
    down what many FAQs share.
    """

    def tokens(self, text: str) -> list[str]:
        out: list[str] = []
        for run in _RUN.findall(text):
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        return out


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.2
    b: float = 0.75


class KeywordIndex:
    """BM25 over pre-tokenized documents. Build with `from_tokens`; query with `search` / `score_all`.

    Postings are stored CSR-style with the per-document BM25 term weight (times idf) precomputed, so a query
    costs one numpy scatter-add per query term.
    """

    def __init__(
        self,
        doc_tokens: Sequence[Sequence[str]],
        params: BM25Params | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.params = params or BM25Params()
        self.segmenter: Segmenter = segmenter or JiebaSegmenter()
        self.n_docs = len(doc_tokens)
        lengths = np.fromiter((len(t) for t in doc_tokens), dtype=np.float32, count=self.n_docs)
        self.avgdl = float(lengths.mean()) if self.n_docs else 0.0
        k1, b = self.params.k1, self.params.b
        norm = k1 * (1.0 - b + b * lengths / max(self.avgdl, 1e-9))

        per_term_docs: dict[str, list[int]] = {}
        per_term_tf: dict[str, list[int]] = {}
        for doc_id, toks in enumerate(doc_tokens):
            for term, tf in Counter(toks).items():
                per_term_docs.setdefault(term, []).append(doc_id)
                per_term_tf.setdefault(term, []).append(tf)

        self.vocab: dict[str, int] = {}
        self.idf = np.zeros(len(per_term_docs), dtype=np.float32)
        offsets = [0]
        ids_parts: list[np.ndarray] = []
        w_parts: list[np.ndarray] = []
        for i, (term, docs) in enumerate(per_term_docs.items()):
            self.vocab[term] = i
            ids = np.asarray(docs, dtype=np.int64)
            tfs = np.asarray(per_term_tf[term], dtype=np.float32)
            idf = self._idf(len(docs))
            self.idf[i] = idf
            ids_parts.append(ids)
            w_parts.append(idf * tfs * (k1 + 1.0) / (tfs + norm[ids]))
            offsets.append(offsets[-1] + len(docs))
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, dtype=np.int64)
        self._weights = np.concatenate(w_parts).astype(np.float32) if w_parts else np.zeros(0, np.float32)

    def _idf(self, df: int) -> float:
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], segmenter: Segmenter | None = None, params: BM25Params | None = None
    ) -> KeywordIndex:
        seg: Segmenter = segmenter or JiebaSegmenter()
        return cls([seg.tokens(t) for t in texts], params=params, segmenter=seg)

    def query_terms(self, text: str) -> list[str]:
        return list(dict.fromkeys(self.segmenter.tokens(text)))  # unique, order kept

    def max_score(self, terms: Sequence[str]) -> float:
        unseen = self._idf(0)
        return float(sum(self.idf[self.vocab[t]] if t in self.vocab else unseen for t in terms))

    def score_all(self, text: str, *, clip: bool = True) -> np.ndarray:
        """Normalized keyword score for every document (zeros when nothing matches), in [0, 1] with ``clip``.

        Unclipped, the scores keep BM25's order where clipping ties them at 1.0 (documents that repeat query
        terms or are shorter than average): rank by those, report the clipped ones."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        terms = self.query_terms(text)
        if not terms or self.n_docs == 0:
            return scores
        for t in terms:
            i = self.vocab.get(t)
            if i is None:
                continue
            lo, hi = self._offsets[i], self._offsets[i + 1]
            scores[self._ids[lo:hi]] += self._weights[lo:hi]  # doc ids are unique within a posting list
        denom = self.max_score(terms)
        if denom > 0:
            scores /= denom
            if clip:
                np.minimum(scores, 1.0, out=scores)
        return scores

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        """Top-k (doc id, normalized score in [0, 1]) with score > 0, best first by BM25 (ties broken by it)."""
        return [(d, min(s, 1.0)) for d, s in top_k_nonzero(self.score_all(text, clip=False), k)]


def top_k_nonzero(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    nz = np.flatnonzero(scores > 0)
    if nz.size == 0 or k <= 0:
        return []
    if nz.size > k:
        part = np.argpartition(-scores[nz], k - 1)[:k]
        nz = nz[part]
    order = nz[np.argsort(-scores[nz], kind="stable")]
    return [(int(i), float(scores[i])) for i in order]
