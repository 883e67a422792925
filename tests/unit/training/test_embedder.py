"""training.embedder pieces without model files: pair loading, FAQ split, batching, loss, thresholds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from training.embedder import (
    FaqEntry,
    Pair,
    PairFileError,
    calibrate_retrieval_thresholds,
    labeled_rows,
    load_faq,
    load_pair_file,
    no_duplicate_batches,
    positive_pairs,
    split_faq,
)


def test_load_pair_file_three_layouts(tmp_path: Path) -> None:
    afqmc = tmp_path / "a.jsonl"
    afqmc.write_text(
        '{"sentence1": "花呗怎么还", "sentence2": "花呗还款方式", "label": "1"}\n'
        '{"sentence1": "借呗额度", "sentence2": "蚂蚁森林", "label": "0"}\n',
        encoding="utf-8",
    )
    bq = tmp_path / "b.csv"
    bq.write_bytes('\ufeffsentence1,sentence2,label\n怎么借款,如何借钱,1\n"逗号,在里面",不同,0\n'.encode())
    lcqmc = tmp_path / "c.txt"
    lcqmc.write_text(
        "开初婚未育证明怎么弄？\t初婚未育情况证明怎么开？\t1\n谁知道\t什么歌\t0\n", encoding="utf-8"
    )
    assert load_pair_file(afqmc) == [("花呗怎么还", "花呗还款方式", 1), ("借呗额度", "蚂蚁森林", 0)]
    assert load_pair_file(bq) == [("怎么借款", "如何借钱", 1), ("逗号,在里面", "不同", 0)]
    assert load_pair_file(lcqmc)[0] == ("开初婚未育证明怎么弄？", "初婚未育情况证明怎么开？", 1)
    pos = positive_pairs(load_pair_file(bq), "bq")
    assert [(p.anchor, p.positive) for p in pos] == [("怎么借款", "如何借钱")]


@pytest.mark.parametrize(
    "content",
    ['{"sentence1": "a"}\n', "a\tb\tmaybe\n", "only-one-column\n"],
)
def test_load_pair_file_errors_name_the_line(tmp_path: Path, content: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(PairFileError, match=r"bad\.txt:1"):
        load_pair_file(f)
    with pytest.raises(PairFileError):
        load_pair_file(tmp_path / "missing.tsv")


def _entries() -> list[FaqEntry]:
    return [
        FaqEntry(f"faq-{i}", f"问题{i}", [f"相似{i}-{j}" for j in range(5)], [f"留出{i}-a", f"留出{i}-b"])
        for i in range(6)
    ]


def test_split_faq_never_uses_heldout_and_keeps_validation_out() -> None:
    entries = _entries()
    split = split_faq(entries, val_per_faq=1)
    texts = {t for p in split.pairs for t in (p.anchor, p.positive)}
    assert not any(t.startswith("留出") for t in texts)
    assert len(split.val_queries) == len(entries)
    for q, faq_id in split.val_queries:
        assert q not in texts  # validation queries are not trained on ...
        kept = next(e for e in split.train_entries if e.faq_id == faq_id)
        assert q not in kept.similar  # ... and not in the calibration index
    # every pair is within one FAQ and carries it as its group; all C(5, 2) pairs among question + 4 similar
    assert all(p.group.startswith("faq:") for p in split.pairs)
    assert len(split.pairs) == len(entries) * 10
    assert split_faq(entries).val_queries == split.val_queries  # stable choice


def test_load_faq(tmp_path: Path) -> None:
    f = tmp_path / "faq.jsonl"
    row = {"id": "faq-1", "question": "q", "answer": "a", "similar": ["s"], "heldout": ["h"], "intent": "x"}
    f.write_text(json.dumps(row, ensure_ascii=False) + "\n\n", encoding="utf-8")
    (e,) = load_faq(f)
    assert (e.faq_id, e.question, e.similar, e.heldout, e.intent) == ("faq-1", "q", ["s"], ["h"], "x")


def test_no_duplicate_batches_groups_unique_and_complete() -> None:
    pairs = [Pair(f"a{i}", f"b{i}", f"g{i % 7}") for i in range(100)]
    batches = no_duplicate_batches(pairs, 16, random.Random(1))
    for b in batches:
        groups = [pairs[i].group for i in b]
        assert len(groups) == len(set(groups))
        assert 2 <= len(b) <= 16
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used))
    assert len(used) >= 100 - 1  # at most one lone leftover dropped


def test_ranking_loss_prefers_aligned_pairs() -> None:
    torch = pytest.importorskip("torch")
    from training.embedder import ranking_loss

    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    aligned = ranking_loss(a, a.clone(), 20.0, True)
    shuffled = ranking_loss(a, a[torch.randperm(8)].clone(), 20.0, True)
    assert float(aligned) < float(shuffled)
    asym = ranking_loss(a, a.roll(1, 0), 20.0, False)
    sym = ranking_loss(a, a.roll(1, 0), 20.0, True)
    assert float(sym) > 0 and float(asym) > 0


def test_cosent_loss_ranks_positive_pairs_above_negative_ones() -> None:
    torch = pytest.importorskip("torch")
    from training.embedder import cosent_loss

    u = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    good = torch.cat([u[:3], -u[3:]])  # positives cos 1, negatives cos -1
    bad = torch.cat([-u[:3], u[3:]])  # the reverse
    assert float(cosent_loss(u, good, labels, 20.0)) < 1e-6
    assert float(cosent_loss(u, bad, labels, 20.0)) > 30.0
    # exact value on one positive (cos c1) and one negative (cos c0): log(1 + exp(s * (c0 - c1)))
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    got = float(cosent_loss(a, b, torch.tensor([1, 0]), 5.0))
    assert got == pytest.approx(float(np.log1p(np.exp(5.0 * (0.8 - 0.6)))), rel=1e-5)
    # one label only: nothing to rank, no loss
    assert float(cosent_loss(u, bad, torch.ones(6, dtype=torch.long), 20.0)) == pytest.approx(0.0, abs=1e-6)


def test_labeled_rows_keep_both_labels_and_drop_blank_sentences() -> None:
    rows = [("a", "b", 1), ("c", "d", 0), ("  ", "e", 1), ("f", "", 0)]
    assert labeled_rows(rows) == [("a", "b", 1), ("c", "d", 0)]
    assert [(p.anchor, p.positive) for p in positive_pairs(rows, "x")] == [("a", "b")]


def test_calibrate_thresholds_separates_good_from_out_of_scope() -> None:
    rng = np.random.default_rng(0)
    # in-scope: high scores mostly correct at rank 1; out-of-scope: low scores
    val_scores = list(rng.uniform(0.6, 0.95, 80))
    val_ranks = [1 if s > 0.7 else 3 for s in val_scores]
    oos = list(rng.uniform(0.2, 0.55, 80))
    t = calibrate_retrieval_thresholds(val_scores, val_ranks, oos)
    assert 0.55 <= t["answer"] <= 0.75
    assert t["suggest"] <= t["answer"]
    assert "precision" in t["rule"]
    # answered queries are >= 90% correct at the chosen threshold
    scores = np.array(val_scores + oos)
    ok = np.array([r == 1 for r in val_ranks] + [False] * len(oos))
    assert ok[scores >= t["answer"]].mean() >= 0.9


def test_calibrate_thresholds_without_data_falls_back() -> None:
    t = calibrate_retrieval_thresholds([], [], [])
    assert t["answer"] > t["suggest"]


def test_split_faq_answer_pairs_stay_in_the_faq_group() -> None:
    entries = [
        FaqEntry(
            "faq-1",
            "退货运费谁承担？",
            ["退货运费谁出", "退货邮费谁付"],
            ["留出"],
            "refund",
            "质量问题由商家承担运费" * 5,
        )
    ]
    plain = split_faq(entries, val_per_faq=1)
    with_answers = split_faq(entries, val_per_faq=1, answer_chars=10)
    extra = [p for p in with_answers.pairs if p not in plain.pairs]
    assert len(extra) == 2  # question + the one remaining similar question, each with the answer's opening
    assert all(p.positive == entries[0].answer[:10] and p.group == "faq:faq-1" for p in extra)
    assert with_answers.val_queries == plain.val_queries


def test_answer_margin_answers_clear_winners_in_the_band_and_keeps_precision() -> None:
    # band queries (suggest <= score < answer): a clear lead means the top FAQ is right, a small lead often not
    val_scores = [0.9] * 20 + [0.6] * 40
    val_ranks = [1] * 20 + [1] * 20 + [1, 2] * 10
    val_gaps = [0.3] * 20 + [0.25] * 20 + [0.02] * 20
    oos = [0.62] * 10 + [0.3] * 10
    oos_gaps = [0.01] * 10 + [0.1] * 10
    t = calibrate_retrieval_thresholds(val_scores, val_ranks, oos, val_gaps, oos_gaps)
    assert t["suggest"] <= 0.6 < t["answer"]
    assert t["answer_margin"] is not None and 0.02 < t["answer_margin"] <= 0.25
    # what the rule answers is >= 90% right, and it answers more than the score threshold alone
    scores, gaps = np.array(val_scores + oos), np.array(val_gaps + oos_gaps)
    ok = np.array([r == 1 for r in val_ranks] + [False] * len(oos))
    base = scores >= t["answer"]
    answered = base | ((scores >= t["suggest"]) & (gaps >= t["answer_margin"]))
    assert ok[answered].mean() >= 0.9 and answered.sum() > base.sum()


def test_answer_margin_is_none_when_no_lead_is_safe() -> None:
    val_scores, val_ranks, val_gaps = [0.9] * 10 + [0.6] * 10, [1] * 10 + [2] * 10, [0.3] * 10 + [0.3] * 10
    t = calibrate_retrieval_thresholds(val_scores, val_ranks, [0.2] * 5, val_gaps, [0.05] * 5)
    assert t["answer_margin"] is None
    assert "answer_margin" not in calibrate_retrieval_thresholds(val_scores, val_ranks, [0.2] * 5)


def test_answer_agree_answers_band_queries_whose_intent_agrees_and_keeps_precision() -> None:
    # band queries with small leads (no margin helps): right when the top FAQ's intent is the query's own
    # (a same-intent FAQ ranked first is usually the right one), wrong when it is another intent's FAQ
    val_scores = [0.9] * 20 + [0.55] * 10 + [0.7] * 30 + [0.65] * 20
    val_ranks = [1] * 20 + [1] * 8 + [2] * 2 + [1] * 28 + [2] * 2 + [2] * 20
    val_gaps = [0.3] * 20 + [0.02] * 60
    val_agree = [True] * 20 + [True] * 10 + [True] * 30 + [False] * 20
    oos, oos_gaps = [0.7] * 10 + [0.3] * 10, [0.01] * 20
    t = calibrate_retrieval_thresholds(val_scores, val_ranks, oos, val_gaps, oos_gaps, val_agree)
    assert t["suggest"] <= 0.55 < t["answer"] and t["answer_margin"] is None
    assert t["answer_agree"] is not None and t["suggest"] <= t["answer_agree"] <= 0.7
    scores, agree = np.array(val_scores + oos), np.array(val_agree + [False] * len(oos))
    ok = np.array([r == 1 for r in val_ranks] + [False] * len(oos))
    base = scores >= t["answer"]
    answered = base | (agree & (scores >= t["answer_agree"]))
    assert ok[answered].mean() >= 0.9 and answered.sum() > base.sum()
    # agreement that is as often wrong as right answers nothing more
    wrong_agree = [True] * 20 + [True] * 60
    t2 = calibrate_retrieval_thresholds(
        [0.9] * 20 + [0.6] * 60, [1] * 20 + [1, 2] * 30, oos, [0.3] * 20 + [0.02] * 60, oos_gaps, wrong_agree
    )
    assert t2["answer_agree"] is None
    assert "answer_agree" not in calibrate_retrieval_thresholds(
        val_scores, val_ranks, oos, val_gaps, oos_gaps
    )


class _Opt:
    def __init__(self, lrs: list[float]) -> None:
        self.param_groups = [{"lr": lr} for lr in lrs]


def test_budgeted_schedule_without_deadline_is_plain_linear_warmup_decay() -> None:
    from training.embedder import BudgetedLinearSchedule

    opt = _Opt([1.0, 0.5])
    s = BudgetedLinearSchedule(opt, 100, 0.1, None)
    assert opt.param_groups[0]["lr"] == 0.0
    s.step(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5) and opt.param_groups[1]["lr"] == pytest.approx(
        0.25
    )
    s.step(55)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    s.step(100)
    assert opt.param_groups[0]["lr"] == 0.0 and s.total == 100


def test_budgeted_schedule_replans_so_the_decay_ends_at_the_deadline() -> None:
    """1 s per step and a 300 s budget: a plan of 1000 steps shrinks to ~300 and the rate reaches zero then
    (a fixed plan would stop at 300 with the rate still at ~75 % of its peak)."""
    from training.embedder import BudgetedLinearSchedule

    now = [0.0]
    opt = _Opt([1.0])
    s = BudgetedLinearSchedule(opt, 1000, 0.1, deadline=300.0, replan_every=20, clock=lambda: now[0])
    lrs = []
    for step in range(1, 301):
        now[0] = float(step)
        s.step(step)
        lrs.append(opt.param_groups[0]["lr"])
    assert 295 <= s.total <= 301
    assert s.warmup == 30  # 10 % of the re-planned run, not of the original 1000 steps
    assert max(lrs) == pytest.approx(1.0, abs=0.05)
    assert lrs[-1] <= 0.02
