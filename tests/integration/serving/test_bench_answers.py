"""benchmarks.answers on the tiny model store: the answer-decision benchmark runs end to end on real bundles
(ONNX intent + embedder, the serving retriever, the dialog's answer rule) and its figures are consistent."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.answers import main


def test_answer_benchmark_on_real_bundles(tiny_model_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers.json"
    assert main(["--store", str(tiny_model_store), "--out", str(out)]) == 0
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["faq_heldout"]["n"] > 200 and r["out_of_scope"]["n"] > 50
    for name in ("faq_heldout", "out_of_scope"):
        before, after = r[name]["score_or_margin"], r[name]["with_intent_agreement"]
        # intent agreement only ever adds answers to what score and margin answer
        assert after["answered_n"] >= before["answered_n"]
        for rule in (before, after):
            assert 0.0 <= rule["answered"] <= 1.0 and 0.0 <= rule["suggested_top3"] <= 1.0
            assert rule["precision"] is None or 0.0 <= rule["precision"] <= 1.0
    assert r["out_of_scope"]["with_intent_agreement"]["suggested_top3"] == 0.0  # no right FAQ to suggest
    assert set(r["bundles"]) == {"embedder", "intent"} and "answer_agree" in r["thresholds"]
