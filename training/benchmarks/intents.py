"""Intent benchmark: SMP2017-ECDT task 1 (31 classes), 5-fold stratified CV, our recipe vs TF-IDF + LR.

``python -m training.benchmarks.intents --data /work/shared/datasets/smp2017_ecdt_task1_resplit/train.tsv``

The folds come from :func:`training.data.stratified_kfold` (deterministic for a seed). Both systems see the
same folds; ours is trained with ``training.intent``'s default recipe (the same base resolution as the
build: our MLM checkpoint when one exists under ``$XIAOKE_DATA_DIR/pretrained``, else from scratch; pass
``--base`` to choose). The data is read by path and never copied.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.benchmarks.common import ours, summarize, table, tfidf_lr
from training.data import load_labelled, stratified_kfold

SMP2017_REL = "smp2017_ecdt_task1_resplit/train.tsv"


def run_smp2017(
    data_path: str | Path,
    *,
    folds: int = 5,
    seed: int = 13,
    base: str | None = "auto",
    systems: tuple[str, ...] = ("ours", "tfidf_lr"),
    max_folds: int | None = None,
    **recipe: Any,
) -> dict[str, Any]:
    """k-fold CV on one labelled file -> {"dataset", "folds", "n", "ours": {...}, "tfidf_lr": {...}}."""
    data = load_labelled(data_path)
    splits = stratified_kfold(data.labels, folds, seed)[: max_folds or folds]
    per: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    for k, (tr_idx, te_idx) in enumerate(splits):
        tr, te = data.subset(tr_idx), data.subset(te_idx)
        if "tfidf_lr" in systems:
            per["tfidf_lr"].append(tfidf_lr(tr, te))
        if "ours" in systems:
            per["ours"].append(ours(tr, te, kind="intent", base=base, seed=seed, **recipe))
        line = " ".join(f"{s}={per[s][-1]['accuracy']:.4f}" for s in systems)
        print(f"fold {k + 1}/{len(splits)}: {line}", flush=True)
    out: dict[str, Any] = {
        "dataset": str(data_path),
        "data_sha256": data.sha256,
        "n": len(data),
        "labels": len(data.label_set),
        "folds": len(splits),
        "seed": seed,
    }
    for s in systems:
        out[s] = summarize(per[s])
    out["ours_recipe"] = {"base": base, **recipe}
    return out


def run(datasets_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Benchmark entry point for ``training.benchmarks.__main__``: {"smp2017": {...}}."""
    return {"smp2017": run_smp2017(Path(datasets_dir) / SMP2017_REL, **kwargs)}


def print_table(results: dict[str, Any]) -> None:
    rows = []
    for name, r in results.items():
        for system in ("ours", "tfidf_lr"):
            if system in r:
                rows.append((f"{name} ({r['folds']}-fold CV)", system, r[system]))
    print(table(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.benchmarks.intents", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--data", type=Path, required=True, help=f"e.g. <datasets>/{SMP2017_REL}")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds (quick checks)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--base", default="auto")
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    a = ap.parse_args(argv)
    recipe = {k: v for k, v in (("epochs", a.epochs), ("lr", a.lr)) if v is not None}
    systems = ("tfidf_lr",) if a.baseline_only else ("ours", "tfidf_lr")
    res = {
        "smp2017": run_smp2017(
            a.data, folds=a.folds, seed=a.seed, base=a.base, systems=systems, max_folds=a.max_folds, **recipe
        )
    }
    print_table(res)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
