"""Sentiment benchmark: waimai_10k and online_shopping_10_cats, fixed 10% holdout, our recipe vs TF-IDF + LR.

``python -m training.benchmarks.sentiment --data /work/shared/datasets/waimai_10k/train.csv [--data ...]``

Each file's deterministic stratified 10% (:func:`training.data.stratified_split`, seed 13) is the test part;
the rest, capped at ``--max-train`` examples (stratified) and ``--max-minutes`` of optimisation, trains our
recipe (``training.sentiment`` defaults) so the whole run fits a few minutes on 2 cores. The TF-IDF + LR
baseline trains on the same capped part. Labels are the files' own (``0``/``1``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.benchmarks.common import ours, table, tfidf_lr
from training.data import load_labelled, stratified_split

DATASETS = {
    "waimai_10k": "waimai_10k/train.csv",
    "online_shopping_10_cats": "online_shopping_10_cats/train.csv",
}


def run_holdout(
    data_path: str | Path,
    *,
    test_fraction: float = 0.1,
    seed: int = 13,
    max_train: int = 4000,
    max_minutes: float = 2.0,
    epochs: float = 3.0,
    base: str | None = "auto",
    systems: tuple[str, ...] = ("ours", "tfidf_lr"),
    **recipe: Any,
) -> dict[str, Any]:
    data = load_labelled(data_path)
    tr_idx, te_idx = stratified_split(data.labels, test_fraction, seed)
    tr, te = data.subset(tr_idx), data.subset(te_idx)
    if max_train and len(tr) > max_train:
        keep, _ = stratified_split(tr.labels, 1.0 - max_train / len(tr), seed)
        tr = tr.subset(keep)
    out: dict[str, Any] = {
        "dataset": str(data_path),
        "data_sha256": data.sha256,
        "n_total": len(data),
        "n_train": len(tr),
        "n_test": len(te),
        "skipped_empty": data.skipped_empty,
    }
    if "tfidf_lr" in systems:
        out["tfidf_lr"] = tfidf_lr(tr, te)
    if "ours" in systems:
        out["ours"] = ours(
            tr, te, kind="sentiment", base=base, seed=seed, max_minutes=max_minutes, epochs=epochs, **recipe
        )
    return out


def run(datasets_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Benchmark entry point for ``training.benchmarks.__main__``: {name: {...}} for both datasets."""
    return {name: run_holdout(Path(datasets_dir) / rel, **kwargs) for name, rel in DATASETS.items()}


def print_table(results: dict[str, Any]) -> None:
    rows = []
    for name, r in results.items():
        for system in ("ours", "tfidf_lr"):
            if system in r:
                rows.append((f"{name} (10% holdout)", system, r[system]))
    print(table(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.benchmarks.sentiment", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--data", type=Path, action="append", required=True, help="a CSV/TSV/JSONL file (repeatable)"
    )
    ap.add_argument("--max-train", type=int, default=4000)
    ap.add_argument("--max-minutes", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--base", default="auto")
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    systems = ("tfidf_lr",) if a.baseline_only else ("ours", "tfidf_lr")
    res = {}
    for path in a.data:
        name = path.parent.name or path.stem
        res[name] = run_holdout(
            path, seed=a.seed, max_train=a.max_train, max_minutes=a.max_minutes, base=a.base, systems=systems
        )
    print_table(res)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
