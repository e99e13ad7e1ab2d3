"""UF1, UAR, accuracy and confusion matrices, with an explicit label set and pooling rule.

MEGC2019 (and FR, Eqs. 9-13) computes every score on the predictions of ALL LOSO folds pooled:

* per class ``c``: ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``; ``UF1 = mean_c F1_c``;
* ``UAR = mean_c TP_c / N_c`` (mean per-class recall);
* accuracy ``= sum_c TP_c / N``.

The label set is always the protocol's full class list, passed in (never inferred from the labels
of one fold). The per-fold mean of the same scores is also available, but always under names that
say so (``per_fold_mean_uf1``, ...): on the same predictions it can be 0.1-0.2 lower than the pooled
figure, because folds that lack a class score 0 for it.

This module imports no TensorFlow: it works on integer label arrays.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix as _sk_confusion_matrix
from sklearn.metrics import f1_score as _sk_f1_score

#: The metric names :func:`compute_metrics` returns, in report order.
METRICS = ("uf1", "uar", "acc")
#: The per-fold-mean names, so that no one mistakes them for the pooled scores.
PER_FOLD_METRICS = tuple(f"per_fold_mean_{name}" for name in METRICS)


def _as_labels(labels: Sequence[int]) -> np.ndarray:
    labels = np.asarray(list(labels))
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D list of the protocol's class indices")
    if len(set(labels.tolist())) != labels.size:
        raise ValueError(f"labels {labels.tolist()} contain duplicates")
    return labels


def _check_pair(y_true, y_pred, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} entries but y_pred has {y_pred.size}")
    unknown = sorted(set(np.concatenate([y_true, y_pred]).tolist()) - set(labels.tolist()))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the protocol's labels {labels.tolist()}")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, labels: Sequence[int]) -> np.ndarray:
    """The K x K confusion matrix (rows: true, columns: predicted), in the order of ``labels``.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        labels: the protocol's full class list (indices); every class gets a row and a column even
            where it never occurs.
    """
    labels = _as_labels(labels)
    y_true, y_pred = _check_pair(y_true, y_pred, labels)
    return _sk_confusion_matrix(y_true, y_pred, labels=labels)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    numerator = numerator.astype(float)
    denominator = denominator.astype(float)
    out = np.full(numerator.shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmean(values))


def per_class_f1(cm: np.ndarray, zero_division: float = 0.0) -> np.ndarray:
    """``2 TP / (2 TP + FP + FN)`` per class of a confusion matrix (or of a stack of them,
    ``... x K x K``, rows true); ``zero_division`` for 0/0."""
    cm = np.asarray(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fp = cm.sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    return _ratio(2 * tp, 2 * tp + fp + fn, zero_division)


def per_class_recall(cm: np.ndarray, zero_division: float = 0.0) -> np.ndarray:
    """``TP / N`` per class of a confusion matrix (or a stack of them); ``zero_division`` where a
    class has no sample."""
    cm = np.asarray(cm)
    return _ratio(np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-1), zero_division)


def uf1(y_true, y_pred, labels: Sequence[int], *, zero_division: float = 0.0) -> float:
    """Unweighted F1 (MEGC2019): the mean over ``labels`` of ``2TP/(2TP+FP+FN)``.

    Args:
        y_true, y_pred: class indices (pass the pooled predictions of all folds for MEGC2019).
        labels: the protocol's full class list.
        zero_division: the F1 of a class that is neither present nor predicted (0/0). ``0.0``
            (scikit-learn's ``zero_division=0``) by default; ``float("nan")`` leaves the class out
            of the mean.
    """
    return _mean(per_class_f1(confusion_matrix(y_true, y_pred, labels), zero_division))


def uar(y_true, y_pred, labels: Sequence[int], *, zero_division: float = 0.0) -> float:
    """Unweighted average recall (MEGC2019): the mean over ``labels`` of ``TP_c / N_c``.

    Args:
        y_true, y_pred: class indices.
        labels: the protocol's full class list.
        zero_division: the recall of a class without samples; ``float("nan")`` leaves it out.
    """
    return _mean(per_class_recall(confusion_matrix(y_true, y_pred, labels), zero_division))


def accuracy(y_true, y_pred, labels: Sequence[int]) -> float:
    """``sum_c TP_c / N`` (FR Eq. 9, Micro-Attention's WAR)."""
    cm = confusion_matrix(y_true, y_pred, labels)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def macro_f1(y_true, y_pred, labels: Sequence[int]) -> float:
    """scikit-learn's macro F1 with ``labels=`` fixed; equals :func:`uf1` (a cross-check)."""
    labels = _as_labels(labels)
    y_true, y_pred = _check_pair(y_true, y_pred, labels)
    return float(_sk_f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def compute_metrics(y_true, y_pred, labels: Sequence[int], *,
                    zero_division: float = 0.0) -> dict[str, float]:
    """``{"uf1", "uar", "acc"}`` of one set of predictions (pooled, a database subset or a fold)."""
    return {
        "uf1": uf1(y_true, y_pred, labels, zero_division=zero_division),
        "uar": uar(y_true, y_pred, labels, zero_division=zero_division),
        "acc": accuracy(y_true, y_pred, labels),
    }


def per_group_metrics(y_true, y_pred, groups, labels: Sequence[int], *,
                      zero_division: float = 0.0) -> dict[str, dict[str, float]]:
    """:func:`compute_metrics` on each subset of the (pooled) predictions that shares a group.

    With ``groups`` = the database of each sample, this is the CDE per-database breakdown: the same
    pooled predictions, restricted to one database, scored with the full label set.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    groups = np.asarray(groups).ravel()
    if groups.shape != y_true.shape:
        raise ValueError(f"groups has {groups.size} entries but y_true has {y_true.size}")
    return {
        str(group): compute_metrics(y_true[groups == group], y_pred[groups == group], labels,
                                    zero_division=zero_division)
        for group in dict.fromkeys(groups.tolist())
    }


def per_database_metrics(y_true, y_pred, databases, labels: Sequence[int]) -> dict[str, dict]:
    """The per-database breakdown of pooled predictions; see :func:`per_group_metrics`."""
    return per_group_metrics(y_true, y_pred, databases, labels)


def per_fold_mean(y_true, y_pred, folds, labels: Sequence[int], *,
                  zero_division: float = 0.0) -> dict[str, float]:
    """The mean over folds of each fold's scores, named ``per_fold_mean_<metric>``.

    This is NOT the MEGC2019 figure (that is :func:`compute_metrics` on the pooled predictions); it
    is reported beside it because some peers computed it. Labels stay fixed to ``labels``, so a
    class absent from a fold (and never predicted there) scores ``zero_division`` for that fold.
    """
    scores = per_group_metrics(y_true, y_pred, folds, labels, zero_division=zero_division)
    return {
        f"per_fold_mean_{name}": _mean([fold[name] for fold in scores.values()])
        for name in METRICS
    }


def evaluate(y_true, y_pred, labels: Sequence[int], *, databases=None,
             folds=None) -> dict[str, dict[str, float]]:
    """All scores of one run: ``{"all": {...}, "<database>": {...}}``.

    Every entry holds the pooled ``uf1``/``uar``/``acc`` of that subset and, where ``folds`` is
    given, the ``per_fold_mean_*`` scores of the folds in it.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    subsets: dict[str, np.ndarray] = {"all": np.ones(y_true.shape, dtype=bool)}
    if databases is not None:
        databases = np.asarray(databases).ravel()
        for database in dict.fromkeys(databases.tolist()):
            subsets[str(database)] = databases == database
    result = {}
    for name, mask in subsets.items():
        scores = compute_metrics(y_true[mask], y_pred[mask], labels)
        if folds is not None:
            folds_arr = np.asarray(folds).ravel()
            scores.update(per_fold_mean(y_true[mask], y_pred[mask], folds_arr[mask], labels))
        result[name] = scores
    return result


def rows_from_scores(scores: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Flatten :func:`evaluate`'s output into ``{"database", "metric", "value"}`` rows."""
    return [
        {"database": database, "metric": metric, "value": value}
        for database, by_metric in scores.items() for metric, value in by_metric.items()
    ]
