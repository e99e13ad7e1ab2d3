"""Scoring a run folder: pooled MEGC2019 scores per round, per-fold scores, the epoch study.

UF1 / UAR / accuracy are computed on the predictions of all folds pooled, with the labels fixed to
the protocol's classes (``mer_keras.metrics``); the per-fold means are reported beside them, named
``per_fold_mean_*``. Every number is read back from the fold files, so a resumed run scores the
same as one that ran through, and only from fold files of this run's config and cache: a fold file
that is missing, holds other samples or records another config hash or cache fingerprint stops the
scoring with a :class:`~mer_keras.training.run_lock.RunFolderError` naming it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from data_prep.cache import CacheData
from mer_keras import metrics as mt
from mer_keras.training.config import TrainConfig
from mer_keras.training.run_folder import fold_path, prob_columns, read_current_fold


@dataclasses.dataclass
class RunScores:
    """Everything the run's CSVs and figure hold.

    Attributes:
        predictions: the pooled prediction rows of every round.
        per_fold: one row per fold and round (``metrics_per_fold.csv``).
        per_round_rows: pooled scores of each round, as rows (``metrics_per_round.csv``).
        per_round: the pooled scores of each round, ``{database: {metric: value}}``.
        by_epoch: snapshot epoch -> the pooled scores of each round at that epoch.
        matrices: database (and ``"all"``) -> confusion matrix summed over rounds.
        probes: ``(round, probes)`` of every fold side file that has them.
        selections: ``(round, subject, selection record)`` of every fold chosen by inner
            cross-validation.
    """

    predictions: list
    per_fold: list
    per_round_rows: list
    per_round: list
    by_epoch: dict
    matrices: dict
    probes: list = dataclasses.field(default_factory=list)
    selections: list = dataclasses.field(default_factory=list)


def score_run(out_dir, config: TrainConfig, data: CacheData, folds: Sequence) -> RunScores:
    """Read every fold file of every round of ``out_dir`` and score them.

    Raises:
        RunFolderError: a fold file is not this run's (see
            :func:`~mer_keras.training.run_folder.read_current_fold`).
    """
    config_hash = config.config_hash()
    labels = list(range(len(data.classes)))
    probs = prob_columns(data.classes)
    predictions, per_fold_rows, per_round_rows, per_round = [], [], [], []
    by_epoch: dict[int, list] = {epoch: [] for epoch in config.snapshot_epochs}
    matrices: dict[str, np.ndarray] = {}
    probes: list = []
    selections: list = []
    for round_index in range(config.rounds):
        rows, fold_names = [], []
        snapshot_pred = {epoch: [] for epoch in config.snapshot_epochs}
        for subject, (_, test_idx) in folds:
            fold_rows, side = read_current_fold(
                fold_path(out_dir, round_index, subject),
                [data.index[i]["sample"] for i in test_idx], config_hash, data.fingerprint,
                what=f"fold {subject} of round {round_index}")
            y_t = np.array([int(r["y_true"]) for r in fold_rows])
            y_p = np.array([int(r["y_pred"]) for r in fold_rows])
            per_fold_rows.append({
                "round": round_index, "subject": subject, "database": fold_rows[0]["database"],
                "n_samples": len(fold_rows), **mt.compute_metrics(y_t, y_p, labels),
                "fold_seed": fold_rows[0]["fold_seed"], "best_epoch": side.get("best_epoch"),
                "seconds": side.get("seconds"), "engine": side.get("engine", "per_fold_fit"),
            })
            if side.get("probes"):
                probes.append((round_index, side["probes"]))
            if side.get("selection"):
                selections.append((round_index, subject, side["selection"]))
            rows += fold_rows
            fold_names += [subject] * len(fold_rows)
            for epoch in config.snapshot_epochs:
                snapshot_pred[epoch] += side["snapshots"][str(epoch)]
        for r in rows:
            predictions.append({
                "round": round_index, "sample": r["sample"], "subject": r["subject"],
                "database": r["database"], "y_true": r["y_true"], "y_pred": r["y_pred"],
                "true_class": data.classes[int(r["y_true"])],
                "pred_class": data.classes[int(r["y_pred"])],
                **{c: r[c] for c in probs}, "fold_seed": r["fold_seed"]})
        y_true = np.array([int(r["y_true"]) for r in rows])
        y_pred = np.array([int(r["y_pred"]) for r in rows])
        databases = np.array([r["database"] for r in rows])
        subjects = np.array(fold_names)  # the per-fold mean is over the protocol's folds
        scores = mt.evaluate(y_true, y_pred, labels, databases=databases, folds=subjects)
        per_round.append(scores)
        for epoch, predicted in snapshot_pred.items():
            by_epoch[epoch].append(mt.evaluate(y_true, np.array(predicted), labels,
                                               databases=databases, folds=subjects))
        per_round_rows += [{"round": round_index, **row} for row in mt.rows_from_scores(scores)]
        for name, mask in [("all", np.ones(len(rows), bool))] + [
                (db, databases == db) for db in dict.fromkeys(databases.tolist())]:
            cm = mt.confusion_matrix(y_true[mask], y_pred[mask], labels)
            matrices[name] = matrices.get(name, 0) + cm
    return RunScores(predictions, per_fold_rows, per_round_rows, per_round, by_epoch, matrices,
                     probes, selections)


def std_over_rounds(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation over rounds (ddof=1); None (an empty CSV cell) for one round,
    whose spread is unknown rather than zero."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _pooling(metric: str) -> str:
    return "per_fold_mean" if metric.startswith("per_fold_mean_") else "pooled"


def _round_rows(per_round: Sequence[dict]) -> list[dict]:
    """Mean and std over rounds of each (database, metric): the rows of ``metrics.csv``."""
    rows = []
    for database in per_round[0]:
        for metric in per_round[0][database]:
            values = [r[database][metric] for r in per_round]
            rows.append({"database": database, "metric": metric, "pooling": _pooling(metric),
                         "value": float(np.mean(values)), "std": std_over_rounds(values),
                         "n_rounds": len(values)})
    return rows


def summarize_rounds(per_round: Sequence[dict]) -> tuple[dict, dict, list]:
    """Mean and std over rounds: ``(scores, std, metrics.csv rows)``."""
    rows = _round_rows(per_round)
    scores, std = {}, {}
    for row in rows:
        scores.setdefault(row["database"], {})[row["metric"]] = row["value"]
        std.setdefault(row["database"], {})[row["metric"]] = row["std"]
    return scores, std, rows


def epoch_rows(by_epoch: dict) -> list[dict]:
    """``metrics_by_epoch.csv``: the mean and std over rounds of each epoch's pooled scores."""
    return [{"epoch": epoch, **row}
            for epoch, rounds in sorted(by_epoch.items()) for row in _round_rows(rounds)]


def epoch_round_rows(by_epoch: dict) -> list[dict]:
    """``metrics_by_epoch_per_round.csv``: each round's pooled scores at each epoch, so that a
    round's epoch curve can be read without re-pooling the fold files."""
    return [{"epoch": epoch, "round": round_index, "pooling": _pooling(row["metric"]), **row}
            for epoch, rounds in sorted(by_epoch.items())
            for round_index, scores in enumerate(rounds) for row in mt.rows_from_scores(scores)]


PER_FOLD_COLUMNS = ("round", "subject", "database", "n_samples", *mt.METRICS, "fold_seed",
                    "best_epoch", "seconds", "engine")
