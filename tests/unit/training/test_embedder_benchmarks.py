"""training.benchmarks.retrieval pieces without model files: task building and ranking metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundle.normalize import NormalizeConfig
from training.benchmarks.retrieval import build_task, rank_metrics


def test_rank_metrics() -> None:
    ranked = [[3, 1, 2], [1, 2, 3], [5, 6, 7, 8, 9, 10, 11, 12, 13, 4], [9, 9, 9]]
    gold = [3, 2, 4, 1]
    m = rank_metrics(ranked, gold)
    assert m["recall_at_1"] == pytest.approx(0.25)
    assert m["recall_at_5"] == pytest.approx(0.5)
    assert m["mrr_at_10"] == pytest.approx((1 + 0.5 + 0.1 + 0) / 4, abs=1e-4)
    assert rank_metrics([], []) == {"recall_at_1": 0.0, "recall_at_5": 0.0, "mrr_at_10": 0.0}


def test_rank_metrics_gold_sets_and_self_exclusion() -> None:
    ranked = [[7, 3, 1], [7, 3, 1]]
    assert rank_metrics(ranked, [{1, 3}, {1}])["recall_at_1"] == 0.0
    m = rank_metrics(ranked, [{1, 3}, {1}], exclude=[7, 7])  # 7 is the query itself
    assert m["recall_at_1"] == 0.5  # first query: 3 is correct at rank 1; second: 1 at rank 2
    assert m["mrr_at_10"] == pytest.approx((1 + 0.5) / 2)


def test_build_task_dedups_and_collects_every_answer(tmp_path: Path) -> None:
    f = tmp_path / "p.tsv"
    f.write_text(
        "怎么还款\t如何还钱\t1\n"
        "还款方式\t如何还钱\t1\n"  # a second correct answer for the same query
        "怎麼還款\t还款怎么操作\t1\n"  # traditional duplicate of the first document
        "花呗\t借呗\t0\n"
        "如何还钱\t怎么还款\t1\n"  # query that is itself a document
        "额度\t提额\t1\n",
        encoding="utf-8",
    )
    t = build_task(f, NormalizeConfig())
    assert t.docs == ["怎么还款", "还款方式", "如何还钱", "额度"]
    assert t.queries == ["如何还钱", "还款怎么操作", "怎么还款", "提额"]
    assert t.gold == [{0, 1}, {0}, {2}, {3}]
    assert t.self_doc == [2, -1, 0, -1]
    small = build_task(f, NormalizeConfig(), max_queries=2, seed=1)
    assert len(small.queries) == 2 and all(g <= set(range(len(small.docs))) for g in small.gold)


def test_summary_table_lists_every_quality_key() -> None:
    from training.benchmarks.__main__ import summary_table

    m = {"recall_at_1": 0.5, "recall_at_5": 0.75, "mrr_at_10": 0.6}
    q = {
        "smp2017_cv_accuracy": 0.9,
        "smp2017_cv_macro_f1": 0.85,
        "retrieval": {"bq": {"dense": m, "keyword": m, "hybrid": m}},
        "sentiment": {"waimai_10k": {"accuracy": 0.88}},
    }
    lines = summary_table(q).splitlines()
    assert len(lines) == 1 + 2 + 9 + 1
    assert any("retrieval bq hybrid" in ln and "0.7500" in ln for ln in lines)
    assert any("sentiment waimai_10k" in ln and "0.8800" in ln for ln in lines)


def test_cli_requires_a_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from training.benchmarks.__main__ import main

    assert main(["all", "--datasets", str(tmp_path / "missing"), "--out", str(tmp_path / "q.json")]) == 2
    assert "not a directory" in capsys.readouterr().err
