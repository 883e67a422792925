"""Sentence embedder: BERT + mean pooling + L2 normalize, trained contrastively, saved for sentence-transformers.

    python -m training.embedder --out DIR [--pairs FILE ...] [--faq FILE] [--base DIR|auto|none]
                                [--epochs E] [--max-pairs N] [--max-minutes M] [--batch-size B] [--lr LR]

Training data (positives only; other in-batch examples are the negatives):

* the demo FAQ (default ``data/demo/faq/faq.jsonl``): every pair among {standard question, similar questions}
  of one FAQ. The ``heldout`` queries are never read for training; one similar question per FAQ (chosen by a
  stable hash) is kept out of training as the validation query that calibrates the thresholds.
* pair files given with ``--pairs`` (label-1 rows): AFQMC layout (JSONL ``sentence1/sentence2/label``),
  BQ (CSV with header ``sentence1,sentence2,label``, BOM tolerated) or LCQMC (TSV ``s1<TAB>s2<TAB>label``).

Loss: MultipleNegativesRankingLoss with in-batch negatives, symmetric (query->doc and doc->query
cross-entropy over the scaled cosine matrix, averaged). Batches never hold two pairs of the same group (one FAQ,
or one pair-file anchor sentence), so no true positive is used as a negative. With ``--cosent-weight W`` > 0,
every step adds W x CoSENT over a batch of the pair files' labelled rows (label-1 cosines ranked above label-0
ones: the label-0 rows are lexically close questions with another meaning, i.e. hard negatives); a step then
encodes twice as many texts.

Base: ``--base auto`` (default) uses our MLM-pretrained small BERT at ``$XIAOKE_DATA_DIR/pretrained/mlm-small``
(written by ``python -m training.pretrain``) when present, else a from-scratch 4-layer hidden-256 BERT over our
character vocabulary (``training.tokenizer``).

Thresholds (``answer`` / ``suggest`` on the fused retrieval score of ``serving.retrieval``): see
:func:`calibrate_retrieval_thresholds`. Output: a sentence-transformers directory (Transformer -> Pooling(mean)
-> Normalize) plus ``xiaoke_training.json`` (kind ``embedder``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bundle.normalize import NormalizeConfig, normalize
from training.classifier import (
    check_out_dir,
    max_len_arg,
    positive_float,
    positive_int,
    resolve_base,
    write_output_dir,
)

log = logging.getLogger(__name__)

TRAINING_META = "xiaoke_training.json"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_FAQ = REPO / "data" / "demo" / "faq" / "faq.jsonl"
DEFAULT_INTENTS = REPO / "data" / "demo" / "intents" / "train.jsonl"
# Out-of-scope demo intents: messages no FAQ should answer (negatives for threshold calibration).
OUT_OF_SCOPE_INTENTS = ("greeting", "goodbye", "thanks", "chitchat")
ANSWER_PRECISION = 0.9  # top-1 precision required at/above the `answer` threshold
SUGGEST_PRECISION = 0.6  # top-3 hit rate required at/above the `suggest` threshold
THRESHOLD_FLOOR = 0.3


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Pair:
    anchor: str
    positive: str
    group: str  # pairs of one group never share a batch (they would be false negatives of each other)


class PairFileError(ValueError):
    """A pair file is missing or malformed; the message names the file and line."""


def _read_utf8(path: Path) -> str:
    """The text of ``path`` (see ``training.data.decode_utf8``) with universal newlines like ``read_text``."""
    from training.data import decode_utf8

    return decode_utf8(path.read_bytes(), path, PairFileError).replace("\r\n", "\n").replace("\r", "\n")


def load_pair_file(path: str | Path) -> list[tuple[str, str, int]]:
    """(sentence1, sentence2, label) rows of an AFQMC (JSONL), BQ (CSV + header) or LCQMC (TSV) file."""
    path = Path(path)
    if not path.is_file():
        raise PairFileError(f"{path}: no such file")
    raw = _read_utf8(path)
    lines = raw.split("\n")  # not splitlines(): JSON text may hold a raw U+2028 / U+0085
    first = next((ln for ln in lines if ln.strip()), "")
    if not first:
        raise PairFileError(f"{path}: no sentence pairs (the file is empty)")
    rows: list[tuple[str, str, int]] = []
    if first.lstrip().startswith("{"):
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                rows.append((str(obj["sentence1"]), str(obj["sentence2"]), int(obj["label"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise PairFileError(f"{path}:{n}: expected sentence1/sentence2/label JSON") from exc
        return rows
    delimiter = "\t" if "\t" in first else ","
    # LCQMC-style TSV has no quoting: a '"' is part of the sentence (QUOTE_MINIMAL would swallow it, or
    # everything up to the next '"'); BQ-style CSV is RFC-4180 quoted
    reader = csv.reader(
        io.StringIO(raw),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
    )
    first_record = True
    try:
        for rec in reader:
            n = reader.line_num  # the physical line (a quoted CSV field may span several)
            if not rec or not any(c.strip() for c in rec):
                continue
            if first_record:
                first_record = False
                if rec[-1].strip().lower() == "label":
                    continue  # header
            if len(rec) < 3:
                sep = "<TAB>" if delimiter == "\t" else delimiter
                raise PairFileError(
                    f"{path}:{n}: expected sentence1{sep}sentence2{sep}label, got {len(rec)} field(s)"
                )
            try:
                label = int(rec[-1].strip())
            except ValueError as exc:
                raise PairFileError(f"{path}:{n}: label {rec[-1]!r} is not 0/1") from exc
            s1, s2 = (rec[0], rec[1]) if len(rec) == 3 else (rec[0], delimiter.join(rec[1:-1]))
            rows.append((s1, s2, label))
    except csv.Error as exc:
        raise PairFileError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    return rows


def positive_pairs(rows: Iterable[tuple[str, str, int]], source: str) -> list[Pair]:
    return [Pair(a, b, f"{source}:{a}") for a, b, y in rows if y == 1 and a.strip() and b.strip()]


def labeled_rows(rows: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Every usable (sentence1, sentence2, label) row, both labels: the pair-ranking (CoSENT) objective's data."""
    return [(a, b, 1 if y == 1 else 0) for a, b, y in rows if a.strip() and b.strip()]


@dataclass(frozen=True)
class FaqEntry:
    faq_id: str
    question: str
    similar: list[str]
    heldout: list[str]
    intent: str = ""
    answer: str = ""


def load_faq(path: str | Path) -> list[FaqEntry]:
    out = []
    path = Path(path)
    if not path.is_file():
        raise PairFileError(f"{path}: no such file")
    for n, line in enumerate(_read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append(
                FaqEntry(
                    str(obj["id"]),
                    str(obj["question"]),
                    [str(s) for s in obj.get("similar", []) or []],
                    [str(s) for s in obj.get("heldout", []) or []],
                    str(obj.get("intent", "")),
                    str(obj.get("answer", "")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PairFileError(f"{path}:{n}: expected an FAQ object with id/question/similar") from exc
    return out


def _stable_pick(key: str, n: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % n


@dataclass
class FaqSplit:
    """Training pairs, the per-FAQ validation queries and the entries with validation queries removed."""

    pairs: list[Pair]
    val_queries: list[tuple[str, str]]  # (query, faq_id)
    train_entries: list[FaqEntry]


def split_faq(entries: Sequence[FaqEntry], val_per_faq: int = 1, answer_chars: int = 0) -> FaqSplit:
    """Hold out `val_per_faq` similar questions per FAQ (stable choice); pairs from the rest. Never heldout.

    With `answer_chars` > 0, each training question is also paired with the first `answer_chars` characters
    of its FAQ's answer (answers describe the situation in other words than the questions do)."""
    pairs: list[Pair] = []
    val: list[tuple[str, str]] = []
    kept: list[FaqEntry] = []
    for e in entries:
        similar = list(dict.fromkeys(s for s in e.similar if s.strip() and s != e.question))
        held: list[str] = []
        for _ in range(min(val_per_faq, max(0, len(similar) - 1))):
            held.append(similar.pop(_stable_pick(e.faq_id + "/val/" + str(len(held)), len(similar))))
        val.extend((q, e.faq_id) for q in held)
        texts = [e.question, *similar]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                pairs.append(Pair(texts[j], texts[i], f"faq:{e.faq_id}"))
        if answer_chars > 0 and e.answer.strip():
            pairs.extend(Pair(t, e.answer[:answer_chars], f"faq:{e.faq_id}") for t in texts)
        kept.append(FaqEntry(e.faq_id, e.question, similar, [], e.intent, e.answer))
    return FaqSplit(pairs, val, kept)


def out_of_scope_queries(path: Path = DEFAULT_INTENTS, limit: int = 200) -> list[str]:
    """Demo messages of chit-chat-like intents: no FAQ should answer them."""
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                if obj.get("label") in OUT_OF_SCOPE_INTENTS:
                    out.append(str(obj["text"]))
    random.Random(13).shuffle(out)
    return out[:limit]


# ---------------------------------------------------------------------------------------------- model


@dataclass
class ScratchArch:
    num_hidden_layers: int = 4
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 128


@dataclass
class EmbedderConfig:
    epochs: float = 6.0
    batch_size: int = 64
    lr: float | None = None  # None: 3e-4 from scratch, 1e-4 on a pretrained base
    max_len: int = 48
    scale: float = 20.0  # cosine -> logit scale of the ranking loss
    # weight of the CoSENT term on labelled pair-file rows (both labels; 0: off). Opt-in: from scratch it moved
    # hybrid recall@1 by +0.7 pt on BQ and -0.4 pt on AFQMC (docs/benchmarks.md), i.e. nothing measurable
    cosent_weight: float = 0.0
    cosent_scale: float = 20.0
    symmetric: bool = True
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 13
    max_pairs: int | None = None  # cap on pair-file positives (FAQ pairs are always all used)
    max_minutes: float | None = None
    val_per_faq: int = 1
    answer_chars: int = 32  # pair FAQ questions with their answer's opening (0: off)
    threads: int | None = None
    arch: ScratchArch = field(default_factory=ScratchArch)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)


def mean_pool(hidden: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class Encoder:
    """A BERT + mean pooling + L2 normalize encoder over normalized texts (training and evaluation)."""

    def __init__(self, model: Any, tokenizer: Any, max_len: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_len = max_len

    def forward(self, texts: Sequence[str]) -> Any:
        import torch.nn.functional as F

        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_len, padding=True, return_tensors="pt"
        )
        hidden = self.model(**enc).last_hidden_state
        return F.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        import torch

        was_training = self.model.training
        self.model.eval()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                out[idx] = self.forward([texts[i] for i in idx]).float().numpy()
        self.model.train(was_training)
        return out


def _build_model(base: Path | None, texts: Sequence[str], cfg: EmbedderConfig) -> tuple[Any, Any, str]:
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    if base is not None:
        from training.classifier import base_error, plain_bert_config, read_base_config

        base_cfg = read_base_config(base)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(base))
            if base_cfg.get("model_type") == "xiaoke_bert_ngram":  # an intent / sentiment model of ours
                model = BertModel.from_pretrained(str(base), config=BertConfig(**plain_bert_config(base_cfg)))
            else:
                model = AutoModel.from_pretrained(str(base))
        except Exception as exc:  # transformers raises anything on a directory that is no model
            raise base_error(base, exc) from exc
        return model, tokenizer, str(base)
    from training.tokenizer import build_tokenizer, build_vocab

    tokenizer = build_tokenizer(build_vocab(texts), cfg.max_len)
    a = cfg.arch
    model = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=a.hidden_size,
            num_hidden_layers=a.num_hidden_layers,
            num_attention_heads=a.num_attention_heads,
            intermediate_size=a.intermediate_size,
            max_position_embeddings=max(a.max_position_embeddings, cfg.max_len),
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return model, tokenizer, "scratch:" + json.dumps(asdict(a), sort_keys=True)


def no_duplicate_batches(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle and cut into batches in which every group appears at most once (NoDuplicatesBatchSampler)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    pending = order
    while pending:
        batch: list[int] = []
        groups: set[str] = set()
        rest: list[int] = []
        for i in pending:
            if len(batch) < batch_size and pairs[i].group not in groups:
                batch.append(i)
                groups.add(pairs[i].group)
            else:
                rest.append(i)
            if len(batch) == batch_size:
                batches.append(batch)
                batch, groups = [], set()
        if batch:
            if len(batch) >= 2:
                batches.append(batch)
            else:
                rest = []  # a lone leftover pair has no in-batch negative; drop it this epoch
        pending = rest
    return batches


def ranking_loss(a: Any, b: Any, scale: float, symmetric: bool) -> Any:
    import torch
    import torch.nn.functional as F

    logits = a @ b.T * scale
    target = torch.arange(a.shape[0])
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss


def cosent_loss(u: Any, v: Any, labels: Any, scale: float) -> Any:
    """CoSENT (Su, 2022): every labelled pair with label 1 should have a higher cosine than every pair with
    label 0 in the batch: log(1 + sum over (pos i, neg j) of exp(scale * (cos_j - cos_i))). The label-0 rows of
    AFQMC/BQ/LCQMC are lexically close questions with a different meaning, i.e. hard negatives."""
    import torch

    cos = (u * v).sum(-1) * scale
    diff = cos[None, :] - cos[:, None]  # [i, j] = cos_j - cos_i
    mask = (labels[:, None] > labels[None, :]).to(cos.dtype)  # i positive, j negative
    diff = diff - (1 - mask) * 1e12
    return torch.logsumexp(torch.cat([torch.zeros(1, dtype=cos.dtype), diff.flatten()]), dim=0)


# ---------------------------------------------------------------------------------------------- retrieval


def build_faq_index(
    encoder: Callable[[list[str]], np.ndarray], entries: Sequence[FaqEntry], norm: NormalizeConfig
):
    """A serving.retrieval.FaqIndex over the entries' standard + similar questions (the serving scorer)."""
    from serving.retrieval import FaqIndex, flatten_entries

    class _E:
        def __init__(self, e: FaqEntry) -> None:
            self.faq_id, self.question, self.similar = e.faq_id, e.question, e.similar

    rows = flatten_entries([_E(e) for e in entries])
    texts = [normalize(r.text, norm) for r in rows]
    return FaqIndex.build(rows, encoder(texts), texts, version="calibration", embedder_version="training")


def retrieval_eval(
    index: Any,
    encoder: Callable[[list[str]], np.ndarray],
    queries: Sequence[tuple[str, str]],
    norm: NormalizeConfig,
) -> dict[str, Any]:
    """recall@1/@5 and MRR@10 of the fused ranking, plus per-query (top-1 score, top-1 ok, rank) rows."""
    texts = [normalize(q, norm) for q, _ in queries]
    if not texts:
        return {"n": 0}
    results = index.search(texts, encoder(texts), top_k=10)
    ranks = []
    for (_, gold), cands in zip(queries, results, strict=True):
        ids = [c.faq_id for c in cands]
        ranks.append(ids.index(gold) + 1 if gold in ids else 0)
    r = np.array(ranks)
    return {
        "n": len(texts),
        "recall_at_1": float(np.mean(r == 1)),
        "recall_at_5": float(np.mean((r >= 1) & (r <= 5))),
        "mrr_at_10": float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))),
        "_top_scores": [c[0].fused_score if c else 0.0 for c in results],
        "_gaps": [_lead(c) for c in results],
        "_ranks": ranks,
        "_top_ids": [c[0].faq_id if c else None for c in results],
    }


def _lead(cands: Sequence[Any]) -> float:
    """How far the top FAQ's fused score leads the next FAQ's (0 when nothing was found)."""
    if not cands:
        return 0.0
    return float(cands[0].fused_score - (cands[1].fused_score if len(cands) > 1 else 0.0))


def _lowest_threshold(scores: np.ndarray, ok: np.ndarray, target: float) -> float | None:
    """Lowest t among scores such that mean(ok | score >= t) >= target (ties accepted together)."""
    order = np.argsort(-scores, kind="stable")
    s, k = scores[order], ok[order].astype(np.float64)
    prec = np.cumsum(k) / np.arange(1, len(k) + 1)
    best = None
    for j in range(len(s)):
        if j + 1 < len(s) and s[j + 1] == s[j]:
            continue
        if prec[j] >= target:
            best = float(s[j])
    return best


THRESHOLD_RULE = (
    f"queries = FAQ validation queries (one similar question per FAQ, excluded from training and from the "
    f"calibration index) + out-of-scope demo messages ({', '.join(OUT_OF_SCOPE_INTENTS)}); score = top-1 fused "
    f"score of serving.retrieval (default weighted fusion); answer = lowest t with top-1 precision >= "
    f"{ANSWER_PRECISION} over queries scoring >= t (out-of-scope count as wrong); suggest = lowest t <= answer with "
    f"top-3 hit rate >= {SUGGEST_PRECISION} over queries scoring >= t; both clipped to [{THRESHOLD_FLOOR}, 0.99]; "
    f"answer_margin = lowest m such that answering (score >= answer) or (score >= suggest and lead over the next "
    f"FAQ >= m) keeps top-1 precision >= {ANSWER_PRECISION} over everything answered (none when no m does); "
    f"answer_agree = lowest t >= suggest such that also answering a top FAQ scoring >= t whose intent is the "
    f"query's own (the FAQ's intent for a validation query, none for an out-of-scope one: the intent classifier "
    f"assumed right) keeps top-1 precision >= {ANSWER_PRECISION} over everything answered (none when no t does)"
)


def calibrate_retrieval_thresholds(
    val_scores: Sequence[float],
    val_ranks: Sequence[int],
    oos_scores: Sequence[float],
    val_gaps: Sequence[float] | None = None,
    oos_gaps: Sequence[float] | None = None,
    val_agree: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """``answer`` / ``suggest`` bands on the top-1 fused score and, when the leads over the next FAQ are given,
    ``answer_margin``; when ``val_agree`` (the top FAQ's intent is the validation query's own) is given too,
    ``answer_agree`` (see THRESHOLD_RULE). Out-of-scope queries count as wrong answers and never agree."""
    scores = np.array([*val_scores, *oos_scores], dtype=np.float64)
    ranks = np.array([*val_ranks, *([0] * len(oos_scores))])
    if len(scores) == 0:
        return {"answer": 0.8, "suggest": 0.5, "rule": "no calibration data: fixed defaults"}

    def clip(t: float | None, default: float) -> float:
        return round(float(min(max(default if t is None else t, THRESHOLD_FLOOR), 0.99)), 4)

    answer = clip(_lowest_threshold(scores, ranks == 1, ANSWER_PRECISION), 0.99)
    suggest = clip(_lowest_threshold(scores, (ranks >= 1) & (ranks <= 3), SUGGEST_PRECISION), answer)
    suggest = min(suggest, answer)
    out: dict[str, Any] = {"answer": answer, "suggest": suggest, "rule": THRESHOLD_RULE}
    if val_gaps is not None and oos_gaps is not None:
        gaps = np.array([*val_gaps, *oos_gaps], dtype=np.float64)
        margin = _answer_margin(scores, gaps, ranks == 1, answer, suggest)
        out["answer_margin"] = margin
        if val_agree is not None:
            agree = np.array([*val_agree, *([False] * len(oos_scores))], dtype=bool)
            answered = scores >= answer
            if margin is not None:
                answered |= (scores >= suggest) & (gaps >= margin)
            out["answer_agree"] = _answer_agree(scores, agree, ranks == 1, answered, suggest)
    return out


def _answer_agree(
    scores: np.ndarray, agree: np.ndarray, ok: np.ndarray, answered: np.ndarray, suggest: float
) -> float | None:
    """Lowest level t >= suggest for which everything answered (``answered``, plus agreeing queries scoring
    >= t) keeps top-1 precision >= ANSWER_PRECISION; None when no t in the band does."""
    extra = agree & ~answered & (scores >= suggest)
    for t in np.unique(scores[extra]):  # ascending: the first that holds is the lowest
        if ok[answered | (extra & (scores >= t))].mean() >= ANSWER_PRECISION:
            return round(float(t), 4)
    return None


def _answer_margin(
    scores: np.ndarray, gaps: np.ndarray, ok: np.ndarray, answer: float, suggest: float
) -> float | None:
    """Lowest lead m for which everything answered (score >= answer, or score >= suggest and lead >= m) keeps
    top-1 precision >= ANSWER_PRECISION; None when even the largest lead in the band does not."""
    base = scores >= answer
    band = (scores >= suggest) & ~base
    for m in np.unique(gaps[band]):  # ascending: the first that holds is the lowest
        answered = base | (band & (gaps >= m))
        if ok[answered].mean() >= ANSWER_PRECISION:
            return round(max(float(m), 0.01), 4)
    return None


# ---------------------------------------------------------------------------------------------- training


@dataclass
class EmbedderResult:
    out_dir: Path
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    seconds: float


def _sha256_pairs(pairs: Sequence[Pair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.anchor, p.positive], ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()


class BudgetedLinearSchedule:
    """Linear warm-up, then linear decay of every param group's learning rate to zero at step ``total``.

    With a wall-clock ``deadline``, ``total`` is re-planned every ``replan_every`` steps from the measured
    seconds per step, so that the decay ends when the budget does: a run that the budget cuts short (the
    default build's embedder on a busy machine) finishes on a decayed learning rate instead of stopping near
    its peak, as a fixed schedule planned for all epochs would. The plan only ever shrinks; warm-up is
    ``warmup_ratio`` of the first plan that the measurement allows."""

    def __init__(
        self,
        opt: Any,
        total_steps: int,
        warmup_ratio: float,
        deadline: float | None,
        *,
        replan_every: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.opt, self.deadline, self.clock = opt, deadline, clock
        self.replan_every = replan_every
        self.total = max(1, total_steps)
        self.warmup_ratio = warmup_ratio
        self.warmup = int(warmup_ratio * self.total)
        self.base_lrs = [g["lr"] for g in opt.param_groups]
        self.t_start = clock()
        self.replanned = False
        self._apply(0)

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def _apply(self, step: int) -> None:
        f = self.factor(step)
        for g, base in zip(self.opt.param_groups, self.base_lrs, strict=True):
            g["lr"] = base * f

    def step(self, step: int) -> None:
        """Call after optimizer step number ``step`` (1-based); sets the rate for the next one."""
        if self.deadline is not None and step % self.replan_every == 0:
            now = self.clock()
            per_step = (now - self.t_start) / step
            fits = step + int(max(0.0, self.deadline - now) / max(per_step, 1e-9))
            if fits < self.total:
                self.total = max(step + 1, fits)
                if not self.replanned:
                    self.warmup = min(self.warmup, max(step, int(self.warmup_ratio * self.total)))
                self.replanned = True
        self._apply(step)


def train_embedder(
    out_dir: str | Path,
    *,
    pair_files: Sequence[str | Path] = (),
    faq: str | Path | None = DEFAULT_FAQ,
    base: str | Path | None = "auto",
    config: EmbedderConfig | None = None,
    on_log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> EmbedderResult:
    """Train the embedder and write the checkpoint directory. See the module docstring. An ``out_dir`` holding
    something else than a previous embedder of ours is refused unless ``overwrite`` (``check_out_dir``)."""
    import torch
    from transformers import set_seed

    cfg = config or EmbedderConfig()
    say = on_log or (lambda m: print(m, flush=True))
    t0 = time.monotonic()
    out = Path(out_dir)
    check_out_dir(out, "embedder", overwrite=overwrite)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    norm = cfg.normalize

    entries = load_faq(faq) if faq and Path(faq).is_file() else []
    split = split_faq(entries, cfg.val_per_faq, cfg.answer_chars) if entries else FaqSplit([], [], [])
    external: list[Pair] = []
    labeled: list[tuple[str, str, int]] = []
    sources = []
    for f in pair_files:
        rows = load_pair_file(f)
        got = positive_pairs(rows, Path(f).name)
        sources.append({"file": str(f), "positives": len(got)})
        external.extend(got)
        labeled.extend(labeled_rows(rows))
    if cfg.cosent_weight <= 0 or len({y for *_, y in labeled}) < 2:
        labeled = []  # the pair-ranking term needs both labels
    labeled = [(normalize(a, norm), normalize(b, norm), y) for a, b, y in labeled]
    rng.shuffle(labeled)
    if cfg.max_pairs is not None and len(external) > cfg.max_pairs:
        external = rng.sample(external, cfg.max_pairs)
    pairs = [
        Pair(normalize(p.anchor, norm), normalize(p.positive, norm), p.group) for p in split.pairs + external
    ]
    if len(pairs) < 2:
        raise ValueError("need at least 2 positive pairs (FAQ file and/or --pairs files)")

    base_dir = resolve_base(base)
    model, tokenizer, base_desc = _build_model(
        base_dir,
        [t for p in pairs for t in (p.anchor, p.positive)] + [t for a, b, _ in labeled for t in (a, b)],
        cfg,
    )
    tokenizer.model_max_length = cfg.max_len
    encoder = Encoder(model, tokenizer, cfg.max_len)
    lr = cfg.lr or (3e-4 if base_dir is None else 1e-4)
    steps_per_epoch = max(1, math.ceil(len(pairs) / cfg.batch_size))
    total_steps = max(1, int(round(steps_per_epoch * cfg.epochs)))
    params = sum(p.numel() for p in model.parameters())
    say(
        f"[embedder] pairs={len(pairs)} (faq {len(split.pairs)}, files {len(external)}) labelled={len(labeled)} "
        f"val={len(split.val_queries)} "
        f"base={base_desc[:70]} params={params / 1e6:.1f}M lr={lr} steps={total_steps}"
    )
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    no_decay = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes else None
    sched = BudgetedLinearSchedule(opt, total_steps, cfg.warmup_ratio, deadline)

    step, stopped_by_time, losses, cursor = 0, False, [], 0
    model.train()
    while step < sched.total and not stopped_by_time:
        for batch in no_duplicate_batches(pairs, cfg.batch_size, rng):
            a = encoder.forward([pairs[i].anchor for i in batch])
            b = encoder.forward([pairs[i].positive for i in batch])
            loss = ranking_loss(a, b, cfg.scale, cfg.symmetric)
            if labeled:
                rows = [
                    labeled[(cursor + k) % len(labeled)] for k in range(min(cfg.batch_size, len(labeled)))
                ]
                cursor = (cursor + len(rows)) % len(labeled)
                u = encoder.forward([r[0] for r in rows])
                v = encoder.forward([r[1] for r in rows])
                loss = loss + cfg.cosent_weight * cosent_loss(
                    u, v, torch.tensor([r[2] for r in rows]), cfg.cosent_scale
                )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            sched.step(step)
            losses.append(float(loss.detach()))
            if step % max(1, total_steps // 20) == 0 or step == sched.total:
                el = time.monotonic() - t0
                say(
                    f"[embedder] step {step}/{sched.total} loss={np.mean(losses[-20:]):.4f} "
                    f"elapsed={el:.0f}s eta={el / step * (sched.total - step):.0f}s"
                )
            if step >= sched.total:
                break
            if deadline and time.monotonic() > deadline:
                stopped_by_time = True
                say(f"[embedder] time budget reached at step {step}")
                break
    model.eval()
    train_seconds = time.monotonic() - t0

    metrics: dict[str, Any] = {
        "train_pairs": len(pairs),
        "train_labelled_rows": len(labeled),
        "steps": step,
        "planned_steps": total_steps,
        "schedule_end_step": sched.total,
        "final_loss": float(np.mean(losses[-20:])),
    }
    if stopped_by_time:
        metrics["stopped_by_time_budget_at_step"] = step
    thresholds: dict[str, Any] = {"answer": 0.8, "suggest": 0.5, "rule": "no FAQ given: fixed defaults"}
    if entries:
        calib = build_faq_index(encoder.encode, split.train_entries, norm)
        val = retrieval_eval(calib, encoder.encode, split.val_queries, norm)
        oos = [normalize(q, norm) for q in out_of_scope_queries()]
        oos_hits = calib.search(oos, encoder.encode(oos), top_k=2) if oos else []
        oos_scores = [c[0].fused_score if c else 0.0 for c in oos_hits]
        intent_of = {e.faq_id: e.intent for e in entries}
        val_agree = [
            top is not None and bool(intent_of.get(gold)) and intent_of.get(top) == intent_of.get(gold)
            for (_, gold), top in zip(split.val_queries, val["_top_ids"], strict=True)
        ]
        thresholds = calibrate_retrieval_thresholds(
            val["_top_scores"],
            val["_ranks"],
            oos_scores,
            val["_gaps"],
            [_lead(c) for c in oos_hits],
            val_agree,
        )
        metrics["faq_val_hybrid"] = {k: v for k, v in val.items() if not k.startswith("_")}
        metrics["out_of_scope_top1_fused_p90"] = float(np.percentile(oos_scores, 90)) if oos_scores else None
        # reported only (never used for any choice above): the FAQ's held-out queries on the full index
        full = build_faq_index(encoder.encode, entries, norm)
        heldout = [(q, e.faq_id) for e in entries for q in e.heldout]
        test = retrieval_eval(full, encoder.encode, heldout, norm)
        metrics["faq_heldout_hybrid"] = {k: v for k, v in test.items() if not k.startswith("_")}
        say(
            f"[embedder] FAQ val hybrid r@1={val['recall_at_1']:.3f} heldout hybrid r@1={test.get('recall_at_1', 0):.3f} "
            f"thresholds answer={thresholds['answer']} suggest={thresholds['suggest']} "
            f"answer_margin={thresholds.get('answer_margin')} answer_agree={thresholds.get('answer_agree')}"
        )

    meta = {
        "kind": "embedder",
        "labels": [],
        "thresholds": thresholds,
        "normalize": norm.model_dump(),
        "metrics": metrics,
        "max_seq_len": cfg.max_len,
        "training_data_sha256": _sha256_pairs(pairs),
        "training_data": {"faq": str(faq) if entries else None, "pair_files": sources},
        "base": base_desc,
        "pooling": "mean",
        "recipe": {
            **{k: v for k, v in asdict(cfg).items() if k not in ("arch", "normalize")},
            "lr": lr,
            "loss": "MultipleNegativesRankingLoss (in-batch negatives"
            + (", symmetric)" if cfg.symmetric else ")")
            + (f" + {cfg.cosent_weight} x CoSENT on labelled pair rows" if labeled else ""),
        },
        "train_seconds": round(train_seconds, 1),
    }

    def save(stage: Path) -> None:
        save_sentence_transformer(model, tokenizer, stage, max_seq_len=cfg.max_len)
        (stage / TRAINING_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    write_output_dir(out, save)
    return EmbedderResult(out, metrics, thresholds, time.monotonic() - t0)


def save_sentence_transformer(bert: Any, tokenizer: Any, out_dir: Path, *, max_seq_len: int) -> Path:
    """Write `bert` (a transformers BertModel) + `tokenizer` as a sentence-transformers dir:
    Transformer -> Pooling(mean) -> Normalize, so ``sentence_embedding`` is mean-pooled and L2-normalized."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="xiaoke-st-") as tmp:
        bert.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        word = models.Transformer(tmp, max_seq_length=max_seq_len)
        pooling = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
        st = SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu")
        out_dir.mkdir(parents=True, exist_ok=True)
        st.save(str(out_dir))
    return out_dir


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    d = EmbedderConfig()
    ap = argparse.ArgumentParser(
        prog="python -m training.embedder", description="Train the sentence embedder."
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--pairs", type=Path, nargs="*", default=[], help="AFQMC/BQ/LCQMC pair files (label-1 rows)"
    )
    ap.add_argument("--faq", type=Path, default=DEFAULT_FAQ, help="FAQ JSONL ('none' to skip)")
    ap.add_argument("--base", default="auto", help="pretrained dir, 'auto' (default) or 'none' (scratch)")
    ap.add_argument("--epochs", type=positive_float, default=d.epochs)
    ap.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    ap.add_argument("--lr", type=positive_float, default=None)
    ap.add_argument("--max-len", type=max_len_arg, default=d.max_len)
    ap.add_argument("--max-pairs", type=positive_int, default=None, help="cap on pair-file positives")
    ap.add_argument(
        "--max-minutes", type=positive_float, default=None, help="wall-clock budget for the training loop"
    )
    ap.add_argument(
        "--cosent-weight",
        type=float,
        default=d.cosent_weight,
        help="add a CoSENT term on the pair files' labelled rows, label-0 rows as hard negatives (0: off)",
    )
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=positive_int, default=None)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out directory that holds something else than a previous embedder",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cfg = EmbedderConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_len=args.max_len,
        max_pairs=args.max_pairs,
        max_minutes=args.max_minutes,
        cosent_weight=args.cosent_weight,
        seed=args.seed,
        threads=args.threads,
    )
    faq = None if str(args.faq).lower() == "none" else args.faq
    try:
        if faq is not None and faq != DEFAULT_FAQ and not faq.is_file():
            # train_embedder skips a missing FAQ file (the default one may be absent); a path the user typed
            # must not be dropped silently
            raise PairFileError(f"{faq}: no such file (--faq none trains on --pairs only)")
        res = train_embedder(
            args.out, pair_files=args.pairs, faq=faq, base=args.base, config=cfg, overwrite=args.overwrite
        )
    except (PairFileError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(
        json.dumps(
            {"out": str(res.out_dir), "metrics": res.metrics, "thresholds": res.thresholds},
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
