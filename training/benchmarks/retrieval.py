"""Retrieval benchmark on question-matching pairs: dense vs keyword (jieba BM25) vs hybrid fusion.

    python -m training.benchmarks retrieval --pairs FILE [--embedder DIR] [--store DIR] [--max-queries N]

FILE is in AFQMC (JSONL), BQ (CSV with header) or LCQMC (TSV) layout. Only label-1 pairs are used: every
distinct first sentence is indexed once (deduplicated after ``bundle.normalize``); every distinct second
sentence is one query. Scoring rules (both matter on BQ, whose positives form paraphrase clusters: half of its
queries are also indexed first sentences and a quarter have several correct first sentences):

* a query's correct documents are all first sentences it is paired with (label 1), any of them counts;
* the document whose text equals the query (the query itself) is removed from that query's ranking.

Metrics per system: recall@1, recall@5, MRR@10 of the first correct document.

The three systems share serving's retrieval code (``serving.retrieval``): ``keyword`` is its jieba BM25
index (normalized scores), ``dense`` its FAISS index over L2-normalized embeddings, ``hybrid`` its
``FaqIndex`` search with the default weighted fusion - exactly what the retriever deployment ranks by (each
indexed sentence is its own FAQ here, so the FAQ-level keyword score is character BM25 against that sentence).
``hybrid_question_keyword`` is the same fusion with the question-level jieba score only: the ablation that
shows what the FAQ-level character keyword index adds, measured in the same run on the same embeddings.

Embeddings: ``--embedder DIR`` is a ``training.embedder`` output (sentence-transformers dir, run with
PyTorch); without it the LIVE embedder bundle of the model store (``--store``, default
``$XIAOKE_DATA_DIR/models``) runs through onnxruntime (int8 variant when present), as serving would.
The last stdout line is one JSON object {"dense": {...}, "keyword": {...}, "hybrid": {...},
"hybrid_question_keyword": {...}, ...}.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bundle.normalize import NormalizeConfig, normalize

METRICS = ("recall_at_1", "recall_at_5", "mrr_at_10")
SYSTEMS = ("dense", "keyword", "hybrid")
HYBRID_ABLATION = (
    "hybrid_question_keyword"  # the same fusion with question-level jieba BM25 only (no FAQ level)
)
REPORTED = (*SYSTEMS, HYBRID_ABLATION)


class TextEncoder(Protocol):
    normalize_config: NormalizeConfig

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class TorchEncoder:
    """A training.embedder output (sentence-transformers dir) run with PyTorch."""

    def __init__(self, model_dir: Path, batch_size: int = 128) -> None:
        from sentence_transformers import SentenceTransformer

        meta_path = Path(model_dir) / "xiaoke_training.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        self.normalize_config = NormalizeConfig.model_validate(meta.get("normalize", {}))
        self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self.batch_size = batch_size
        self.name = str(model_dir)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)


class OnnxEncoder:
    """An embedder bundle run with onnxruntime + tokenizers, the way serving runs it."""

    def __init__(self, bundle_dir: Path, batch_size: int = 64, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from bundle.manifest import Variant
        from bundle.store import verify_bundle

        self.manifest = verify_bundle(bundle_dir)
        self.normalize_config = self.manifest.normalize
        variant = Variant.INT8 if Variant.INT8 in self.manifest.variants else Variant.FP32
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        self.session = ort.InferenceSession(
            str(Path(bundle_dir) / self.manifest.model_file(variant)),
            opts,
            providers=["CPUExecutionProvider"],
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.output = self.manifest.embedding_output or "sentence_embedding"
        self.tokenizer = Tokenizer.from_file(str(Path(bundle_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.manifest.max_seq_len)
        pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        self.batch_size = batch_size
        self.name = f"bundle {self.manifest.version} ({variant.value})"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for s in range(0, len(texts), self.batch_size):
            idx = order[s : s + self.batch_size]
            encs = self.tokenizer.encode_batch([texts[i] for i in idx])
            feed = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
            }
            (vec,) = self.session.run([self.output], {k: v for k, v in feed.items() if k in self.inputs})
            if out is None:
                out = np.zeros((len(texts), vec.shape[-1]), dtype=np.float32)
            out[idx] = vec
        assert out is not None
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def load_encoder(embedder: Path | None, store: Path | None) -> TextEncoder:
    """``--embedder DIR`` (a sentence-transformers dir, ours or not) run with PyTorch, else the store's LIVE
    embedder bundle. A directory that is no embedder (e.g. an intent checkpoint: a plain BERT classifier would
    silently have been mean-pooled into "embeddings") raises ValueError naming it."""
    if embedder is not None:
        if not embedder.is_dir():
            raise ValueError(f"--embedder {embedder}: no such directory")
        meta_path = embedder / "xiaoke_training.json"
        try:
            kind = (
                json.loads(meta_path.read_text(encoding="utf-8")).get("kind") if meta_path.is_file() else None
            )
        except (ValueError, AttributeError):
            raise ValueError(f"--embedder {embedder}: unreadable {meta_path.name}") from None
        if kind not in (None, "embedder"):
            raise ValueError(f"--embedder {embedder}: holds a model of kind {kind!r}, not an embedder")
        if (embedder / "manifest.json").is_file():
            raise ValueError(
                f"--embedder {embedder}: a bundle; --embedder takes a training.embedder output "
                "(bundles are read from the --store's LIVE embedder)"
            )
        try:
            return TorchEncoder(embedder)
        except Exception as exc:  # sentence-transformers / transformers raise anything on a bad directory
            first = str(exc).strip().split("\n")[0]
            raise ValueError(
                f"--embedder {embedder}: cannot load as a sentence-transformers model "
                f"({type(exc).__name__}: {first[:300]})"
            ) from exc
    from bundle.manifest import BundleKind
    from bundle.store import ModelStore

    root = (
        store
        or Path(os.environ.get("XIAOKE_DATA_DIR", Path(__file__).resolve().parents[2] / "var")) / "models"
    )
    return OnnxEncoder(ModelStore(root).resolve(BundleKind.EMBEDDER))


@dataclass
class RetrievalTask:
    """Documents, unique queries, the set of correct documents per query and the query's own document."""

    docs: list[str]
    queries: list[str]
    gold: list[set[int]]
    self_doc: list[int]  # index of the document whose text equals the query, -1 if none


def build_task(
    pair_file: Path, norm: NormalizeConfig, max_queries: int | None = None, seed: int = 13
) -> RetrievalTask:
    """The retrieval task of a pair file (see the module docstring for the scoring rules)."""
    from training.embedder import load_pair_file

    docs: list[str] = []
    doc_id: dict[str, int] = {}
    gold_of: dict[str, set[int]] = {}
    for s1, s2, y in load_pair_file(pair_file):
        if y != 1:
            continue
        a, b = normalize(s1, norm), normalize(s2, norm)
        if not a or not b or a == b:
            continue
        if a not in doc_id:
            doc_id[a] = len(docs)
            docs.append(a)
        gold_of.setdefault(b, set()).add(doc_id[a])
    queries = list(gold_of)
    if max_queries is not None and len(queries) > max_queries:
        keep = np.sort(np.random.default_rng(seed).choice(len(queries), max_queries, replace=False))
        queries = [queries[i] for i in keep]
    return RetrievalTask(docs, queries, [gold_of[q] for q in queries], [doc_id.get(q, -1) for q in queries])


def _question_keyword_only(index: Any) -> Any:
    """A view of `index` whose fusion uses the question-level keyword score only (side-by-side ablation)."""
    view = copy.copy(index)
    view.fusion = dataclasses.replace(index.fusion, faq_keyword=False)
    return view


def rank_metrics(
    ranked: Sequence[Sequence[int]], gold: Sequence[int | set[int]], exclude: Sequence[int] | None = None
) -> dict[str, float]:
    """recall@1, recall@5, MRR@10 from the ranked doc ids of each query (first correct doc counts).

    `gold[i]` is one doc id or a set of correct ids; `exclude[i]` (>= 0) is removed from query i's ranking.
    """
    ranks = []
    for i, (ids, g) in enumerate(zip(ranked, gold, strict=True)):
        ok = g if isinstance(g, set) else {g}
        skip = exclude[i] if exclude is not None else -1
        top = [d for d in ids if d != skip][:10]
        ranks.append(next((k + 1 for k, d in enumerate(top) if d in ok), 0))
    r = np.asarray(ranks)
    if len(r) == 0:
        return dict.fromkeys(METRICS, 0.0)
    return {
        "recall_at_1": round(float(np.mean(r == 1)), 4),
        "recall_at_5": round(float(np.mean((r >= 1) & (r <= 5))), 4),
        "mrr_at_10": round(float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))), 4),
    }


def evaluate(task: RetrievalTask, encoder: TextEncoder) -> dict[str, Any]:
    """Score the three systems on `task` (texts already normalized)."""
    from serving.retrieval import FaqIndex, IndexedQuestion, JiebaSegmenter

    docs, queries = task.docs, task.queries
    t0 = time.monotonic()
    doc_vecs = encoder.encode(list(docs))
    query_vecs = encoder.encode(list(queries))
    t_encode = time.monotonic() - t0
    rows = [IndexedQuestion(str(i), d, d) for i, d in enumerate(docs)]
    index = FaqIndex.build(
        rows, doc_vecs, list(docs), version="bench", embedder_version="bench", segmenter=JiebaSegmenter()
    )
    k = 11  # one extra: the query's own document is removed from its ranking
    _, dense_ids = index.dense.search(query_vecs, k)
    keyword = [[doc for doc, _ in index.keyword.search(q, k)] for q in queries]
    hybrid = [[int(c.faq_id) for c in cands] for cands in index.search(list(queries), query_vecs, top_k=k)]
    plain = _question_keyword_only(index).search(list(queries), query_vecs, top_k=k)
    dense = [[int(i) for i in row if i >= 0] for row in dense_ids]
    return {
        "dense": rank_metrics(dense, task.gold, task.self_doc),
        "keyword": rank_metrics(keyword, task.gold, task.self_doc),
        "hybrid": rank_metrics(hybrid, task.gold, task.self_doc),
        HYBRID_ABLATION: rank_metrics(
            [[int(c.faq_id) for c in cs] for cs in plain], task.gold, task.self_doc
        ),
        "n_docs": len(docs),
        "n_queries": len(queries),
        "queries_with_several_answers": sum(len(g) > 1 for g in task.gold),
        "queries_that_are_documents": sum(d >= 0 for d in task.self_doc),
        "fusion": {"method": index.fusion.method.value, "dense_weight": index.fusion.dense_weight},
        "encode_seconds": round(t_encode, 1),
        "seconds": round(time.monotonic() - t0, 1),
    }


def run_retrieval(
    pair_file: Path, *, encoder: TextEncoder, max_queries: int | None = None, seed: int = 13
) -> dict[str, Any]:
    task = build_task(pair_file, encoder.normalize_config, max_queries, seed)
    if not task.queries:
        raise ValueError(f"{pair_file}: no label-1 pairs")
    out = evaluate(task, encoder)
    out["dataset"] = str(pair_file)
    out["embedder"] = getattr(encoder, "name", type(encoder).__name__)
    return out


def faq_heldout(encoder: TextEncoder, faq: Path | None = None) -> dict[str, Any]:
    """The demo FAQ's held-out queries against the full FAQ index (standard + similar questions)."""
    from training.embedder import DEFAULT_FAQ, build_faq_index, load_faq

    entries = load_faq(faq or DEFAULT_FAQ)
    norm = encoder.normalize_config
    index = build_faq_index(encoder.encode, entries, norm)
    faq_ids = sorted({e.faq_id for e in entries})
    pos = {f: i for i, f in enumerate(faq_ids)}
    pairs = [(normalize(q, norm), pos[e.faq_id]) for e in entries for q in e.heldout]
    texts = [q for q, _ in pairs]
    gold = [g for _, g in pairs]
    qv = encoder.encode(texts)
    doc_faq = [pos[r.faq_id] for r in index.rows]

    def collapse(doc_ids: Sequence[int]) -> list[int]:
        return list(dict.fromkeys(doc_faq[d] for d in doc_ids))[:10]

    _, dense_ids = index.dense.search(qv, 100)
    dense = [collapse([int(i) for i in row if i >= 0]) for row in dense_ids]
    keyword = [collapse([d for d, _ in index.keyword.search(q, 100)]) for q in texts]
    hybrid = [[pos[c.faq_id] for c in cands] for cands in index.search(texts, qv, top_k=10)]
    plain = [[pos[c.faq_id] for c in cs] for cs in _question_keyword_only(index).search(texts, qv, top_k=10)]
    return {
        "dense": rank_metrics(dense, gold),
        "keyword": rank_metrics(keyword, gold),
        "hybrid": rank_metrics(hybrid, gold),
        HYBRID_ABLATION: rank_metrics(plain, gold),
        "n_queries": len(texts),
        "n_faqs": len(entries),
    }


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'dataset':<20} {'system':<24} {'recall@1':>9} {'recall@5':>9} {'MRR@10':>8}"]
    for name, r in results.items():
        for s in REPORTED:
            if s in r:
                m = r[s]
                lines.append(
                    f"{name:<20} {s:<24} {m['recall_at_1']:>9.4f} {m['recall_at_5']:>9.4f} {m['mrr_at_10']:>8.4f}"
                )
    return "\n".join(lines)


def add_cli_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--pairs", type=Path, default=None, help="AFQMC/BQ/LCQMC pair file")
    ap.add_argument(
        "--faq-heldout", action="store_true", help="score the demo FAQ's held-out queries instead"
    )
    ap.add_argument("--embedder", type=Path, default=None, help="training.embedder output dir")
    ap.add_argument("--store", type=Path, default=None, help="model store (default $XIAOKE_DATA_DIR/models)")
    ap.add_argument("--max-queries", type=int, default=None, help="sample this many queries (seeded)")


def main_args(args: argparse.Namespace) -> int:
    """0 and the JSON result as the last stdout line; bad input -> one ``error: ...`` line on stderr, exit 2
    (stdout then holds no result line for a caller to mistake for one)."""
    from bundle.store import BundleError

    if not args.faq_heldout and args.pairs is None:
        print("error: give --pairs FILE or --faq-heldout", file=sys.stderr)
        return 2
    try:
        if args.pairs is not None and not args.faq_heldout:
            from training.embedder import load_pair_file

            load_pair_file(args.pairs)  # a bad pair file is reported before a model is loaded
        encoder = load_encoder(args.embedder, args.store)
        if args.faq_heldout:
            result = faq_heldout(encoder)
            name = "faq_heldout"
        else:
            result = run_retrieval(args.pairs, encoder=encoder, max_queries=args.max_queries)
            name = args.pairs.parent.name or args.pairs.name
    except BundleError as exc:  # no LIVE embedder in the store, or a tampered one
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # PairFileError (a ValueError): missing / malformed pair file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table({name: result}))
    print(json.dumps({s: result[s] for s in REPORTED}, ensure_ascii=False))
    return 0
