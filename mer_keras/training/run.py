"""Every fold of a protocol, resumed where a run stopped, written to a run folder.

One run at a time writes into a run folder: :func:`run_protocol` holds its lock from start to end
(:mod:`~mer_keras.training.run_lock`), and scores only fold files of its own config and cache.

No fold ever looks at its test subject before predicting it: training runs a fixed number of epochs;
a validation set, when configured, is made of training subjects only, and is used only as
``config.validation_use`` says (``"monitor"``: logged; ``"checkpoint"``: keep the weights of the
epoch with the lowest validation loss).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import keras
import numpy as np

import mer_keras
from data_prep.cache import CacheData, atomic_write_csv, atomic_write_text, load_cache
from mer_keras.protocols import CompositeLOSO, LeaveOneDatabaseOut, LeaveVideosOut
from mer_keras.training import probes, scoring, selection
from mer_keras.training.config import TrainConfig, fold_seed
from mer_keras.training.engines import FOLD_PARALLEL_WIDTH, check_engine, resolve_engine
from mer_keras.training.folds import cache_arrays, prepare_model_inputs
from mer_keras.training.plots import plot_confusion_matrices
from data_prep.progress import Progress
from mer_keras.training.run_folder import fold_is_current, fold_path, move_stale, prob_columns, \
    write_fold
from mer_keras.training.run_lock import run_folder_lock
from mer_keras.training.workers import FoldSession, train_in_worker

SMOKE_FOLDS = 3
#: folds a ``per_fold_fit`` worker process trains before a fresh one replaces it: bounds the leak
#: of ``model.fit`` (~0.2 GB per FR fold) to ~3.5 GB while a new process (TensorFlow import, ~6 s)
#: is paid only 5 times over the 68 CDE folds. The stacked engines leak nothing per fold and train
#: every fold in one worker.
FOLDS_PER_PROCESS = 16
#: the default engine of :func:`run_protocol` (the experiments choose theirs).
DEFAULT_ENGINE = "fold_parallel"


@dataclasses.dataclass
class RunResult:
    """The outcome of :func:`run_protocol`.

    Attributes:
        out_dir: the run folder.
        config: the resolved config (after ``smoke``).
        scores: ``{database: {metric: mean over rounds}}`` (``"all"`` = the whole protocol), with
            the pooled ``uf1``/``uar``/``acc`` and the ``per_fold_mean_*`` scores.
        std: the same layout, the standard deviation over rounds (None for one round).
        per_round: the scores of each round.
        trained: ``(round, subject)`` of the folds trained by this call.
        resumed: ``(round, subject)`` of the folds read back from earlier calls.
        engine: the engine that trained this call's folds (after any fallback).
    """

    out_dir: Path
    config: TrainConfig
    scores: dict
    std: dict
    per_round: list
    trained: list
    resumed: list
    engine: str = DEFAULT_ENGINE


def _versions() -> dict:
    try:
        import tensorflow as tf
        tf_version = tf.__version__
    except ImportError:  # another Keras backend
        tf_version = None
    return {"mer_keras": mer_keras.__version__, "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "tensorflow": tf_version,
            "numpy": np.__version__, "python": platform.python_version()}


def _progress_writer(progress: bool) -> Callable[[str], None]:
    if not progress:
        return lambda message: None
    from tqdm import tqdm
    return lambda message: tqdm.write(message, file=sys.stderr)


def protocol_folds(config: TrainConfig, data: CacheData) -> list:
    """``[(fold name, (train_idx, test_idx)), ...]`` of the config's splitter on the cache."""
    if config.splitter == "loso":
        splitter = CompositeLOSO()
        names = splitter.subjects(data.subjects)
        splits = splitter.split(None, None, data.subjects)
    elif config.splitter == "lodo":
        splitter = LeaveOneDatabaseOut()
        names = splitter.fold_names(data.databases)
        splits = splitter.split(databases=data.databases)
    else:
        splitter = LeaveVideosOut(config.lovo_folds, seed=config.seed)
        names = splitter.fold_names()
        splits = splitter.split(None, data.labels, data.subjects)
    return list(zip(names, splits))


def smoke_config(config: TrainConfig) -> TrainConfig:
    """A seconds-long version: 1 epoch (2, with a snapshot after the first, for an epoch study)."""
    # an epoch study keeps one snapshot, so a smoke run goes through that path too
    return config.replace(epochs=2, rounds=1, snapshot_epochs=(1,)) \
        if config.snapshot_epochs else config.replace(epochs=1, rounds=1)


def run_protocol(config: TrainConfig, cache_dir, out_dir, *, smoke: bool = False,
                 progress: bool = True, report: Union[None, Mapping, Sequence[Mapping]] = None,
                 engine: str = DEFAULT_ENGINE, width: Optional[int] = None,
                 folds_per_process: int = FOLDS_PER_PROCESS,
                 smoke_changes: Optional[Mapping] = None, sources=None,
                 wait: bool = False) -> RunResult:
    """Run every fold of a cache (``config.rounds`` times), resuming where a run stopped.

    Args:
        config: the run's config.
        cache_dir: a cache written by ``python -m data_prep``; its subjects are the LOSO groups
            (for a MEGC2019 composite cache this is the CDE protocol).
        out_dir: the run folder (see :mod:`mer_keras.training.run_folder`); created if needed.
        smoke: a seconds-long check of the whole pipeline: :func:`smoke_config` (or
            ``smoke_changes``, where the experiment gives its own), the first ``SMOKE_FOLDS``
            folds only. Recorded in ``run.json``.
        progress: a tqdm bar over folds (one line per finished fold where stderr is not a
            terminal: a log file) and one line per epoch on stderr.
        report: which published row(s) this run reproduces, recorded in ``run.json`` for
            ``python -m mer_keras.report``: ``{"paper", "table", "method", "dataset_map"}`` or a
            list of them (the experiment knows the paper table; the library does not).
        engine: ``"fold_parallel"``, ``"compile_once"`` or ``"per_fold_fit"``
            (:mod:`mer_keras.training.engines`); a model or config that cannot use it falls back,
            and says so once. Recorded in ``run.json`` and in every fold's side file.
        width: folds per fold-parallel program (default ``engines.FOLD_PARALLEL_WIDTH``).
        folds_per_process: train the folds in a worker process (``spawn``); a ``per_fold_fit``
            worker is replaced after this many folds, to return the memory ``model.fit`` leaks
            (:mod:`mer_keras.training.workers`), a stacked engine's worker trains them all. 0
            trains in the calling process. Not part of the config or its hash. An error in a fold
            is raised here with its message; Ctrl-C stops the worker, and every finished fold
            stays saved.
        sources: the ``transfer`` engine's macro cache and initial weights
            (:class:`mer_keras.transfer.TransferSources`); their fingerprints join the cache's,
            so a fold trained on other macro data is not taken for a finished one.
        wait: when another run holds ``out_dir``'s lock, wait for it to end (saying so) rather
            than raise :class:`~mer_keras.training.run_lock.RunFolderBusy` at once.

    Raises:
        RunFolderBusy: another run is writing into ``out_dir`` (and ``wait`` is false).
        RunFolderError: a finished fold's file changed under the run (nothing is scored).
    """
    if int(folds_per_process) != folds_per_process or folds_per_process < 0:
        raise ValueError(f"folds_per_process must be an integer >= 0, not {folds_per_process!r}")
    check_engine(engine)
    write = _progress_writer(progress)
    with run_folder_lock(out_dir, wait=wait, say=write):
        return _run_locked(config, cache_dir, Path(out_dir), smoke=smoke, progress=progress,
                           report=report, engine=engine, width=width,
                           folds_per_process=folds_per_process, smoke_changes=smoke_changes,
                           sources=sources, write=write)


def _run_locked(config, cache_dir, out_dir: Path, *, smoke, progress, report, engine, width,
                folds_per_process, smoke_changes, sources, write) -> RunResult:
    started = time.time()
    if smoke:
        config = config.replace(**smoke_changes) if smoke_changes is not None \
            else smoke_config(config)
        config = selection.smoke_selection(config)
    data = load_cache(cache_dir, arrays=cache_arrays(config))
    if sources is not None:
        data = dataclasses.replace(data, fingerprint=sources.fingerprint(data.fingerprint))
    config_hash = config.config_hash()
    move_stale(out_dir, config_hash, data.fingerprint, write)

    folds = protocol_folds(config, data)
    if smoke:
        folds = folds[:SMOKE_FOLDS]
    trained, resumed, seeds, pending = [], [], {}, []
    for round_index in range(config.rounds):
        for subject, (train_idx, test_idx) in folds:
            seed = fold_seed(config.seed, round_index, subject)
            seeds.setdefault(str(round_index), {})[subject] = seed
            expected = [data.index[i]["sample"] for i in test_idx]
            if fold_is_current(fold_path(out_dir, round_index, subject), expected, config_hash,
                               data.fingerprint):
                resumed.append((round_index, subject))
            else:
                pending.append((round_index, subject, train_idx, test_idx, seed))

    engine, width = resolve_engine(engine, config, _input_shape(config, data),
                                   len(data.classes), width=width, say=write) \
        if pending else (engine, int(width or FOLD_PARALLEL_WIDTH))
    # a new worker every folds_per_process folds only where a model per fold leaks (model.fit)
    one_model_per_fold = engine in ("per_fold_fit", "transfer")
    group = 1 if one_model_per_fold or engine == "sklearn" else width

    bar = Progress(len(resumed) + len(pending), initial=len(resumed), desc=config.experiment,
                   unit="fold", enabled=progress)

    def finish(round_index, subject, result):
        write_fold(fold_path(out_dir, round_index, subject), result, data,
                   round_index=round_index, config_hash=config_hash)
        trained.append((round_index, subject))
        bar.update(1, finished=f"round {round_index} {subject}")

    def show(round_index, subject):
        bar.note(f"round {round_index} {subject}")

    groups = [pending[start:start + group] for start in range(0, len(pending), group)]
    try:
        extras = {"sources": sources, "work_dir": str(out_dir)}
        if folds_per_process == 0:
            session = FoldSession(config, data, engine, width, sources=sources,
                                  work_dir=out_dir, say=write) if pending else None
            for jobs in groups:
                show(jobs[0][0], jobs[0][1])
                for (round_index, subject, *_), result in zip(
                        jobs, session.train(jobs, progress=write if progress else None)):
                    finish(round_index, subject, result)
        else:
            per_worker = folds_per_process if one_model_per_fold else len(groups) or 1
            if config.selection and engine == "per_fold_fit":  # each fold fits its inner models
                grid = config.selection["grid"]
                models = config.selection["inner_folds"] * len(grid.get("learning_rate", [0]))
                per_worker = max(1, folds_per_process // (models + 1))
            for start in range(0, len(groups), per_worker):
                train_in_worker(groups[start:start + per_worker], config,
                                str(Path(cache_dir).resolve()), data.fingerprint, engine=engine,
                                width=width, progress=progress, show=show, finish=finish,
                                extras=extras)
    finally:
        bar.close()
    if resumed:
        write(f"{out_dir}: resumed {len(resumed)} finished fold(s), trained {len(trained)}")

    scores = scoring.score_run(out_dir, config, data, folds)
    result = write_outputs(out_dir, config=config, data=data, scores=scores)
    finished = time.time()
    record = {
        "experiment": config.experiment, "config": config.to_dict(), "config_hash": config_hash,
        "smoke": smoke, "seed": config.seed, "fold_seeds": seeds,
        "engine": {"name": engine, "width": width if engine == "fold_parallel" else 1,
                   "folds_per_engine": dict(_count(r["engine"] for r in scores.per_fold))},
        "splitter": {"name": config.splitter, "n_folds": len(folds),
                     "folds": [s for s, _ in folds], "classes": list(data.classes)},
        "protocol": data.meta.get("protocol"),
        "cache": {"path": str(Path(cache_dir).resolve()), "fingerprint": data.fingerprint,
                  "n_samples": len(data)},
        "versions": _versions(),
        "timings": {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(finished)),
                    "seconds_this_call": finished - started,
                    "fold_seconds_total": float(sum(r["seconds"] or 0 for r in scores.per_fold))},
        "folds_trained_this_call": len(trained), "folds_resumed": len(resumed),
        "metrics_note": "uf1/uar/acc are computed on the pooled predictions of all folds "
                        "(MEGC2019); per_fold_mean_* are means of per-fold scores",
    }
    if scores.selections:
        chosen: dict = {}
        for round_index, subject, found in scores.selections:
            chosen.setdefault(str(round_index), {})[subject] = {
                "learning_rate": found["learning_rate"], "epochs": found["epochs"]}
        record["selection"] = {"rule": "subject-grouped inner cross-validation on each fold's "
                                       "training subjects", "settings": config.selection,
                               "choices": chosen}
    if sources is not None:
        record["transfer_sources"] = sources.describe()
    if report is not None:
        record["report"] = report
    atomic_write_text(out_dir / "run.json", json.dumps(record, indent=2, sort_keys=True))
    return dataclasses.replace(result, trained=trained, resumed=resumed, engine=engine)


def _count(values):
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _input_shape(config: TrainConfig, data: CacheData) -> tuple:
    """The model's input shape: from one prepared sample (the appearance mask needs them all)."""
    if config.input_array != "appearance":
        first = np.asarray(data.arrays[config.input_array][:1])
        data = dataclasses.replace(data, arrays={config.input_array: first})
    inputs, _ = prepare_model_inputs(config.replace(augment=False), data)
    return tuple(inputs.shape[1:])


def write_outputs(out_dir: Path, *, config: TrainConfig, data: CacheData,
                  scores: scoring.RunScores) -> RunResult:
    """The run's CSVs and figure, from its scores (``run.json`` is the caller's)."""
    summary, std, metric_rows = scoring.summarize_rounds(scores.per_round)
    epoch_rows, epoch_round_rows = [], []
    if config.snapshot_epochs:
        by_epoch = dict(scores.by_epoch)
        by_epoch[config.epochs] = scores.per_round
        epoch_rows = scoring.epoch_rows(by_epoch)
        epoch_round_rows = scoring.epoch_round_rows(by_epoch)
    if scores.probes:
        probe_rows = probes.epoch_rows(scores.probes)
        epoch_rows = sorted(epoch_rows + probe_rows, key=lambda r: int(r["epoch"]))
        probes.plot_probes(out_dir / "probes_by_epoch.png", probe_rows,
                           title=f"{config.experiment}: training samples of "
                                 f"{len(scores.probes)} folds")
    if scores.selections:
        atomic_write_csv(out_dir / "selection.csv", selection.selection_rows(scores.selections),
                         selection.SELECTION_COLUMNS)
    if epoch_rows:
        atomic_write_csv(out_dir / "metrics_by_epoch.csv", epoch_rows,
                         ("epoch", "database", "metric", "pooling", "value", "std", "n_rounds"))
    if epoch_round_rows:
        atomic_write_csv(out_dir / "metrics_by_epoch_per_round.csv", epoch_round_rows,
                         ("epoch", "round", "database", "metric", "pooling", "value"))
    columns = ("round", "sample", "subject", "database", "y_true", "y_pred", "true_class",
               "pred_class", *prob_columns(data.classes), "fold_seed")
    atomic_write_csv(out_dir / "predictions.csv", scores.predictions, columns)
    atomic_write_csv(out_dir / "metrics_per_fold.csv", scores.per_fold, scoring.PER_FOLD_COLUMNS)
    atomic_write_csv(out_dir / "metrics_per_round.csv", scores.per_round_rows,
                     ("round", "database", "metric", "value"))
    atomic_write_csv(out_dir / "metrics.csv", metric_rows,
                     ("database", "metric", "pooling", "value", "std", "n_rounds"))
    plot_confusion_matrices(
        out_dir / "confusion_matrix.png", scores.matrices, data.classes,
        title=f"{config.experiment}: pooled over all folds"
              + (f", summed over {config.rounds} rounds" if config.rounds > 1 else ""))
    return RunResult(out_dir=out_dir, config=config, scores=summary, std=std,
                     per_round=scores.per_round, trained=[], resumed=[])
