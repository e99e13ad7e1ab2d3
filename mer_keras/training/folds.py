"""What a fold trains on and what it produces: model inputs, the fold's plan, its result.

A :class:`FoldPlan` is everything a fold engine needs and nothing it may not see: the rows of the
training table it fits on (the training videos and, with ``config.augment``, their augmented
versions), their labels and sample weights, its validation samples (training subjects only) and
its test samples, which an engine reads only to predict them after training.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from data_prep.cache import CacheData
from mer_keras.inputs import prepare_inputs
from mer_keras.protocols import ValidationSubjects
from mer_keras.training.config import TrainConfig


@dataclasses.dataclass
class FoldResult:
    """What one fold produced.

    Attributes:
        test_subject: the held-out subject (or the LOVO fold's name).
        test_idx: indices (into the cache) of its samples.
        y_true, y_pred: class indices; ``y_pred`` is the argmax of ``"logits"``.
        probabilities: softmax of ``"logits"``, len(test_idx) x K.
        history: per-epoch losses (``loss``, ``<output>_loss``, ``val_loss`` where configured).
        fold_seed: the seed the fold ran with.
        n_train, n_validation: samples used for fitting and for validation.
        best_epoch: the epoch whose weights predicted (1-based; the last one unless checkpointing).
        seconds: wall time of the fold (a fold-parallel group's time divided among its folds).
        snapshots: epoch -> predicted classes of the test samples after that epoch
            (``config.snapshot_epochs``).
        engine: the fold engine that trained it (``per_fold_fit``, ``compile_once``,
            ``fold_parallel``).
        probes: probe name -> its value on the fold's training samples at epoch 0 (before
            training), 1, ... (:mod:`~mer_keras.training.probes`; stacked engines only).
        selection: the fold's inner-cross-validation record (``config.selection``,
            :mod:`~mer_keras.training.selection`), or empty.
    """

    test_subject: str
    test_idx: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray
    history: dict
    fold_seed: int
    n_train: int
    n_validation: int
    best_epoch: int
    seconds: float
    snapshots: dict = dataclasses.field(default_factory=dict)
    engine: str = "per_fold_fit"
    probes: dict = dataclasses.field(default_factory=dict)
    selection: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FoldPlan:
    """One fold, checked and split, ready for an engine.

    Attributes:
        name: the test subject (LOSO) or the fold's name (LOVO).
        seed: the fold's seed (weights, batch order, dropout).
        train_idx, test_idx: the protocol's indices into the cache.
        fit_rows: rows of the training table (:func:`training_table`) the fold fits on.
        fit_labels: their labels.
        val_idx: validation samples (cache indices; training subjects only, maybe empty).
        learning_rate, epochs: this fold's own, where they differ from the config's (an inner
            cross-validation's grid point, or its choice); None: the config's.
    """

    name: str
    seed: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    fit_rows: np.ndarray
    fit_labels: np.ndarray
    val_idx: np.ndarray
    learning_rate: Optional[float] = None
    epochs: Optional[int] = None

    def settings(self, config: TrainConfig) -> TrainConfig:
        """``config`` with this fold's own learning rate and epochs."""
        changes = {k: v for k, v in (("learning_rate", self.learning_rate),
                                     ("epochs", self.epochs)) if v is not None}
        return config.replace(**changes) if changes else config


def prepare_model_inputs(config: TrainConfig, data: CacheData):
    """The model inputs of the whole cache, and of its training augmentations.

    Returns:
        ``(inputs, augmented)``: N x ... float32, and N x K x ... float32 (``config.augment``) or
        None.
    """
    from mer_keras.inputs import appearance_inputs, appearance_mask

    name = config.input_array
    if name == "frames":  # face images: N x K x H x W x 3 in [0, 1], for the transfer chains
        from mer_keras.transfer.images import face_inputs
        return face_inputs(data.arrays[name], config.input_size), None
    if name == "appearance":
        mask = appearance_mask(data.arrays[name], config.mask_fraction)
        inputs = appearance_inputs(data.arrays[name], mask)
        augmented = appearance_inputs(data.arrays[f"{name}_aug"], mask) if config.augment \
            else None
        return inputs, augmented

    def prepare(flow):
        return prepare_inputs(flow, channels=config.input_channels,
                              normalization=config.normalization, size=config.input_size)

    inputs = prepare(data.arrays[name])
    augmented = None
    if config.augment:
        aug = np.asarray(data.arrays[f"{name}_aug"])
        flat = prepare(aug.reshape((-1,) + aug.shape[2:])) if aug.shape[1] else \
            np.zeros((0,) + inputs.shape[1:], np.float32)
        augmented = flat.reshape(aug.shape[:2] + flat.shape[1:])
    return inputs, augmented


def cache_arrays(config: TrainConfig) -> tuple[str, ...]:
    """The cache arrays a run of ``config`` loads (MTMNet's onset frames with ``neutral="onset"``)."""
    if config.input_array == "frames" and config.transfer.get("neutral") == "onset":
        return ("frames", "neutral")
    return (config.input_array,) + ((f"{config.input_array}_aug",) if config.augment else ())


def training_table(inputs: np.ndarray, augmented: Optional[np.ndarray], labels: np.ndarray):
    """Every sample a fold may fit on: the N videos, then their K augmentations each.

    Row ``i`` is video ``i``; with augmentations, row ``N + i * K + j`` is its ``j``-th one.
    """
    if augmented is None:
        return inputs, labels
    n, k = augmented.shape[:2]
    x = np.concatenate([inputs, augmented.reshape((n * k,) + augmented.shape[2:])])
    return x, np.concatenate([labels, np.repeat(labels, k)])


def plan_fold(config: TrainConfig, data: CacheData, train_idx, test_idx, seed: int, *,
              name: Optional[str] = None, augmentations: int = 0) -> FoldPlan:
    """Check one fold's indices and split off its validation subjects.

    Args:
        config: the run's config.
        data: the cache (labels, subjects, databases).
        train_idx, test_idx: the fold's indices; under LOSO ``test_idx`` must hold one subject
            only, never in ``train_idx``; under LOVO the two must not share a video.
        seed: the fold's seed (also that of its validation split).
        name: the fold's name under LOVO (``lovo/01``) or LODO (the test database); LOSO folds
            are named by their subject.
        augmentations: K, the augmented versions per video in the training table.
    """
    train_idx = np.asarray(train_idx, dtype=np.int64)
    test_idx = np.asarray(test_idx, dtype=np.int64)
    if config.splitter == "loso":
        test_subjects = sorted(set(data.subjects[test_idx].tolist()))
        if len(test_subjects) != 1:
            raise ValueError(f"a fold tests one subject; test_idx holds {test_subjects}")
        fold_name = test_subjects[0]
        if fold_name in set(data.subjects[train_idx].tolist()):
            raise ValueError(f"test subject {fold_name!r} is also in the training indices")
    elif config.splitter == "lodo":
        fold_name = name or "lodo"
        shared = set(data.databases[train_idx].tolist()) & set(data.databases[test_idx].tolist())
        if shared:
            raise ValueError(f"fold {fold_name}: database(s) {sorted(shared)} both trained and "
                             "tested")
    else:
        fold_name = name or "lovo"
        shared = set(train_idx.tolist()) & set(test_idx.tolist())
        if shared:
            raise ValueError(f"fold {fold_name}: {len(shared)} video(s) both trained and tested")
    fit_idx, val_idx = train_idx, np.array([], dtype=np.int64)
    if config.validation is not None:
        mode = "same-database" if config.validation == "same-database" else "fraction"
        size = None if mode == "same-database" else float(config.validation)
        fit_idx, val_idx = ValidationSubjects(mode, size, seed=seed).split(
            train_idx, data.subjects, fold_name, data.databases)
    rows, labels = fit_rows_of(config, data, fit_idx, augmentations)
    return FoldPlan(name=fold_name, seed=int(seed), train_idx=train_idx, test_idx=test_idx,
                    fit_rows=rows, fit_labels=np.asarray(labels), val_idx=np.asarray(val_idx,
                                                                                     np.int64))


def fit_rows_of(config: TrainConfig, data: CacheData, fit_idx, augmentations: int = 0):
    """``(rows of the training table, their labels)`` of the videos ``fit_idx``: with
    ``config.augment``, the plain version and every augmented one of each."""
    fit_idx = np.asarray(fit_idx, dtype=np.int64)
    if not config.augment:
        return fit_idx, data.labels[fit_idx]
    extra = len(data) + fit_idx[:, None] * augmentations + np.arange(augmentations)[None, :]
    rows = np.concatenate([fit_idx, extra.reshape(-1)])
    labels = np.concatenate([data.labels[fit_idx], np.repeat(data.labels[fit_idx],
                                                              augmentations)])
    return rows, labels


def sample_weights(config: TrainConfig, labels: np.ndarray, num_classes: int):
    """Per-sample weights of ``config.class_weight`` over a fold's fit labels, or None."""
    if config.class_weight is None:
        return None
    if config.class_weight == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(float)
        weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes),
                            where=counts > 0)
    else:
        weights = np.array([config.class_weight.get(k, 1.0) for k in range(num_classes)])
    return weights[labels].astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
