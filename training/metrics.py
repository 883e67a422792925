"""Classification metrics and threshold calibration (numpy only, no sklearn).

Threshold rule (documented in the bundle's ``xiaoke_training.json`` as ``thresholds.rule``):

For each label L, take the eval examples the model predicts as L (arg-max) with their confidences. The
threshold for L is the lowest confidence t among them such that the predictions of L with confidence >= t
have precision >= ``target_precision`` (0.9) — i.e. accepting L at confidence >= t keeps L's precision on
the eval split at 0.9 or better while accepting as many predictions as possible. The result is clipped to
[``floor``, ``ceiling``] (0.30, 0.95). When no t reaches the target the label gets ``ceiling``; when L has
fewer than ``min_support`` (3) predictions on eval it gets the global default, which is the same rule
applied to all predictions pooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

THRESHOLD_TARGET_PRECISION = 0.9
THRESHOLD_FLOOR = 0.30
THRESHOLD_CEILING = 0.95
THRESHOLD_MIN_SUPPORT = 3


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t, p] += 1
    return cm


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool | int], n_bins: int = 15
) -> float:
    """ECE with ``n_bins`` equal-width bins over (0, 1]: sum_b |B|/n * |acc(B) - conf(B)|.

    A confidence c falls in bin b when b/n_bins < c <= (b+1)/n_bins (0 goes to the first bin).
    """
    conf = np.asarray(confidences, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    n = len(conf)
    if n == 0:
        return 0.0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.sum() / n * abs(corr[mask].mean() - conf[mask].mean())
    return float(ece)


def classification_report(
    y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str], n_bins: int = 15
) -> dict[str, Any]:
    """accuracy, macro_f1, weighted_f1, per_class {label: precision/recall/f1/support}, ece, n."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true_arr = np.asarray(y_true, dtype=np.int64)
    y_pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    k = len(labels)
    cm = confusion_matrix(y_true_arr.tolist(), y_pred.tolist(), k)
    per_class: dict[str, dict[str, float | int]] = {}
    f1s, supports = [], []
    for i, label in enumerate(labels):
        tp = int(cm[i, i])
        pred_n = int(cm[:, i].sum())
        support = int(cm[i, :].sum())
        precision = tp / pred_n if pred_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": support,
        }
        if support:  # macro-F1 over the labels present in the data
            f1s.append(f1)
            supports.append(support)
    n = len(y_true_arr)
    correct = y_pred == y_true_arr
    return {
        "n": n,
        "accuracy": round(float(correct.mean()) if n else 0.0, 6),
        "macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 6),
        "weighted_f1": round(float(np.average(f1s, weights=supports)) if f1s else 0.0, 6),
        "ece": round(expected_calibration_error(conf, correct, n_bins), 6),
        "per_class": per_class,
    }


def _lowest_threshold(conf: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """Lowest t in conf with precision(conf >= t) >= target, or None."""
    order = np.argsort(-conf, kind="stable")
    c_sorted, ok_sorted = conf[order], correct[order].astype(np.float64)
    precision_at = np.cumsum(ok_sorted) / np.arange(1, len(ok_sorted) + 1)
    best = None
    for j in range(len(c_sorted)):
        # only cut between distinct confidences: everything tied with c_sorted[j] is accepted together
        if j + 1 < len(c_sorted) and c_sorted[j + 1] == c_sorted[j]:
            continue
        if precision_at[j] >= target:
            best = float(c_sorted[j])
    return best


def calibrate_thresholds(
    y_true: Sequence[int],
    probs: np.ndarray,
    labels: Sequence[str],
    *,
    target_precision: float = THRESHOLD_TARGET_PRECISION,
    floor: float = THRESHOLD_FLOOR,
    ceiling: float = THRESHOLD_CEILING,
    min_support: int = THRESHOLD_MIN_SUPPORT,
) -> dict[str, Any]:
    """Per-label confidence thresholds by the rule in the module docstring."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    correct = pred == y

    def clip(t: float | None) -> float:
        return ceiling if t is None else float(min(max(t, floor), ceiling))

    default = clip(_lowest_threshold(conf, correct, target_precision)) if len(y) else 0.5
    per_label: dict[str, float] = {}
    for i, label in enumerate(labels):
        mask = pred == i
        if int(mask.sum()) < min_support:
            per_label[label] = round(default, 4)
        else:
            per_label[label] = round(clip(_lowest_threshold(conf[mask], correct[mask], target_precision)), 4)
    return {
        "default": round(default, 4),
        "per_label": per_label,
        "rule": (
            f"lowest confidence t at which the label's eval precision over predictions with confidence >= t "
            f"stays >= {target_precision}; clipped to [{floor}, {ceiling}]; {ceiling} if never reached; "
            f"labels with < {min_support} eval predictions use the pooled default"
        ),
    }
