"""The training core, one job a module.

=====================  ==========================================================================
``config``             :class:`TrainConfig`, its hash, the fold seeds
``folds``              model inputs, a fold's plan (its rows, validation, test), its result
``compiling``          a config's optimizer and losses
``fit_engine``         ``per_fold_fit``: a new model and ``model.fit`` per fold (the reference)
``stacked``            one compiled model with many folds' training state in it
``stacked_fit``        the epochs of a group of folds on it (``compile_once``, ``fold_parallel``)
``engines``            the engines behind one interface, and their fallbacks
``run_folder``         the run-folder format: fold files, resume, stale runs
``workers``            the worker pool
``scoring``            pooled and per-fold scores, read back from the fold files
``plots``              the confusion-matrix figure
``run``                :func:`run_protocol`: every fold of a protocol, resumed, scored
=====================  ==========================================================================

Usage::

    from mer_keras.training import TrainConfig, run_protocol
    run_protocol(TrainConfig(model="fr", ...), "work/cache/megc442", "results/fr_cde")
"""

from mer_keras.training.config import TrainConfig, fold_seed
from mer_keras.training.engines import ENGINES
from mer_keras.training.fit_engine import run_fold
from mer_keras.training.folds import FoldResult, cache_arrays, prepare_model_inputs
from mer_keras.training.plots import plot_confusion_matrices
from mer_keras.training.run import (DEFAULT_ENGINE, FOLDS_PER_PROCESS, SMOKE_FOLDS, RunResult,
                                    run_protocol)
from mer_keras.training.run_folder import FOLD_COLUMNS, fold_path, read_fold, round_dir

__all__ = ["DEFAULT_ENGINE", "ENGINES", "FOLD_COLUMNS", "FOLDS_PER_PROCESS", "SMOKE_FOLDS",
           "FoldResult", "RunResult", "TrainConfig", "cache_arrays", "fold_path", "fold_seed",
           "plot_confusion_matrices", "prepare_model_inputs", "read_fold", "round_dir",
           "run_fold", "run_protocol"]
