"""Helpers shared by the classifier benchmarks (intents, sentiment): baseline, our recipe, tables."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bundle.normalize import normalize
from training.data import LabelledData
from training.metrics import classification_report


def tfidf_lr(train: LabelledData, test: LabelledData, *, C: float = 10.0) -> dict[str, Any]:
    """Baseline: char 1-3-gram TF-IDF (sublinear tf) + logistic regression (sklearn; benchmarks only)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.monotonic()
    labels = sorted(set(train.labels))
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
    x_tr = vec.fit_transform([normalize(t) for t in train.texts])
    x_te = vec.transform([normalize(t) for t in test.texts])
    clf = LogisticRegression(C=C, max_iter=3000)
    clf.fit(x_tr, train.labels)
    probs = np.zeros((len(test), len(labels)))
    p = clf.predict_proba(x_te)
    for j, y in enumerate(clf.classes_):
        probs[:, labels.index(y)] = p[:, j]
    index = {y: i for i, y in enumerate(labels)}
    m = classification_report([index[y] for y in test.labels], probs, labels)
    m["seconds"] = round(time.monotonic() - t0, 1)
    return m


def ours(train: LabelledData, test: LabelledData, *, kind: str, **overrides) -> dict[str, Any]:
    """Our recipe (training.classifier with the kind's defaults) trained on ``train``, scored on ``test``.

    ``test`` is never shown to training: the recipe chooses the BERT/n-gram mix and calibrates on its own
    stratified validation slice of ``train`` (so it learns from 85 % of what the baseline learns from), and
    the saved model is then scored on ``test`` by ``training.evaluate``."""
    from training.classifier import train_kind
    from training.evaluate import evaluate

    if kind == "intent":
        from training.intent import DEFAULTS
    else:
        from training.sentiment import DEFAULTS
    base = overrides.pop("base", "auto")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xk-bench-") as tmp:
        res = train_kind(DEFAULTS, train, Path(tmp) / "model", base=base, **overrides)
        m = evaluate(res.out_dir, test)
    m["validation_accuracy"] = res.metrics["accuracy"]
    for k in ("model", "data", "data_sha256"):
        m.pop(k, None)
    m["seconds"] = round(time.monotonic() - t0, 1)
    return m


def summarize(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    acc = [f["accuracy"] for f in per_fold]
    f1 = [f["macro_f1"] for f in per_fold]
    return {
        "accuracy": round(float(np.mean(acc)), 4),
        "accuracy_std": round(float(np.std(acc)), 4),
        "macro_f1": round(float(np.mean(f1)), 4),
        "macro_f1_std": round(float(np.std(f1)), 4),
        "per_fold_accuracy": [round(a, 4) for a in acc],
        "per_fold_macro_f1": [round(a, 4) for a in f1],
        "seconds": round(sum(f.get("seconds", 0.0) for f in per_fold), 1),
    }


def table(rows: list[tuple[str, str, dict[str, Any]]]) -> str:
    out = [f"{'dataset':<28} {'system':<30} {'accuracy':>9} {'macro_f1':>9} {'seconds':>8}"]
    for dataset, system, m in rows:
        acc = f"{m['accuracy']:.4f}"
        f1 = f"{m['macro_f1']:.4f}"
        if "accuracy_std" in m:
            acc += f"±{m['accuracy_std']:.3f}"
            f1 += f"±{m['macro_f1_std']:.3f}"
        out.append(f"{dataset:<28} {system:<30} {acc:>9} {f1:>9} {m.get('seconds', 0):>8}")
    return "\n".join(out)
