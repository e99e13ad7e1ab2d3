"""Hyperparameters chosen on training subjects only: subject-grouped inner cross-validation.

With ``config.selection`` set, each outer fold (one LOSO test subject) splits its own training
subjects into ``inner_folds`` groups, trains on all but one group and predicts that group, for
every point of a small named grid (learning rate x epoch count), pools the inner predictions of
all groups, and keeps the grid point with the best pooled score (UF1 by default; ties: the first
point in grid order, learning rates as listed, epochs ascending). The fold then trains on all its
training subjects with that choice and predicts its test subject, which nothing before read: the
inner plans hold training-subject indices only (:func:`inner_plans` checks it), and the grid's
epoch counts come from one training per learning rate with snapshots (all but the largest).

``config.selection``::

    {"grid": {"learning_rate": [1e-3, 3e-4], "epochs": [10, 20, 40]},
     "inner_folds": 3, "metric": "uf1"}

A grid may name ``learning_rate`` and/or ``epochs``; a missing one is the config's own. The choice
of every fold is recorded in its side file (``selection``), in ``selection.csv`` (one row per fold
and grid point) and in ``run.json``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from data_prep.cache import CacheData
from mer_keras import metrics as mt
from mer_keras.training.config import derived_seed
from mer_keras.training.folds import FoldPlan, fit_rows_of

SELECTION_COLUMNS = ("round", "subject", "learning_rate", "epochs", "inner_score", "metric",
                     "chosen", "n_inner_samples")


@dataclasses.dataclass(frozen=True)
class Grid:
    """The grid of one config: learning rates as listed, epochs ascending."""

    learning_rates: tuple
    epochs: tuple
    inner_folds: int
    metric: str

    @classmethod
    def of(cls, config) -> "Grid":
        """The grid of ``config.selection`` (normalised by the config: epochs sorted, defaults
        written out)."""
        selection = config.selection
        grid = selection["grid"]
        return cls(tuple(grid.get("learning_rate", [config.learning_rate])),
                   tuple(grid.get("epochs", [config.epochs])), selection["inner_folds"],
                   selection["metric"])

    def points(self) -> list[tuple[float, int]]:
        return list(itertools.product(self.learning_rates, self.epochs))


def inner_groups(train_idx: np.ndarray, subjects: np.ndarray, n_groups: int, seed: int
                 ) -> list[np.ndarray]:
    """Split a fold's training samples into ``n_groups`` groups of whole subjects.

    The subjects are shuffled with ``seed``, then each goes to the group with the fewest samples
    so far, so the groups hold similar numbers of samples. Returns cache indices per group.
    """
    train_idx = np.asarray(train_idx, np.int64)
    names = sorted(set(subjects[train_idx].tolist()))
    if len(names) < n_groups:
        raise ValueError(f"inner cross-validation needs at least {n_groups} training subjects, "
                         f"the fold has {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    members: list[list[str]] = [[] for _ in range(n_groups)]
    sizes = [0] * n_groups
    for position in order:
        name = names[position]
        target = int(np.argmin(sizes))
        members[target].append(name)
        sizes[target] += int(np.sum(subjects[train_idx] == name))
    return [train_idx[np.isin(subjects[train_idx], group)] for group in members]


def inner_plans(config, data: CacheData, outer: FoldPlan, grid: Grid, *,
                augmentations: int = 0) -> list[FoldPlan]:
    """The inner trainings of one outer fold: every group held out once, for every learning rate.

    Each plan's ``test_idx`` is its held-out group, training subjects of ``outer`` only; a plan
    that would read a sample of the outer test set is refused.
    """
    test = set(np.asarray(outer.test_idx).tolist())
    plans = []
    groups = inner_groups(outer.train_idx, data.subjects, grid.inner_folds,
                          derived_seed(outer.seed, "inner-groups"))
    for j, held_out in enumerate(groups):
        fit_idx = np.setdiff1d(outer.train_idx, held_out)
        if test & set(fit_idx.tolist()) or test & set(held_out.tolist()):
            raise AssertionError(f"inner fold {j} of {outer.name} reads its test samples")
        rows, labels = fit_rows_of(config, data, fit_idx, augmentations)
        for lr in grid.learning_rates:
            plans.append(FoldPlan(
                name=f"{outer.name}/inner{j}/lr={lr:g}", seed=derived_seed(outer.seed, "inner", j),
                train_idx=fit_idx, test_idx=held_out, fit_rows=rows, fit_labels=labels,
                val_idx=np.array([], np.int64), learning_rate=lr, epochs=max(grid.epochs)))
    return plans


def choose(train: Callable[[list, object], list], config, data: CacheData,
           outers: Sequence[FoldPlan], *, augmentations: int = 0,
           say: Optional[Callable[[str], None]] = None) -> list[dict]:
    """The selection record of each outer fold, by inner cross-validation.

    Args:
        train: ``train(plans, inner_config) -> [FoldResult]``, the engine's training.
        config: the run's config (with ``selection``).
        data: the cache (labels and subjects of the training samples).
        outers: the outer folds' plans.
        augmentations: the training table's augmented versions per video.
        say: where a line per outer fold goes.

    Returns:
        One record per outer fold: ``{"learning_rate", "epochs", "metric", "scores": [{lr,
        epochs, score, n}], "inner_folds", "groups": [[subjects], ...]}``.
    """
    grid = Grid.of(config)
    snapshots = tuple(e for e in grid.epochs if e != max(grid.epochs))
    # no probes: the inner trainings' internals are not reported
    inner_config = config.replace(selection={}, snapshot_epochs=snapshots,
                                  epochs=max(grid.epochs), validation=None, probes=False)
    per_outer = [inner_plans(config, data, outer, grid, augmentations=augmentations)
                 for outer in outers]
    started = time.perf_counter()
    results = train([p for plans in per_outer for p in plans], inner_config)
    inner_seconds = (time.perf_counter() - started) / max(len(outers), 1)
    labels = list(range(len(data.classes)))
    records, start = [], 0
    for outer, plans in zip(outers, per_outer):
        found = results[start:start + len(plans)]
        start += len(plans)
        scores = []
        for lr, epochs in grid.points():
            y_true, y_pred = [], []
            for plan, result in zip(plans, found):
                if plan.learning_rate != lr:
                    continue
                y_true.append(np.asarray(result.y_true))
                y_pred.append(np.asarray(result.y_pred) if epochs == max(grid.epochs)
                              else np.asarray(result.snapshots[epochs]))
            y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
            value = mt.compute_metrics(y_true, y_pred, labels)[grid.metric]
            scores.append({"learning_rate": lr, "epochs": epochs, "score": float(value),
                           "n": int(len(y_true))})
        best = max(range(len(scores)), key=lambda i: (scores[i]["score"], -i))
        record = {"learning_rate": scores[best]["learning_rate"],
                  "epochs": scores[best]["epochs"], "metric": grid.metric, "scores": scores,
                  "inner_folds": grid.inner_folds, "inner_seconds": inner_seconds,
                  "groups": [sorted(set(data.subjects[p.test_idx].tolist()))
                             for p in plans[::len(grid.learning_rates)]]}
        records.append(record)
        if say is not None:
            say(f"[{outer.name}] chose learning rate {record['learning_rate']:g}, "
                f"{record['epochs']} epochs (inner {grid.metric} {scores[best]['score']:.4f})")
    return records


def _choice_path(work_dir, round_index: int, name: str) -> Path:
    return Path(work_dir) / "selection" / f"round_{int(round_index):02d}" / f"{name}.json"


def read_choice(work_dir, round_index: int, name: str, config, fingerprint: str
                ) -> Optional[dict]:
    """A fold's saved choice, if it was made under this config and cache (else None)."""
    if work_dir is None:
        return None
    path = _choice_path(work_dir, round_index, name)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("config_hash") != config.config_hash() or \
            saved.get("cache_fingerprint") != fingerprint:
        return None
    return saved["record"]


def write_choice(work_dir, round_index: int, name: str, config, fingerprint: str,
                 record: Mapping) -> None:
    """Save a fold's choice before its final training (atomically; nothing without a run
    folder)."""
    if work_dir is None:
        return
    from data_prep.atomic import atomic_write_text
    path = _choice_path(work_dir, round_index, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"config_hash": config.config_hash(),
                                        "cache_fingerprint": fingerprint, "record": record},
                                       indent=1))


def smoke_selection(config):
    """A smoke run's selection: the grid's epochs cut to 1 and 2 (the learning rates kept)."""
    if not config.selection or "epochs" not in config.selection["grid"]:
        return config
    grid = {**config.selection["grid"], "epochs": [1, 2]}
    return config.replace(selection={**config.selection, "grid": grid})


def final_plans(outers: Sequence[FoldPlan], records: Sequence[Mapping]) -> list[FoldPlan]:
    """The outer folds with their chosen learning rate and epochs."""
    return [dataclasses.replace(outer, learning_rate=float(record["learning_rate"]),
                                epochs=int(record["epochs"]))
            for outer, record in zip(outers, records)]


def selection_rows(per_fold: Sequence[tuple[int, str, Mapping]]) -> list[dict]:
    """``selection.csv``: one row per (round, fold, grid point), the chosen one marked."""
    rows = []
    for round_index, subject, record in per_fold:
        for score in record["scores"]:
            rows.append({"round": round_index, "subject": subject,
                         "learning_rate": score["learning_rate"], "epochs": score["epochs"],
                         "inner_score": score["score"], "metric": record["metric"],
                         "chosen": int(score["learning_rate"] == record["learning_rate"]
                                       and score["epochs"] == record["epochs"]),
                         "n_inner_samples": score["n"]})
    return rows
