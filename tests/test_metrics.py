"""UF1 / UAR / accuracy against hand-computed values, with the label set fixed to the protocol's."""

import numpy as np
import pytest

from mer_keras import metrics

LABELS = [0, 1, 2]


def _from_counts(rows):
    """y_true, y_pred from a confusion matrix given as rows of counts (true class per row)."""
    y_true, y_pred = [], []
    for true_class, row in enumerate(rows):
        for pred_class, count in enumerate(row):
            y_true += [true_class] * count
            y_pred += [pred_class] * count
    return np.array(y_true), np.array(y_pred)


def test_fr_figure_3_per_class_recalls_give_uar_0_7832():
    # FR Fig. 3: 209/250, 77/109, 67/83 correct; the wrong ones are spread over the other classes.
    y_true, y_pred = _from_counts([[209, 21, 20], [16, 77, 16], [8, 8, 67]])
    assert metrics.uar(y_true, y_pred, LABELS) == pytest.approx(
        (209 / 250 + 77 / 109 + 67 / 83) / 3)
    assert round(metrics.uar(y_true, y_pred, LABELS), 4) == 0.7832
    assert metrics.accuracy(y_true, y_pred, LABELS) == pytest.approx((209 + 77 + 67) / 442)


def test_uf1_matches_the_megc_formula_by_hand():
    # cm = [[3,1,0],[1,1,0],[0,1,1]]
    y_true, y_pred = _from_counts([[3, 1, 0], [1, 1, 0], [0, 1, 1]])
    # class 0: TP 3, FP 1, FN 1 -> 6/8; class 1: TP 1, FP 2, FN 1 -> 2/5;
    # class 2: TP 1, FP 0, FN 1 -> 2/3
    expected = (6 / 8 + 2 / 5 + 2 / 3) / 3
    assert metrics.uf1(y_true, y_pred, LABELS) == pytest.approx(expected)
    assert metrics.macro_f1(y_true, y_pred, LABELS) == pytest.approx(expected)
    assert metrics.uar(y_true, y_pred, LABELS) == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert metrics.accuracy(y_true, y_pred, LABELS) == pytest.approx(5 / 8)


def test_confusion_matrix_keeps_a_row_for_an_absent_class():
    cm = metrics.confusion_matrix([0, 0, 1], [0, 1, 1], LABELS)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_a_class_absent_from_a_fold_is_still_counted_with_fixed_labels():
    # fold A has only classes 0 and 1, fold B only class 2; all predictions correct.
    y_true = np.array([0, 1, 2, 2])
    y_pred = np.array([0, 1, 2, 2])
    folds = np.array(["A", "A", "B", "B"])
    assert metrics.uf1(y_true, y_pred, LABELS) == 1.0
    assert metrics.uar(y_true, y_pred, LABELS) == 1.0
    per_fold = metrics.per_fold_mean(y_true, y_pred, folds, LABELS)
    # fold A: F1 = (1 + 1 + 0) / 3; fold B: (0 + 0 + 1) / 3 -> mean 1/2
    assert per_fold["per_fold_mean_uf1"] == pytest.approx(0.5)
    assert per_fold["per_fold_mean_uar"] == pytest.approx(0.5)
    assert per_fold["per_fold_mean_acc"] == 1.0
    # inferring labels from fold B alone would have given a perfect 1.0 there: fixed labels do not
    assert metrics.uf1(y_true[2:], y_pred[2:], LABELS) == pytest.approx(1 / 3)
    # nan zero-division leaves the absent classes out instead
    assert metrics.uf1(y_true[2:], y_pred[2:], LABELS, zero_division=float("nan")) == 1.0


def test_pooled_and_per_fold_mean_differ_and_are_named_apart():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    folds = np.array(["s1", "s1", "s2", "s2", "s3", "s3"])
    scores = metrics.evaluate(y_true, y_pred, LABELS, folds=folds)["all"]
    assert set(scores) == set(metrics.METRICS) | set(metrics.PER_FOLD_METRICS)
    assert scores["uar"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # per fold UAR: s1 (1/2+0+0)/3 = 1/6, s2 1/3, s3 (0+0+1/2)/3 = 1/6 -> mean 2/9
    assert scores["per_fold_mean_uar"] == pytest.approx(2 / 9)


def test_per_database_breakdown_uses_subsets_of_the_pooled_predictions():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 1, 2, 1, 1, 1])
    databases = np.array(["casme2"] * 3 + ["samm"] * 3)
    scores = metrics.evaluate(y_true, y_pred, LABELS, databases=databases)
    assert sorted(scores) == ["all", "casme2", "samm"]
    assert scores["casme2"]["uf1"] == 1.0
    assert scores["samm"]["uar"] == pytest.approx(1 / 3)
    assert scores["samm"]["acc"] == pytest.approx(1 / 3)
    assert scores["all"]["acc"] == pytest.approx(4 / 6)
    rows = metrics.rows_from_scores(scores)
    assert {"database": "samm", "metric": "acc", "value": scores["samm"]["acc"]} in rows


def test_labels_outside_the_protocol_are_rejected():
    with pytest.raises(ValueError, match="not among the protocol's labels"):
        metrics.uf1([0, 3], [0, 1], LABELS)
    with pytest.raises(ValueError, match="entries"):
        metrics.uar([0, 1], [0], LABELS)
