"""training.metrics: ECE, report, threshold calibration rule."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    calibrate_thresholds,
    classification_report,
    expected_calibration_error,
)


def test_ece_hand_made():
    # bin (0.8667, 0.9333]: confidences 0.9, 0.9 with 1 of 2 correct -> |0.5 - 0.9| = 0.4, weight 2/4
    # bin (0.5333, 0.6]: confidences 0.6, 0.6, both correct -> |1.0 - 0.6| = 0.4, weight 2/4
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(0.4)
    # perfectly calibrated: conf 1.0 always right
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == pytest.approx(0.0)
    # one bin, 75% accuracy at conf 0.75 -> 0
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)


def test_ece_bin_edges_are_right_closed():
    # 1/15 is the upper edge of the first bin; 0.0 also lands in the first bin
    e = expected_calibration_error([1 / 15, 0.0], [1, 1], n_bins=15)
    assert e == pytest.approx(1 - (1 / 15) / 2)


def test_classification_report():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    y = [0, 1, 1, 2]
    r = classification_report(y, probs, ["a", "b", "c"])
    assert r["n"] == 4
    assert r["accuracy"] == pytest.approx(0.75)
    assert r["per_class"]["a"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(0.666667),
        "support": 1,
    }
    assert r["per_class"]["b"]["recall"] == 0.5 and r["per_class"]["b"]["precision"] == 1.0
    assert r["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3, abs=1e-5)


def _probs_for(conf_and_pred, k=2):
    rows = []
    for c, p in conf_and_pred:
        row = np.full(k, (1 - c) / (k - 1))
        row[p] = c
        rows.append(row)
    return np.array(rows)


def test_threshold_is_lowest_confidence_keeping_precision():
    # label 0 predictions sorted by confidence: 0.99 ok, 0.95 ok, 0.9 ok, 0.8 ok, 0.7 ok, 0.6 ok,
    # 0.55 ok, 0.5 ok, 0.45 ok, 0.42 WRONG, 0.4 WRONG
    confs = [0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.42, 0.4]
    truth = [0] * 9 + [1, 1]
    probs = _probs_for([(c, 0) for c in confs], k=4)  # 4 classes: 0.4 is still the arg-max
    t = calibrate_thresholds(truth, probs, list("abcd"), target_precision=0.9, floor=0.1, ceiling=0.99)
    # at 0.42: 9/10 = 0.9 -> still ok; at 0.4: 9/11 < 0.9 -> the threshold is 0.42
    assert t["per_label"]["a"] == pytest.approx(0.42)
    # "b" has no predictions (< min_support) -> pooled default, which equals the same rule over all
    assert t["per_label"]["b"] == t["default"] == pytest.approx(0.42)


def test_threshold_floor_ceiling_and_unreachable():
    probs = _probs_for([(0.9, 0), (0.8, 0), (0.7, 0), (0.95, 1), (0.9, 1), (0.85, 1)])
    truth = [0, 0, 0, 0, 0, 0]  # every "b" prediction is wrong
    t = calibrate_thresholds(truth, probs, ["a", "b"], floor=0.75, ceiling=0.93)
    assert t["per_label"]["a"] == 0.75  # rule gives 0.7, raised to the floor
    assert t["per_label"]["b"] == 0.93  # never reaches 0.9 precision -> ceiling
    assert "rule" in t
