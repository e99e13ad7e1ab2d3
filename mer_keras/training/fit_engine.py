"""The per-fold ``fit`` engine: a new model, compiled and fitted with ``model.fit``, for each fold.

This was the project's only engine before the stacked one (:mod:`mer_keras.training.stacked`); it
stays as the reference the stacked engines are tested against, as the fallback for a model whose
state cannot be redrawn per fold, and as ``per_fold_fit`` in the benchmark. It pays building,
tracing and compiling for every fold.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Optional

import keras
import numpy as np

from data_prep.cache import CacheData
from mer_keras.training.compiling import make_losses, make_optimizer
from mer_keras.training.config import TrainConfig
from mer_keras.training.folds import (FoldPlan, FoldResult, plan_fold, prepare_model_inputs,
                                      sample_weights, softmax, training_table)


class EpochLine(keras.callbacks.Callback):
    """Prints one compact line per epoch (through ``tqdm.write`` so a fold bar stays intact)."""

    def __init__(self, prefix: str, epochs: int, write: Callable[[str], None]):
        super().__init__()
        self.prefix, self.epochs, self.write = prefix, epochs, write

    def on_epoch_end(self, epoch, logs=None):
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                         if k.endswith("loss"))
        self.write(f"{self.prefix} epoch {epoch + 1}/{self.epochs} {shown}")


class BestWeights(keras.callbacks.Callback):
    """Keeps, in memory, the weights of the epoch with the lowest ``val_loss``; restores them."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.weights = np.inf, 0, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and value < self.best:
            self.best, self.best_epoch, self.weights = value, epoch + 1, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


class Snapshots(keras.callbacks.Callback):
    """Predicts ``x`` after each epoch in ``epochs`` (1-based): ``predictions[epoch]`` = classes."""

    def __init__(self, epochs, x, batch_size: int):
        super().__init__()
        self.epochs, self.x, self.batch_size = set(epochs), x, batch_size
        self.predictions: dict[int, list[int]] = {}

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            outputs = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
            logits = np.asarray(outputs["logits"] if isinstance(outputs, Mapping) else outputs)
            self.predictions[epoch + 1] = [int(c) for c in logits.argmax(axis=1)]


def fit_fold(config: TrainConfig, data: CacheData, plan: FoldPlan, inputs: np.ndarray,
             table: tuple, *, progress: Optional[Callable[[str], None]] = None) -> FoldResult:
    """Build and compile a fresh model, ``fit`` it on ``plan``'s rows, predict its test samples."""
    started = time.perf_counter()
    keras.utils.set_random_seed(int(plan.seed))
    num_classes = len(data.classes)
    table_x, _ = table
    fit_x, fit_y = table_x[plan.fit_rows], plan.fit_labels

    from mer_keras.models import get_builder
    model = get_builder(config.model)(input_shape=tuple(inputs.shape[1:]),
                                      num_classes=num_classes, **config.model_options)
    model.compile(
        optimizer=make_optimizer(config, -(-len(fit_y) // config.batch_size)),
        loss=make_losses(config),
        loss_weights={name: config.loss_weights.get(name, 1.0) for name in config.losses},
    )

    def targets(labels):
        return {name: labels for name in config.losses}

    callbacks = []
    if progress is not None:
        callbacks.append(EpochLine(f"[{plan.name}]", config.epochs, progress))
    best = BestWeights() if config.validation_use == "checkpoint" else None
    if best is not None:
        callbacks.append(best)
    if config.stop_loss_delta is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="loss", min_delta=config.stop_loss_delta, patience=1, mode="min"))
    snapshots = None
    if config.snapshot_epochs:
        snapshots = Snapshots(config.snapshot_epochs, inputs[plan.test_idx], config.batch_size)
        callbacks.append(snapshots)
    val_idx = plan.val_idx
    history = model.fit(
        fit_x, targets(fit_y),
        sample_weight=sample_weights(config, fit_y, num_classes),
        validation_data=(inputs[val_idx], targets(data.labels[val_idx])) if len(val_idx) else None,
        batch_size=config.batch_size, epochs=config.epochs, shuffle=config.shuffle,
        callbacks=callbacks, verbose=0,
    )
    outputs = model.predict(inputs[plan.test_idx], batch_size=config.batch_size, verbose=0)
    logits = np.asarray(outputs["logits"] if isinstance(outputs, Mapping) else outputs, dtype=float)
    probabilities = softmax(logits)
    return FoldResult(
        test_subject=plan.name,
        test_idx=plan.test_idx,
        y_true=data.labels[plan.test_idx],
        y_pred=probabilities.argmax(axis=1),
        probabilities=probabilities,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        fold_seed=int(plan.seed),
        n_train=int(len(fit_y)),
        n_validation=int(len(val_idx)),
        best_epoch=best.best_epoch if best is not None and best.weights is not None
        else len(history.history.get("loss", [])) or config.epochs,
        seconds=time.perf_counter() - started,
        snapshots=snapshots.predictions if snapshots is not None else {},
        engine="per_fold_fit",
    )


def run_fold(config: TrainConfig, data: CacheData, train_idx, test_idx, fold_seed: int, *,
             inputs: Optional[np.ndarray] = None, augmented: Optional[np.ndarray] = None,
             fold_name: Optional[str] = None, progress: Optional[Callable[[str], None]] = None
             ) -> FoldResult:
    """Train a fresh model on ``train_idx`` for ``config.epochs`` epochs, then predict ``test_idx``.

    Args:
        config: the run's config.
        data: the loaded cache (labels, subjects, databases; its ``config.input_array`` unless
            ``inputs``).
        train_idx, test_idx: the fold's indices (see :func:`mer_keras.training.folds.plan_fold`).
        fold_seed: seeds Python, NumPy and the backend at the start of the fold.
        inputs, augmented: the model inputs of the whole cache and of its augmentations, when
            already prepared (:func:`prepare_model_inputs`).
        fold_name: the fold's name under LOVO (``lovo/01``); LOSO folds are named by their subject.
        progress: where to write one line per epoch, or None for silence.

    The function keeps no state between calls; the caller clears the Keras session between folds.
    """
    if inputs is None:
        inputs, augmented = prepare_model_inputs(config, data)
    if config.augment and augmented is None:
        raise ValueError("config.augment needs the augmented inputs (prepare_model_inputs)")
    plan = plan_fold(config, data, train_idx, test_idx, fold_seed, name=fold_name,
                     augmentations=augmented.shape[1] if config.augment else 0)
    return fit_fold(config, data, plan, inputs, training_table(inputs, augmented, data.labels),
                    progress=progress)
