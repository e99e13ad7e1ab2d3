"""The worker pool: folds train in a ``spawn`` worker process that a run replaces when it must.

With the TensorFlow backend, ``model.fit`` leaks memory that ``keras.backend.clear_session()`` and
the garbage collector do not return (keras-team/keras#17458, tensorflow/tensorflow#61791; about
190 MB per FR fold), so the ``per_fold_fit`` engine's worker is replaced every
``folds_per_process`` folds. The stacked engines build one model per process and leak nothing per
fold, so one worker trains all their folds and compiles once. A worker keeps the cache, the model
inputs and the engine it last used, and ends with its parent: a killed run leaves no orphan
training on.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import signal
import sys

from data_prep.cache import load_cache
from mer_keras.training.config import TrainConfig
from mer_keras.training.engines import make_engine
from mer_keras.training.folds import (FoldResult, cache_arrays, plan_fold, prepare_model_inputs,
                                      training_table)

#: per worker process: the cache, inputs and engine it last used (one entry, so a process never
#: holds two caches).
_WORKER_CACHE: dict = {}


def _worker_init(engine: str = "") -> None:
    """Ctrl-C is the parent's to handle: it stops the worker (see ``stop_pool``). On Linux the
    worker also ends with its parent, so a killed run leaves no orphan training on. A
    fold-parallel worker on CPUs runs its folds' independent subgraphs side by side, one op per
    core, rather than splitting each small op over the cores (faster for FR's many small ops on 2
    cores; ``benchmarks/bench_training.py`` measures the engine with it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if engine == "fold_parallel":
        configure_fold_parallel_threads()
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def configure_fold_parallel_threads() -> None:
    """One thread per op, as many ops at once as there are cores (CPU only; before any op ran)."""
    import os

    import tensorflow as tf
    try:
        if not tf.config.list_physical_devices("GPU"):
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(os.cpu_count() or 1)
    except RuntimeError:  # the runtime already started: keep its threads
        pass


def write_stderr(message: str) -> None:
    # on a terminal, first erase the parent's fold bar from the line (it is redrawn as folds end)
    sys.stderr.write(("\r\x1b[K" if sys.stderr.isatty() else "") + message + "\n")
    sys.stderr.flush()


class FoldSession:
    """A cache's data, model inputs, training table and engine, loaded and built once."""

    def __init__(self, config: TrainConfig, data, engine: str, width: int = 1, *, sources=None,
                 work_dir=None, say=lambda message: None):
        self.config, self.data, self.work_dir = config, data, work_dir
        self.inputs, self.augmented = prepare_model_inputs(config, data)
        if config.augment and self.augmented is None:
            raise ValueError("config.augment needs the augmented inputs")
        self.table = training_table(self.inputs, self.augmented, data.labels)
        self.engine = make_engine(engine, config, data, self.inputs, self.table, width=width,
                                  sources=sources, work_dir=work_dir, say=say)

    def plan(self, job):
        _, name, train_idx, test_idx, seed = job
        return plan_fold(self.config, self.data, train_idx, test_idx, seed, name=name,
                         augmentations=self.augmentations)

    @property
    def augmentations(self) -> int:
        """K, the augmented versions of each video in the training table (0 without)."""
        return self.augmented.shape[1] if self.config.augment else 0

    def train(self, jobs, progress=None) -> list[FoldResult]:
        plans = [self.plan(job) for job in jobs]
        if not self.config.selection:
            return self.engine.train(plans, progress=progress)
        return self._train_selected(jobs, plans, progress)

    def _train_selected(self, jobs, plans, progress) -> list[FoldResult]:
        """Inner cross-validation on each fold's training subjects, then the chosen settings.

        A fold's choice is saved (``<run>/selection/``) before its final training, so a killed
        run keeps the inner trainings of every fold whose choice was made."""
        from mer_keras.training import selection

        saved = [selection.read_choice(self.work_dir, job[0], plan.name, self.config,
                                       self.data.fingerprint) for job, plan in zip(jobs, plans)]
        missing = [i for i, record in enumerate(saved) if record is None]
        if missing:
            made = selection.choose(
                lambda inner, config: self.engine.train(inner, progress=progress, config=config),
                self.config, self.data, [plans[i] for i in missing],
                augmentations=self.augmentations, say=progress)
            for i, record in zip(missing, made):
                saved[i] = record
                selection.write_choice(self.work_dir, jobs[i][0], plans[i].name, self.config,
                                       self.data.fingerprint, record)
        results = self.engine.train(selection.final_plans(plans, saved), progress=progress)
        for result, record in zip(results, saved):
            result.selection = record
            result.seconds += record["inner_seconds"]  # the fold's time includes its selection
        return results


def _worker_session(config, cache_dir, fingerprint, engine, width, extras) -> FoldSession:
    key = (config.config_hash(), cache_dir, fingerprint, engine, width, repr(extras))
    if _WORKER_CACHE.get("key") != key:
        _WORKER_CACHE.clear()
        data = load_cache(cache_dir, arrays=cache_arrays(config))
        sources = extras.get("sources")
        found = sources.fingerprint(data.fingerprint) if sources else data.fingerprint
        if found != fingerprint:
            raise RuntimeError(f"{cache_dir}: the cache changed during the run (fingerprint "
                               f"{found[:12]}, expected {fingerprint[:12]})")
        _WORKER_CACHE.update(key=key, session=FoldSession(
            config, data, engine, width, sources=sources, work_dir=extras.get("work_dir"),
            say=write_stderr if extras.get("progress") else (lambda message: None)))
    return _WORKER_CACHE["session"]


def _train_jobs_in_worker(config, cache_dir, fingerprint, engine, width, jobs, progress,
                          extras=None):
    session = _worker_session(config, cache_dir, fingerprint, engine, width,
                              dict(extras or {}, progress=progress))
    return session.train(jobs, progress=write_stderr if progress else None)


def start_pool(engine: str = "") -> concurrent.futures.ProcessPoolExecutor:
    # "spawn": a fork of a process that has imported TensorFlow may deadlock
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
        initargs=(engine,))


def stop_pool(pool: concurrent.futures.ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut ``pool`` down; ``kill``: end its worker now, mid-fold (after an error or Ctrl-C)."""
    if kill:
        # the executor has no public way to stop a running task; its worker table is private
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _broken(error, what: str):
    return RuntimeError(
        f"the worker process training {what} ended abruptly: killed (out of memory?), or it "
        "could not start (a script that calls run_protocol needs an `if __name__ == "
        "\"__main__\":` guard, since the worker re-imports it); its own message, if any, is on "
        "stderr above")


def train_in_worker(groups, config: TrainConfig, cache_dir: str, fingerprint: str, *,
                    engine: str, width, progress: bool, show, finish, extras=None) -> None:
    """Train ``groups`` (lists of (round, name, train_idx, test_idx, seed)) in one fresh worker;
    ``finish(round, name, result)`` as each fold ends, group by group. ``extras``: the transfer
    engine's ``sources`` and ``work_dir``."""
    pool, failed = start_pool(engine), True
    try:
        futures = [pool.submit(_train_jobs_in_worker, config, cache_dir, fingerprint, engine,
                               width, group, progress, extras) for group in groups]
        for group, future in zip(groups, futures):
            show(group[0][0], group[0][1])
            try:
                results = future.result()
            except concurrent.futures.process.BrokenProcessPool as error:
                raise _broken(error, f"round {group[0][0]} fold {group[0][1]}") from error
            for (round_index, name, *_), result in zip(group, results):
                finish(round_index, name, result)
        failed = False
    finally:
        stop_pool(pool, kill=failed)
