"""Intent classifier: ``python -m training.intent --train FILE [--eval FILE] --out DIR [--base DIR] ...``

The shared classifier machinery (:mod:`training.classifier`, also behind ``training.sentiment``) with the intent
defaults. Options: ``--epochs --lr --batch-size --seed --max-len --max-minutes --max-train-examples --threads
--[no-]ngram-branch``; ``--base auto|none|DIR`` (auto = our MLM checkpoint under
``$XIAOKE_DATA_DIR/pretrained/mlm-small`` when present, else from scratch).
"""

from __future__ import annotations

from training.classifier import ClassifierTask, TrainConfig

DEFAULTS = TrainConfig(
    kind="intent",
    epochs=12.0,
    batch_size=32,
    max_len=64,
    ngram_branch=True,
    ngram_fit="joint",
    ngram_idf=True,
    refit_full=True,
)
TASK = ClassifierTask(DEFAULTS)
train, train_full, main = TASK.train, TASK.train_full, TASK.main

if __name__ == "__main__":
    raise SystemExit(main())
