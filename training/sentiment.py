"""Sentiment classifier: ``python -m training.sentiment --train FILE [--eval FILE] --out DIR [--base DIR] ...``

A thin wrapper over :mod:`training.classifier` (the same machinery as ``training.intent``); only the
defaults differ. Options: ``--epochs --lr --batch-size --seed --max-len --max-minutes --max-train-examples
--threads --[no-]ngram-branch``; ``--base auto|none|DIR`` (auto = our MLM checkpoint under
``$XIAOKE_DATA_DIR/pretrained/mlm-small`` when present, else from scratch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.classifier import TrainConfig, TrainResult, run_cli, train_kind
from training.data import LabelledData

DEFAULTS = TrainConfig(
    kind="sentiment",
    epochs=10.0,
    batch_size=32,
    max_len=128,
    ngram_branch=True,
    ngram_fit="joint",
)


def train(
    train_path: str | Path | LabelledData,
    out_dir: str | Path,
    *,
    eval_path: str | Path | LabelledData | None = None,
    base: str | Path | None = "auto",
    **overrides: Any,
) -> Path:
    """Train the sentiment model into ``out_dir`` and return it. ``overrides``: TrainConfig fields."""
    return train_full(train_path, out_dir, eval_path=eval_path, base=base, **overrides).out_dir


def train_full(
    train_path: str | Path | LabelledData,
    out_dir: str | Path,
    *,
    eval_path: str | Path | LabelledData | None = None,
    base: str | Path | None = "auto",
    **overrides: Any,
) -> TrainResult:
    """Like :func:`train` but returns metrics and thresholds too."""
    return train_kind(DEFAULTS, train_path, out_dir, eval_path=eval_path, base=base, **overrides)


def main(argv: list[str] | None = None) -> None:
    run_cli(DEFAULTS, argv)


if __name__ == "__main__":
    main()
