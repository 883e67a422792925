"""How often the bot answers directly, and how often it is right, on the real bundles.

    python -m benchmarks.answers [--out benchmarks/results/answers.json] [--store DIR]     (make bench-answers)

The demo FAQ's held-out queries (paraphrases never used to train, index or calibrate anything) and the
out-of-scope lines of the demo intent test split (greeting, goodbye, thanks, chitchat, other: messages the
knowledge base must not answer) go through the LIVE intent and embedder bundles of the model store and the
serving retriever over the whole knowledge base, as ``/v1/nlu`` scores them. Each query then gets the answer
decision of ``api.dialog.manager.answer_level`` (what the dialog manager uses for a question it has no
other rule for), side by side for two rules:

* ``score_or_margin``: the fused score reaches ``answer``, or leads the next FAQ by ``answer_margin`` in the
  suggest band (the rule before ``answer_agree``);
* ``with_intent_agreement``: the same, or the top FAQ's intent is the one the intent classifier read with
  confidence and its score reaches ``answer_agree``.

Reported per rule: ``answered`` (share of held-out queries answered directly), ``precision`` (share of those
answered with the right FAQ), ``suggested_top3`` (share not answered but with the right FAQ among the first
three suggestions, i.e. one click away), and for the out-of-scope lines ``answered`` (each one a wrong
answer). Both thresholds come from the embedder bundle (calibrated on validation queries at build time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAQ = REPO / "data" / "demo" / "faq" / "faq.jsonl"
INTENT_TEST = REPO / "data" / "demo" / "intents" / "test.jsonl"
OUT_OF_SCOPE = ("greeting", "goodbye", "thanks", "chitchat", "other")


def _decisions(store_root: Path) -> dict[str, Any]:
    import numpy as np

    from api.dialog.manager import answer_level
    from bundle.contracts import Candidate, RetrievalThresholds
    from bundle.manifest import BundleKind
    from bundle.normalize import normalize
    from bundle.store import ModelStore
    from serving.runtime import ClassifierRuntime, load_runtime
    from training.benchmarks.retrieval import OnnxEncoder
    from training.embedder import build_faq_index, load_faq

    store = ModelStore(store_root)
    encoder = OnnxEncoder(store.resolve(BundleKind.EMBEDDER))
    classifier = load_runtime(BundleKind.INTENT, store.resolve(BundleKind.INTENT))
    assert isinstance(classifier, ClassifierRuntime)
    t = encoder.manifest.thresholds
    rules = {
        "score_or_margin": RetrievalThresholds(
            answer=t.answer or 1.0, suggest=t.suggest or 1.0, answer_margin=t.answer_margin
        ),
        "with_intent_agreement": RetrievalThresholds(
            answer=t.answer or 1.0,
            suggest=t.suggest or 1.0,
            answer_margin=t.answer_margin,
            answer_agree=t.answer_agree,
        ),
    }
    entries = load_faq(FAQ)
    intent_of = {e.faq_id: e.intent for e in entries}
    norm = encoder.normalize_config
    index = build_faq_index(encoder.encode, entries, norm)
    test_rows = [
        json.loads(line) for line in INTENT_TEST.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    sets: dict[str, list[tuple[str, str | None]]] = {
        "faq_heldout": [(q, e.faq_id) for e in entries for q in e.heldout],
        "out_of_scope": [(r["text"], None) for r in test_rows if r["label"] in OUT_OF_SCOPE],
    }
    labels = classifier.manifest.labels
    out: dict[str, Any] = {}
    for name, queries in sets.items():
        texts = [normalize(q, norm) for q, _ in queries]
        results: list[list[Candidate]] = index.search(texts, encoder.encode(texts), top_k=10)
        probs, _ = classifier.predict(texts)
        per_rule: dict[str, Any] = {}
        for rule, thresholds in rules.items():
            answered, right, one_click = [], [], []
            for (_, gold), cands, p in zip(queries, results, probs, strict=True):
                j = int(np.argmax(p))
                label, conf = labels[j], float(p[j])
                confident = conf >= classifier.manifest.thresholds.for_label(label)
                top = cands[0] if cands else None
                agrees = top is not None and confident and intent_of.get(top.faq_id) == label
                a = answer_level(cands, thresholds, intent_agrees=agrees)
                answered.append(a)
                right.append(a and top is not None and top.faq_id == gold)
                shown = [c.faq_id for c in cands if c.fused_score >= thresholds.suggest][:3]
                one_click.append(not a and gold is not None and gold in shown)
            n = len(queries)
            k = sum(answered)
            per_rule[rule] = {
                "answered": round(k / n, 4) if n else 0.0,
                "answered_n": k,
                "precision": round(sum(right) / k, 4) if k else None,
                "suggested_top3": round(sum(one_click) / n, 4) if n else 0.0,
            }
        out[name] = {"n": len(queries), **per_rule}
    out["thresholds"] = rules["with_intent_agreement"].model_dump()
    out["bundles"] = {"embedder": encoder.manifest.version, "intent": classifier.manifest.version}
    return out


def main(argv: list[str] | None = None) -> int:
    from serving.settings import data_dir

    ap = argparse.ArgumentParser(prog="python -m benchmarks.answers", description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None, help="model store (default: $XIAOKE_DATA_DIR/models)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    result = _decisions(args.store or data_dir() / "models")
    result["meta"] = {
        "seconds": round(time.monotonic() - t0, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name in ("faq_heldout", "out_of_scope"):
        for rule in ("score_or_margin", "with_intent_agreement"):
            r = result[name][rule]
            print(
                f"{name:<13} {rule:<22} answered {r['answered']:.3f} ({r['answered_n']}/{result[name]['n']})"
                f"  precision {r['precision'] if r['precision'] is not None else '-'}"
                f"  one click away {r['suggested_top3']:.3f}"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("faq_heldout", "out_of_scope")}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
