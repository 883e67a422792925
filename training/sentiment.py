"""Sentiment classifier: ``python -m training.sentiment --train FILE [--eval FILE] --out DIR [--base DIR] ...``

The shared classifier machinery (:mod:`training.classifier`, also behind ``training.intent``) with the sentiment
defaults (negative / neutral / positive customer utterances, used for escalation to a human). Same options as
``training.intent``.
"""

from __future__ import annotations

from training.classifier import ClassifierTask, TrainConfig

DEFAULTS = TrainConfig(
    kind="sentiment", epochs=10.0, batch_size=32, max_len=128, ngram_branch=True, ngram_fit="joint"
)
TASK = ClassifierTask(DEFAULTS)
train, train_full, main = TASK.train, TASK.train_full, TASK.main

if __name__ == "__main__":
    raise SystemExit(main())
