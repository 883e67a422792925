"""The FAQ index: questions (standard + similar) with their vectors, a dense FAISS index, two BM25 keyword
indexes, fused search collapsed per FAQ, and versioned persistence under `<model store>/indexes/<version>/`.

Keyword evidence comes at two levels: jieba-word BM25 against each question, and character-bigram BM25 against
each FAQ as a whole (all its questions pooled into one document, `KeywordIndex` with `CharNgramSegmenter`). A
candidate question's `keyword_score` is the larger of its own score and its FAQ's (see `faq_keyword_scores`):
the FAQ-level score rewards a query whose words are spread over several paraphrases of the same FAQ, which a
single question never shows (demo FAQ, held-out queries: question-level jieba BM25 recall@1 0.52, FAQ-level
character BM25 0.75; docs/benchmarks.md).

Layout of one version directory (written to a temporary sibling and renamed into place, so a reader never sees
half a version)::

    info.json        bundle.contracts.IndexInfo (minus `active`)
    questions.jsonl  one row per indexed question: faq_id, question (standard), text (as matched), tokens
                     (jieba), normalized (the text as queries are normalized; the FAQ-level index is built from it)
    vectors.npy      float32 (n, d), L2-normalized; memory-mapped on load and used for exact re-scoring
    dense.faiss      the FAISS index; dense.json its type and tuned search parameters

`indexes/ACTIVE` holds the active version; activation is an atomic rename of that pointer file. Every retriever
replica polls the pointer, so activation (and rollback = activating an older version) reaches all replicas.
Writers of the pointer hold `indexes/.ACTIVE.lock` (`StoreLock`, a `flock` every pod mounting the shared volume
sees), so "activate X if ACTIVE still names Y" is one atomic step across replicas (`IndexStore.activate`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from bundle.contracts import Candidate, IndexInfo
from bundle.store import write_pointer
from serving.retrieval.dense import DenseBuildConfig, DenseIndex, l2_normalize
from serving.retrieval.fusion import FusionConfig, collapse_by_faq
from serving.retrieval.keyword import CharNgramSegmenter, JiebaSegmenter, KeywordIndex

ACTIVE_POINTER = "ACTIVE"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class IndexStoreError(Exception):
    """`code` is stable (INDEX_NOT_FOUND, INDEX_VERSION_INVALID, INDEX_EXISTS, INDEX_CORRUPT,
    INDEX_ACTIVE_MOVED)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KbEntryLike(Protocol):
    faq_id: str
    question: str
    similar: list[str]


@dataclass(frozen=True)
class IndexedQuestion:
    faq_id: str
    question: str  # the FAQ's standard question
    text: str  # this row's question (standard or similar), as written in the knowledge base


def flatten_entries(entries: Iterable[KbEntryLike]) -> list[IndexedQuestion]:
    """One row per distinct (faq, question) pair: the standard question first, then its similar questions."""
    rows: list[IndexedQuestion] = []
    for e in entries:
        seen: set[str] = set()
        for text in [e.question, *e.similar]:
            key = text.strip()
            if key and key not in seen:
                seen.add(key)
                rows.append(IndexedQuestion(e.faq_id, e.question, text))
    return rows


def default_version(rows: Sequence[IndexedQuestion], embedder_version: str) -> str:
    h = hashlib.sha256(embedder_version.encode())
    for r in rows:
        h.update(f"{r.faq_id}\t{r.text}\n".encode())
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{h.hexdigest()[:8]}"


def derived_version(source: str, embedder_version: str) -> str:
    """The version name of `source`'s questions re-embedded by `embedder_version`. The same on every replica: two
    replicas that both re-embed write one version (the second one's save finds it: INDEX_EXISTS)."""
    digest = hashlib.sha256(f"{source}\n{embedder_version}".encode()).hexdigest()[:8]
    return check_index_version(f"{source[:50]}-re{digest}")


def check_index_version(version: str) -> str:
    if not _VERSION_RE.fullmatch(version) or version.startswith("."):  # fullmatch: `$` accepts a trailing \n
        raise IndexStoreError("INDEX_VERSION_INVALID", f"invalid index version {version!r}")
    return version


class FaqIndex:
    """Immutable once built: replicas swap whole FaqIndex objects, so a search never sees a half-built one."""

    def __init__(
        self,
        rows: Sequence[IndexedQuestion],
        tokens: Sequence[Sequence[str]],
        vectors: np.ndarray,
        dense: DenseIndex,
        info: IndexInfo,
        segmenter: JiebaSegmenter | None = None,
        fusion: FusionConfig | None = None,
        normalized: Sequence[str] | None = None,
    ) -> None:
        """`normalized[i]`: row i's text normalized like queries are (defaults to the text as written)."""
        if not (len(rows) == len(tokens) == vectors.shape[0] == dense.size):
            raise ValueError("rows, tokens, vectors and the dense index disagree in size")
        if normalized is not None and len(normalized) != len(rows):
            raise ValueError("rows and normalized texts disagree in size")
        self.rows = list(rows)
        self.tokens = [list(t) for t in tokens]
        self.normalized = list(normalized) if normalized is not None else [r.text for r in self.rows]
        self.vectors = vectors
        self.dense = dense
        self.info = info
        self.keyword = KeywordIndex(self.tokens, segmenter=segmenter)
        self.fusion = fusion or FusionConfig()
        self._doc_faq = [r.faq_id for r in self.rows]
        # FAQ level: FAQs in order of their first row; each row's FAQ position; each FAQ's rows (CSR)
        faq_pos: dict[str, int] = {}
        for f in self._doc_faq:
            faq_pos.setdefault(f, len(faq_pos))
        self._doc_faq_pos = np.fromiter((faq_pos[f] for f in self._doc_faq), np.int64, len(self.rows))
        self._faq_rows = np.argsort(self._doc_faq_pos, kind="stable")
        self._faq_offsets = np.concatenate(
            ([0], np.cumsum(np.bincount(self._doc_faq_pos, minlength=len(faq_pos))))
        )
        chars = CharNgramSegmenter()
        pooled: list[list[str]] = [[] for _ in faq_pos]
        for pos, text in zip(self._doc_faq_pos, self.normalized, strict=True):
            pooled[pos].extend(chars.tokens(text))
        self.faq_keyword = KeywordIndex(pooled, segmenter=chars)

    @property
    def version(self) -> str:
        return self.info.version

    @classmethod
    def build(
        cls,
        rows: Sequence[IndexedQuestion],
        vectors: np.ndarray,
        normalized_texts: Sequence[str],
        *,
        version: str,
        embedder_version: str,
        segmenter: JiebaSegmenter | None = None,
        dense_config: DenseBuildConfig | None = None,
        fusion: FusionConfig | None = None,
        derived_from: str | None = None,
    ) -> FaqIndex:
        """`vectors[i]` and `normalized_texts[i]` belong to `rows[i]` (texts normalized like queries are).
        `derived_from`: the version whose questions these are, re-embedded (`IndexInfo.derived_from`)."""
        if not rows:
            raise ValueError("cannot build an empty index")
        if len(rows) != len(normalized_texts) or len(rows) != len(vectors):
            raise ValueError("rows, vectors and texts must align")
        t0 = time.perf_counter()
        seg = segmenter or JiebaSegmenter()
        x = l2_normalize(vectors)
        dense = DenseIndex.build(x, dense_config)
        tokens = [seg.tokens(t) for t in normalized_texts]
        info = IndexInfo(
            version=check_index_version(version),
            size=len(rows),
            entries=len({r.faq_id for r in rows}),
            index_type=dense.meta.index_type.value,
            recall_at_10=dense.meta.recall_at_10,
            build_seconds=round(time.perf_counter() - t0, 3),
            created_at=datetime.now(UTC).isoformat(),
            embedder_version=embedder_version,
            derived_from=derived_from,
        )
        return cls(rows, tokens, x, dense, info, segmenter=seg, fusion=fusion, normalized=normalized_texts)

    # -- search --------------------------------------------------------------------------------------------
    def search(
        self, texts: Sequence[str], query_vectors: np.ndarray, top_k: int, pool: int | None = None
    ) -> list[list[Candidate]]:
        """For each (normalized text, query vector): the top_k FAQs by fused score, best first."""
        q = l2_normalize(np.atleast_2d(query_vectors))
        if len(texts) != q.shape[0]:
            raise ValueError("texts and query vectors must align")
        n_pool = pool or max(50, top_k * 10)
        _, dense_ids = self.dense.search(q, n_pool)
        out: list[list[Candidate]] = []
        for i, text in enumerate(texts):
            # keyword pools are taken by the unclipped scores (BM25's order), fused with the clipped ones
            kw_all = self.keyword.score_all(text, clip=False)
            docs = np.union1d(dense_ids[i][dense_ids[i] >= 0], _top_positive(kw_all, n_pool))
            if self.fusion.faq_keyword:
                kw_faq = self.faq_keyword.score_all(text, clip=False)
                docs = np.union1d(docs, self._rows_of(_top_positive(kw_faq, max(top_k, n_pool // 10))))
            docs = docs.astype(np.int64)
            dense_scores = np.asarray(self.vectors[docs] @ q[i], dtype=np.float64)
            keyword = np.minimum(kw_all[docs], 1.0)
            if self.fusion.faq_keyword:
                keyword = faq_keyword_scores(keyword, np.minimum(kw_faq[self._doc_faq_pos[docs]], 1.0))
            hits = collapse_by_faq(docs, dense_scores, keyword, self._doc_faq, self.fusion, top_k)
            out.append(
                [
                    Candidate(
                        faq_id=h.faq_id,
                        question=self.rows[h.doc].question,
                        matched=self.rows[h.doc].text,
                        dense_score=round(h.dense, 6),
                        keyword_score=round(h.keyword, 6),
                        fused_score=round(h.fused, 6),
                    )
                    for h in hits
                ]
            )
        return out

    def _rows_of(self, faqs: np.ndarray) -> np.ndarray:
        """Every row (question) of the given FAQ positions."""
        if faqs.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self._faq_rows[self._faq_offsets[f] : self._faq_offsets[f + 1]] for f in faqs])

    # -- persistence ---------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dense.save(directory)
        np.save(directory / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        with (directory / "questions.jsonl").open("w", encoding="utf-8") as f:
            for row, toks, norm in zip(self.rows, self.tokens, self.normalized, strict=True):
                rec = {
                    "faq_id": row.faq_id,
                    "question": row.question,
                    "text": row.text,
                    "tokens": toks,
                    "normalized": norm,
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        info = self.info.model_dump(mode="json", exclude={"active"})
        (directory / "info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", "utf-8")

    @classmethod
    def load(
        cls, directory: Path, segmenter: JiebaSegmenter | None = None, fusion: FusionConfig | None = None
    ) -> FaqIndex:
        try:
            info = IndexInfo.model_validate_json((directory / "info.json").read_text(encoding="utf-8"))
            rows, tokens, normalized = _read_questions(directory)
            vectors = np.load(directory / "vectors.npy", mmap_mode="r")
            dense = DenseIndex.load(directory)
            return cls(
                rows, tokens, vectors, dense, info, segmenter=segmenter, fusion=fusion, normalized=normalized
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # faiss raises RuntimeError
            raise IndexStoreError("INDEX_CORRUPT", f"index at {directory} cannot be loaded") from exc


def _read_questions(directory: Path) -> tuple[list[IndexedQuestion], list[list[str]], list[str]]:
    """questions.jsonl: the rows, their jieba tokens and their normalized texts."""
    rows: list[IndexedQuestion] = []
    tokens: list[list[str]] = []
    normalized: list[str] = []
    with (directory / "questions.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            rows.append(IndexedQuestion(rec["faq_id"], rec["question"], rec["text"]))
            tokens.append(list(rec["tokens"]))
            normalized.append(str(rec.get("normalized", rec["text"])))  # older versions: as written
    return rows, tokens, normalized


def _top_positive(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (at most) k highest scores that are > 0, in no particular order."""
    if k <= 0 or scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, min(k, scores.size) - 1)[:k]
    return top[scores[top] > 0]


def faq_keyword_scores(question_level: np.ndarray, faq_level: np.ndarray) -> np.ndarray:
    """A candidate question's keyword score: the larger of its own (jieba BM25) and its FAQ's (character BM25
    over all the FAQ's questions). Both are query-coverage normalized to [0, 1] (`serving.retrieval.keyword`)."""
    return np.maximum(np.asarray(question_level, np.float64), np.asarray(faq_level, np.float64))


class StoreLock:
    """An exclusive `flock` on `path`, a file in the index store. The store is the volume every serving pod
    mounts (ReadWriteMany: CephFS supports flock, Linux NFS clients map it to NFS byte-range locks), so the lock
    holds across replicas and pods; it is dropped when its holder dies (the kernel; on NFS the server's lease),
    so no stale lock outlives a crash. Two descriptors of one process exclude each other too (local
    filesystems). The file itself stays (removing it would race)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the lock; without `wait`, False at once when another holder has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> StoreLock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class IndexStore:
    """`<root>/<version>/` index directories plus the `<root>/ACTIVE` pointer."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        return self.root / check_index_version(version)

    def exists(self, version: str) -> bool:
        return (self.path(version) / "info.json").is_file()

    def lock(self, name: str) -> StoreLock:
        """`<root>/.<name>.lock` (a dot name: never a version, which cannot start with a dot)."""
        return StoreLock(self.root / f".{name}.lock")

    def info(self, version: str) -> IndexInfo:
        """One version's info.json (no vectors, no FAISS read); `active` is not set."""
        path = self.path(version) / "info.json"
        try:
            return IndexInfo.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexStoreError("INDEX_NOT_FOUND", f"index version {version} does not exist") from exc
        except (OSError, ValueError) as exc:
            raise IndexStoreError("INDEX_CORRUPT", f"index {version}: info.json cannot be read") from exc

    def rows(self, version: str) -> list[IndexedQuestion]:
        """The questions a version indexes (faq_id, standard question, text as written), in index order."""
        if not self.exists(version):
            raise IndexStoreError("INDEX_NOT_FOUND", f"index version {version} does not exist")
        try:
            return _read_questions(self.path(version))[0]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexStoreError("INDEX_CORRUPT", f"index {version}: questions cannot be read") from exc

    def versions(self) -> list[IndexInfo]:
        if not self.root.is_dir():
            return []
        active = self.active()
        out = []
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and not p.name.startswith(".") and (p / "info.json").is_file():
                try:
                    info = IndexInfo.model_validate_json((p / "info.json").read_text(encoding="utf-8"))
                except ValueError:
                    continue
                out.append(info.model_copy(update={"active": info.version == active}))
        return sorted(out, key=lambda i: i.created_at)

    def active(self) -> str | None:
        pointer = self.root / ACTIVE_POINTER
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def activate(self, version: str, *, if_active: str | None = None) -> None:
        """Point ACTIVE at `version`. With `if_active`: only if ACTIVE still names that version, checked and
        written under the ACTIVE lock (every writer takes it), else INDEX_ACTIVE_MOVED and nothing changes."""
        if not self.exists(version):
            raise IndexStoreError("INDEX_NOT_FOUND", f"index version {version} does not exist")
        with self.lock(ACTIVE_POINTER):
            if if_active is not None and (current := self.active()) != if_active:
                raise IndexStoreError("INDEX_ACTIVE_MOVED", f"ACTIVE is {current}, not {if_active}")
            write_pointer(self.root / ACTIVE_POINTER, version)

    def save(self, index: FaqIndex) -> Path:
        dest = self.path(index.version)
        if dest.exists():
            raise IndexStoreError("INDEX_EXISTS", f"index version {index.version} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{index.version}-", dir=self.root))
        try:
            index.save(tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if dest.exists():  # another replica published the same version first
                raise IndexStoreError(
                    "INDEX_EXISTS", f"index version {index.version} already exists"
                ) from exc
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def load(
        self, version: str, segmenter: JiebaSegmenter | None = None, fusion: FusionConfig | None = None
    ) -> FaqIndex:
        if not self.exists(version):
            raise IndexStoreError("INDEX_NOT_FOUND", f"index version {version} does not exist")
        return FaqIndex.load(self.path(version), segmenter=segmenter, fusion=fusion)
