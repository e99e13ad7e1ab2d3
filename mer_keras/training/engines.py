"""The fold engines behind one interface: ``engine.train(plans) -> [FoldResult]``.

=================  ===============================================================================
``per_fold_fit``   a new model per fold, compiled and trained with ``model.fit``
                   (:mod:`~mer_keras.training.fit_engine`): the reference, and the fallback
``compile_once``   one model and one compiled step per process; each fold starts from weights and
                   an optimizer drawn from its own seed (:mod:`~mer_keras.training.stacked`,
                   width 1)
``fold_parallel``  the same program with ``width`` folds in it: every fold its own weights,
                   samples, batch order, seed and dropout, one call per step for all of them
``transfer``       a paper's own training chain (:mod:`mer_keras.transfer`: macro pre-training
                   once per run, then each fold's stages), for the models that have one
``sklearn``        scikit-learn's logistic regression (model ``logreg``), the calibration floor
                   (:mod:`~mer_keras.training.sklearn_engine`)
=================  ===============================================================================

A model whose state the stacked engines cannot redraw from a seed falls back to ``per_fold_fit``;
a ``fold_parallel`` run whose folds would not fit in memory together falls back to
``compile_once``. Either says so once. The engine is not part of the config hash: it changes the
random streams a fold draws, not what the fold is, and each fold file records the engine that
trained it.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import keras
import numpy as np

from data_prep.cache import CacheData
from mer_keras.training.compiling import optimizer_moments
from mer_keras.training.config import TrainConfig
from mer_keras.training.fit_engine import fit_fold
from mer_keras.training.folds import FoldPlan, FoldResult
from mer_keras.training.stacked import NotStackable, StackedTrainer
from mer_keras.training.stacked_fit import fit_group

ENGINES = ("per_fold_fit", "compile_once", "fold_parallel", "transfer", "sklearn")
#: folds one fold-parallel program trains at once, unless the memory budget allows fewer.
FOLD_PARALLEL_WIDTH = 8
#: bytes the folds of one fold-parallel program may hold (weights, gradients, optimizer slots
#: and an activation allowance per fold, :func:`slot_bytes`).
MEMORY_BUDGET = 4 * 2 ** 30


def slot_bytes(model: keras.Model, config: TrainConfig, input_shape: Sequence[int]) -> int:
    """A rough upper bound of one fold's memory in a stacked program.

    Weights, their gradient and the optimizer's slots (2 for Adam, 1 for SGD with momentum), plus
    an allowance of 64 float32 feature maps the size of the input per sample of a batch.
    """
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    return 4 * (params * (2 + optimizer_moments(config))
                + 64 * config.batch_size * int(np.prod(tuple(input_shape))))


def whole_step_xla() -> bool:
    """Compile the whole step with XLA on a GPU; on CPUs only the optimizer update (oneDNN's
    convolutions beat XLA's there: an FR step was slower under whole-step XLA on 2 cores)."""
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
    return name


class FoldEngine:
    """Trains fold plans of one config on one cache's inputs; keeps its compiled state."""

    name = "engine"

    def train(self, plans: Sequence[FoldPlan], *, progress=None,
              config: Optional[TrainConfig] = None) -> list[FoldResult]:
        """One result per plan. ``config``: settings that replace the engine's for this call
        (an inner cross-validation's epochs, snapshots and probes); the model, losses and
        optimizer stay the engine's."""
        raise NotImplementedError


class PerFoldFit(FoldEngine):
    name = "per_fold_fit"

    def __init__(self, config, data, inputs, table):
        self.config, self.data, self.inputs, self.table = config, data, inputs, table

    def train(self, plans, *, progress=None, config=None):
        results = []
        for plan in plans:  # model.fit runs no probe
            results.append(fit_fold(plan.settings(config or self.config), self.data, plan,
                                    self.inputs, self.table, progress=progress))
            keras.backend.clear_session()
        return results


class Stacked(FoldEngine):
    """``compile_once`` (width 1) or ``fold_parallel`` (width > 1) on one trainer."""

    def __init__(self, config, data, inputs, table, *, width: int, name: str):
        self.config, self.data, self.inputs, self.name = config, data, inputs, name
        self.trainer = StackedTrainer(config, inputs.shape[1:], len(data.classes), width=width,
                                      jit_compile=whole_step_xla())
        self.trainer.set_table(*table)

    def train(self, plans, *, progress=None, config=None):
        results = []
        for start in range(0, len(plans), self.trainer.width):
            results += fit_group(self.trainer, config or self.config, self.data,
                                 plans[start:start + self.trainer.width], self.inputs,
                                 engine=self.name, progress=progress)
        return results


def resolve_engine(name: str, config: TrainConfig, input_shape: Sequence[int], num_classes: int,
                   *, width: Optional[int] = None,
                   say: Callable[[str], None] = lambda message: None) -> tuple[str, int]:
    """The engine and width a run of ``config`` will use: ``name``, or the fallback it needs.

    A probe model (built, never compiled) shows whether every variable can be redrawn from a seed
    and how many folds fit in :data:`MEMORY_BUDGET`. A fallback is said once, through ``say``.

    Args:
        name: one of :data:`ENGINES`.
        config: the run's config.
        input_shape, num_classes: the model's input shape and classes.
        width: folds per fold-parallel program (default :data:`FOLD_PARALLEL_WIDTH`).
        say: where a fallback message goes.

    Returns:
        ``(engine, width)``; width 1 for ``per_fold_fit`` and ``compile_once``.
    """
    from mer_keras.models import get_builder
    from mer_keras.training.stacked import initial_values

    check_engine(name)
    from mer_keras.training.sklearn_engine import SKLEARN_MODELS
    from mer_keras.transfer import CHAINS
    if (name == "sklearn") != (config.model in SKLEARN_MODELS):
        raise ValueError(f"model {config.model!r} " + (
            "is scikit-learn's: use engine 'sklearn'" if config.model in SKLEARN_MODELS
            else f"is not a scikit-learn model (those are {', '.join(SKLEARN_MODELS)})"))
    if name == "sklearn":
        return name, 1
    if (name == "transfer") != (config.model in CHAINS):
        raise ValueError(f"model {config.model!r} " + (
            "trains through its transfer chain: use engine 'transfer'" if config.model in CHAINS
            else f"has no transfer chain (those are {', '.join(CHAINS)})"))
    if name in ("per_fold_fit", "transfer"):
        return name, 1
    probe = get_builder(config.model)(input_shape=tuple(input_shape), num_classes=num_classes,
                                      **config.model_options)
    try:
        try:
            initial_values(probe, 0)
        except NotStackable as reason:
            say(f"engine {name}: {reason}; training each fold with its own model (per_fold_fit)")
            return "per_fold_fit", 1
        width = 1 if name == "compile_once" else int(width or FOLD_PARALLEL_WIDTH)
        fits = max(1, int(MEMORY_BUDGET // slot_bytes(probe, config, input_shape)))
        if name == "fold_parallel" and fits == 1:
            say(f"engine fold_parallel: one fold of {config.model} may need "
                f"{MEMORY_BUDGET / 2 ** 30:.0f} GiB or more (weights, optimizer and activations); "
                "training one fold at a time on one compiled model (compile_once)")
            return "compile_once", 1
        return name, min(width, fits)
    finally:
        del probe
        keras.backend.clear_session()


def make_engine(name: str, config: TrainConfig, data: CacheData, inputs: np.ndarray,
                table: tuple, *, width: int = 1, sources=None, work_dir=None,
                say: Callable[[str], None] = lambda message: None) -> FoldEngine:
    """The engine ``name`` (as :func:`resolve_engine` resolved it) on this cache's inputs.

    ``sources`` (:class:`mer_keras.transfer.TransferSources`), ``work_dir`` (the run folder, for
    cached pre-training) and ``say`` (progress lines) are the ``transfer`` engine's."""
    check_engine(name)
    if name == "sklearn":
        from mer_keras.training.sklearn_engine import LogisticRegressionEngine
        return LogisticRegressionEngine(config, data, inputs, table)
    if name == "transfer":
        from mer_keras.transfer import TransferSources
        from mer_keras.transfer.engine import TransferEngine
        return TransferEngine(config, data, inputs, sources=sources or TransferSources(),
                              work_dir=work_dir, say=say)
    if name == "per_fold_fit":
        return PerFoldFit(config, data, inputs, table)
    return Stacked(config, data, inputs, table, width=1 if name == "compile_once" else width,
                   name=name)
