"""``python -m training.benchmarks {all,retrieval,intents,sentiment} ...``

* ``retrieval --pairs FILE [--embedder DIR] [--store DIR]`` (or ``--faq-heldout``): dense / keyword / hybrid
  recall@1, recall@5, MRR@10; the last stdout line is the JSON result (see ``training/benchmarks/retrieval.py``).
* ``intents ...`` / ``sentiment ...``: forwarded to ``training.benchmarks.intents`` / ``.sentiment``.
* ``all --datasets DIR --out FILE``: intents (SMP2017 5-fold CV), retrieval on AFQMC train positives, BQ dev and
  LCQMC dev - each scored with an embedder that ``training.embedder`` trains on the *other two* pair files only
  (pair count and minutes capped) - and sentiment; prints one table and writes ``quality.json`` with the keys
  ``smp2017_cv_accuracy``, ``smp2017_cv_macro_f1``,
  ``retrieval.<dataset>.<dense|keyword|hybrid>.<recall_at_1|recall_at_5|mrr_at_10>``,
  ``sentiment.<dataset>.accuracy`` (plus details under ``details``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PAIR_SETS = {
    "afqmc": "afqmc/train.jsonl",
    "bq": "bq_corpus/dev.csv",
    "lcqmc": "lcqmc/dev.txt",
}


def _retrieval_all(datasets: Path, args: argparse.Namespace, say) -> dict[str, Any]:
    from training.benchmarks.retrieval import TorchEncoder, run_retrieval
    from training.embedder import EmbedderConfig, train_embedder

    out: dict[str, Any] = {}
    for name, rel in PAIR_SETS.items():
        target = datasets / rel
        others = [datasets / r for n, r in PAIR_SETS.items() if n != name and (datasets / r).is_file()]
        if not target.is_file():
            say(f"[retrieval] {name}: {target} missing, skipped")
            continue
        with tempfile.TemporaryDirectory(prefix=f"xk-bench-emb-{name}-") as tmp:
            say(
                f"[retrieval] {name}: training an embedder on {[p.name for p in others]} (never on {target.name})"
            )
            cfg = EmbedderConfig(
                epochs=args.embedder_epochs,
                max_pairs=args.max_pairs,
                max_minutes=args.embedder_minutes,
                cosent_weight=args.embedder_cosent_weight,
                max_len=32,
            )
            res = train_embedder(
                Path(tmp) / "embedder", pair_files=others, faq=None, base=args.base, config=cfg
            )
            r = run_retrieval(target, encoder=TorchEncoder(res.out_dir), max_queries=args.max_queries)
        r["embedder_trained_on"] = [str(p) for p in others]
        r["embedder_train_pairs"] = res.metrics.get("train_pairs")
        r["embedder_steps"] = res.metrics.get("steps")
        out[name] = r
        say(
            f"[retrieval] {name}: hybrid r@1={r['hybrid']['recall_at_1']:.4f} "
            f"keyword r@1={r['keyword']['recall_at_1']:.4f} dense r@1={r['dense']['recall_at_1']:.4f}"
        )
    return out


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every quality benchmark; ``args.out`` is rewritten after each section (partial results survive)."""
    datasets: Path = args.datasets
    say = lambda m: print(m, flush=True)  # noqa: E731
    t0 = time.monotonic()
    quality: dict[str, Any] = {}
    if args.out.is_file() and args.skip:  # a partial re-run keeps the sections it does not recompute
        try:
            quality = dict(json.loads(args.out.read_text(encoding="utf-8")))
        except ValueError:
            quality = {}
    details: dict[str, Any] = quality.setdefault("details", {})
    skip = set(args.skip or [])

    def checkpoint(done: str) -> None:
        quality["meta"] = {
            **quality.get("meta", {}),
            "datasets": str(datasets),
            "completed": [*quality.get("meta", {}).get("completed", []), done],
            "finished_at": datetime.now(UTC).isoformat(),
            "seconds": round(time.monotonic() - t0, 1),
            f"args_{done}": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
        write_quality(args.out, quality)

    if "retrieval" not in skip:
        from training.benchmarks.retrieval import REPORTED

        say("== retrieval: AFQMC / BQ / LCQMC (embedder trained on the other files)")
        details["retrieval"] = _retrieval_all(datasets, args, say)
        quality["retrieval"] = {name: {s: r[s] for s in REPORTED} for name, r in details["retrieval"].items()}
        checkpoint("retrieval")
    if "intents" not in skip:
        from training.benchmarks import intents

        say("== intents: SMP2017 5-fold CV")
        details["intents"] = intents.run(datasets, base=args.base, max_minutes=args.classifier_minutes)
        smp = details["intents"]["smp2017"]["ours"]
        quality["smp2017_cv_accuracy"] = smp["accuracy"]
        quality["smp2017_cv_macro_f1"] = smp["macro_f1"]
        checkpoint("intents")
    if "sentiment" not in skip:
        from training.benchmarks import sentiment

        say("== sentiment")
        details["sentiment"] = sentiment.run(datasets, base=args.base, max_minutes=args.classifier_minutes)
        quality["sentiment"] = {
            name: {"accuracy": r["ours"]["accuracy"]}
            for name, r in details["sentiment"].items()
            if "ours" in r
        }
        checkpoint("sentiment")
    return quality


def write_quality(path: Path, quality: dict[str, Any]) -> None:
    """Top-level keys first (the documented ones), details last; atomic replace."""
    order = ["smp2017_cv_accuracy", "smp2017_cv_macro_f1", "retrieval", "sentiment", "meta", "details"]
    doc = {k: quality[k] for k in order if k in quality}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def summary_table(q: dict[str, Any]) -> str:
    lines = [f"{'benchmark':<34} {'metric':<22} {'value':>8}"]
    if "smp2017_cv_accuracy" in q:
        lines.append(f"{'intents smp2017 (5-fold CV)':<34} {'accuracy':<22} {q['smp2017_cv_accuracy']:>8.4f}")
        lines.append(f"{'intents smp2017 (5-fold CV)':<34} {'macro_f1':<22} {q['smp2017_cv_macro_f1']:>8.4f}")
    for name, systems in q.get("retrieval", {}).items():
        for s, m in systems.items():
            for k in ("recall_at_1", "recall_at_5", "mrr_at_10"):
                lines.append(f"{'retrieval ' + name + ' ' + s:<34} {k:<22} {m[k]:>8.4f}")
    for name, m in q.get("sentiment", {}).items():
        lines.append(f"{'sentiment ' + name:<34} {'accuracy':<22} {m['accuracy']:>8.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("intents", "sentiment"):
        import importlib

        mod = importlib.import_module(f"training.benchmarks.{argv[0]}")
        return int(mod.main(argv[1:]) or 0)

    ap = argparse.ArgumentParser(prog="python -m training.benchmarks", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("retrieval", help="dense / keyword / hybrid retrieval on a pair file")
    from training.benchmarks.retrieval import add_cli_args, main_args

    add_cli_args(r)
    sub.add_parser("intents", help="forwarded to training.benchmarks.intents")
    sub.add_parser("sentiment", help="forwarded to training.benchmarks.sentiment")
    a = sub.add_parser("all", help="every quality benchmark -> quality.json")
    a.add_argument("--datasets", type=Path, required=True)
    a.add_argument("--out", type=Path, default=Path("benchmarks/results/quality.json"))
    a.add_argument("--base", default="auto", help="pretrained base for every trained model (auto|none|DIR)")
    a.add_argument("--skip", nargs="*", choices=("intents", "retrieval", "sentiment"), default=[])
    a.add_argument("--max-pairs", type=int, default=12000, help="cap on embedder training pairs per dataset")
    a.add_argument("--embedder-minutes", type=float, default=5.0, help="training budget per embedder")
    a.add_argument("--embedder-epochs", type=float, default=1.0)
    a.add_argument(
        "--embedder-cosent-weight",
        type=float,
        default=0.0,
        help="CoSENT term on the other files' labelled rows (training.embedder --cosent-weight)",
    )
    a.add_argument("--classifier-minutes", type=float, default=2.0, help="training budget per classifier fit")
    a.add_argument(
        "--max-queries", type=int, default=None, help="sample queries per pair file (default: all)"
    )
    args = ap.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.command == "retrieval":
        return main_args(args)
    if args.command == "all":
        if not args.datasets.is_dir():
            print(f"error: --datasets {args.datasets} is not a directory", file=sys.stderr)
            return 2
        quality = run_all(args)
        write_quality(args.out, quality)
        print(summary_table(quality))
        print(f"wrote {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
