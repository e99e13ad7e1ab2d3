"""Training core: one fold, every LOSO fold of a cache, resume, seeds and the run folder.

A run folder (``out_dir``) holds::

    run.json                 resolved config and its hash, seeds, versions, cache fingerprint,
                             timings
    folds/<subject>.csv      one finished fold (round 0): sample, subject, database, y_true, y_pred,
                             prob_<class>..., fold_seed, config_hash, cache_fingerprint
    folds/<subject>.json     that fold's training history and timing
    round_<r>/folds/...      the same for round r >= 1 (``config.rounds`` > 1)
    predictions.csv          every fold of every round, pooled
    metrics_per_fold.csv     uf1/uar/acc of each fold (for the per-fold mean; not the MEGC figure)
    metrics_per_round.csv    pooled scores of each round (all and per database)
    metrics_by_epoch.csv     with ``config.snapshot_epochs``: the pooled scores of the predictions
                             each fold also made after those epochs (fixed before training, never
                             chosen on a test subject): an epoch study from one run
    metrics.csv              the run's scores: mean and std over rounds of the pooled scores
                             (all and per database), and the per-fold means, labelled
                             ``per_fold_mean_*``
    confusion_matrix.png     pooled confusion matrices (all databases, then each)

Each fold file is written atomically as soon as the fold ends, so a killed run loses no finished
fold; rerunning skips every fold whose file records the same config hash and cache fingerprint.
A run folder whose folds were made by another config or cache is moved aside (``stale/``) with a
message, and the run starts over.

Folds are trained in a worker process that is replaced every ``folds_per_process`` folds: with the
TensorFlow backend, ``model.fit`` leaks memory that ``keras.backend.clear_session()`` and the
garbage collector do not return (keras-team/keras#17458, tensorflow/tensorflow#61791; about 190 MB
per fold for the FR model), so a 68-fold run in one process grows to ~14 GB. Ending the process is
the only reliable way to hand that memory back. ``folds_per_process=0`` trains in the calling
process, as before.

No fold ever looks at its test subject before predicting it: training runs a fixed number of epochs;
a validation set, when configured, is made of training subjects only, and is used only as
``config.validation_use`` says (``"monitor"``: logged; ``"checkpoint"``: keep the weights of the
epoch with the lowest validation loss).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import hashlib
import json
import multiprocessing
import platform
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import keras
import numpy as np

import mer_keras
from data_prep.cache import CacheData, atomic_write_csv, atomic_write_text, load_cache
from mer_keras import metrics as mt
from mer_keras.inputs import CHANNELS, NORMALIZATIONS, prepare_inputs
from mer_keras.protocols import CompositeLOSO, LeaveVideosOut, ValidationSubjects

OPTIMIZERS = ("sgd", "adam")
VALIDATION_USES = ("monitor", "checkpoint")
PROTOCOLS = ("loso", "lovo")
#: cache arrays a model can read: the onset->apex flow (u, v, strain) of the flow stage, and the
#: STRCN stage's ``geometry`` flow (u, v) and magnified ``appearance`` frames.
INPUT_ARRAYS = ("flow", "geometry", "appearance")
#: config fields that do not change a fold's result, so they stay out of the config hash.
_UNHASHED = ("experiment", "rounds")
#: fields added after the first committed runs: hashed only when they differ from their default,
#: so those runs keep their hash (and resume) while a config that uses them hashes differently.
_HASHED_WHEN_SET = ("snapshot_epochs", "input_array", "augment", "mask_fraction", "protocol",
                    "lovo_folds", "weight_decay", "lr_decay_per_epoch", "stop_loss_delta")
_RESULT_FILES = ("predictions.csv", "metrics_per_fold.csv", "metrics_per_round.csv", "metrics.csv",
                 "metrics_by_epoch.csv", "run.json", "confusion_matrix.png")
SMOKE_FOLDS = 3
#: folds a worker process trains before a fresh one replaces it (see :func:`run_protocol`): bounds
#: the leak of ``model.fit`` (~0.2 GB per FR fold) to ~3.5 GB while a new process (TensorFlow
#: import, ~6 s) is paid only 5 times over the 68 CDE folds.
FOLDS_PER_PROCESS = 16


# --------------------------------------------------------------------------------------------------
# Config

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result, serialisable to JSON.

    Attributes:
        experiment: the run's name (for the report; not hashed).
        model: registry name of the builder (``mer_keras.models.get_builder``).
        model_options: keyword arguments of the builder besides ``input_shape``/``num_classes``.
        input_channels: cache flow channels fed to the model, by name (``u``, ``v``, ``strain``).
        normalization: ``"none"`` or ``"minmax"`` (per sample, per channel).
        input_size: ``(H, W)`` the model wants, or None for the cache's size.
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate, momentum: optimizer settings (momentum: SGD only).
        batch_size, epochs: fixed (``epochs`` is a cap under ``stop_loss_delta``).
        losses: model output name -> loss name (``mer_keras.losses.get_loss``); every loss gets the
            sparse integer labels.
        loss_weights: output name -> weight (1.0 where absent).
        loss_kwargs: output name -> keyword arguments of its loss.
        validation: None; ``"same-database"`` (the other subjects of the test subject's database);
            or a fraction in (0, 1) of the training subjects. Never the test subject.
        validation_use: ``"monitor"`` (only logged) or ``"checkpoint"`` (restore the weights of the
            epoch with the lowest validation loss).
        class_weight: None, ``"balanced"`` (inverse class frequency of the training part), or a
            mapping class index -> weight; applied as sample weights to every loss.
        seed: base seed; each fold's seed is derived from it, the round and the test subject.
        rounds: repetitions of the whole LOSO with different seeds (not hashed: adding rounds keeps
            the finished ones).
        shuffle: shuffle training batches each epoch.
        snapshot_epochs: epochs (< ``epochs``) after which every fold also predicts its test
            subject, for an epoch study from one run (``metrics_by_epoch.csv``); the fold's result
            is always the last epoch's.
        input_array: the cache array the model reads (:data:`INPUT_ARRAYS`); ``input_channels``
            picks channels of ``flow`` / ``geometry`` and is unused for ``appearance``.
        augment: also train on the cache's ``<input_array>_aug`` versions of every training
            sample (STRCN's magnification / frame-dropping augmentation); tests use the plain one.
        mask_fraction: ``appearance``: the share of pixels the selected-pixel mask keeps (0.3),
            computed over every video of the cache (``mer_keras.inputs.appearance_mask``).
        protocol: ``"loso"`` (one subject per fold) or ``"lovo"`` (``lovo_folds`` stratified folds
            of videos, ``mer_keras.protocols.LeaveVideosOut``).
        lovo_folds: folds of ``"lovo"`` (20: 5 % of the videos each).
        weight_decay: L2 weight decay of the optimizer (Keras' decoupled form).
        lr_decay_per_epoch: the learning rate is multiplied by this after every epoch (1: fixed).
        stop_loss_delta: stop a fold once an epoch lowers the TRAINING loss by less than this
            (STRCN's "10^-3", Sec IV-A); None trains all ``epochs``. Reads no held-out data.
    """

    experiment: str = "experiment"
    model: str = "linear"
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    input_channels: tuple = ("u", "v", "strain")
    normalization: str = "none"
    input_size: Optional[tuple] = None
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    losses: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"logits": "sparse_categorical_crossentropy"})
    loss_weights: Mapping[str, float] = dataclasses.field(default_factory=dict)
    loss_kwargs: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    validation: Union[None, str, float] = None
    validation_use: str = "monitor"
    class_weight: Union[None, str, Mapping[int, float]] = None
    seed: int = 0
    rounds: int = 1
    shuffle: bool = True
    snapshot_epochs: tuple = ()
    input_array: str = "flow"
    augment: bool = False
    mask_fraction: float = 0.3
    protocol: str = "loso"
    lovo_folds: int = 20
    weight_decay: float = 0.0
    lr_decay_per_epoch: float = 1.0
    stop_loss_delta: Optional[float] = None

    def __post_init__(self):
        fix = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        fix("input_channels", tuple(self.input_channels))
        fix("snapshot_epochs", tuple(sorted(int(e) for e in self.snapshot_epochs)))
        if self.input_size is not None:
            fix("input_size", tuple(int(s) for s in self.input_size))
        fix("model_options", dict(self.model_options))
        fix("losses", dict(self.losses))
        # 1.0 is the weight of an absent entry: dropping it keeps equal configs equal (and hashed so)
        fix("loss_weights", {k: float(v) for k, v in self.loss_weights.items() if float(v) != 1.0})
        fix("loss_kwargs", {k: dict(v) for k, v in self.loss_kwargs.items()})
        if isinstance(self.class_weight, Mapping):
            fix("class_weight", {int(k): float(v) for k, v in self.class_weight.items()})
        problems = []
        if self.input_array not in INPUT_ARRAYS:
            problems.append(f"input_array {self.input_array!r} not in {INPUT_ARRAYS}")
        if self.input_array != "appearance" and (
                [c for c in self.input_channels if c not in CHANNELS] or not self.input_channels):
            problems.append(f"input_channels {self.input_channels} must be among {list(CHANNELS)}")
        if self.normalization not in NORMALIZATIONS:
            problems.append(f"normalization {self.normalization!r} not in {NORMALIZATIONS}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} not in {OPTIMIZERS}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol {self.protocol!r} not in {PROTOCOLS}")
        if self.lovo_folds < 2:
            problems.append(f"lovo_folds must be >= 2, got {self.lovo_folds}")
        if not 0 < self.mask_fraction <= 1:
            problems.append(f"mask_fraction must be in (0, 1], got {self.mask_fraction}")
        if self.weight_decay < 0 or not 0 < self.lr_decay_per_epoch <= 1:
            problems.append("weight_decay must be >= 0 and lr_decay_per_epoch in (0, 1]")
        if self.stop_loss_delta is not None and (self.stop_loss_delta <= 0
                                                 or self.snapshot_epochs):
            problems.append("stop_loss_delta must be > 0 and cannot go with snapshot_epochs")
        if self.epochs < 1 or self.batch_size < 1 or self.rounds < 1:
            problems.append("epochs, batch_size and rounds must be >= 1")
        if [e for e in self.snapshot_epochs if not 1 <= e < self.epochs]:
            problems.append(f"snapshot_epochs {list(self.snapshot_epochs)} must be within 1.."
                            f"{self.epochs - 1} (the last epoch is always evaluated)")
        if not self.losses:
            problems.append("losses must name at least the 'logits' output")
        if not (self.validation is None or self.validation == "same-database"
                or (isinstance(self.validation, float) and 0 < self.validation < 1)):
            problems.append(f"validation {self.validation!r} must be None, 'same-database' or a "
                            "fraction in (0, 1)")
        if self.validation_use not in VALIDATION_USES:
            problems.append(f"validation_use {self.validation_use!r} not in {VALIDATION_USES}")
        if self.validation_use == "checkpoint" and self.validation is None:
            problems.append("validation_use='checkpoint' needs a validation set")
        if not (self.class_weight is None or self.class_weight == "balanced"
                or isinstance(self.class_weight, Mapping)):
            problems.append(f"class_weight {self.class_weight!r} must be None, 'balanced' or a map")
        for name in list(self.loss_weights) + list(self.loss_kwargs):
            if name not in self.losses:
                problems.append(f"{name!r} has a loss weight or kwargs but no loss")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        record = dataclasses.asdict(self)
        for key in ("input_channels", "input_size", "snapshot_epochs"):
            if record[key] is not None:
                record[key] = list(record[key])
        if isinstance(record["class_weight"], Mapping):
            record["class_weight"] = {str(k): v for k, v in record["class_weight"].items()}
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, record: Mapping) -> "TrainConfig":
        unknown = sorted(set(record) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}")
        return cls(**record)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    def config_hash(self) -> str:
        """SHA-256 of every field that can change a fold's result (not experiment, rounds)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)
                    if f.name in _HASHED_WHEN_SET}
        defaults["snapshot_epochs"] = []
        record = {k: v for k, v in self.to_dict().items()
                  if k not in _UNHASHED and not (k in defaults and v == defaults[k])}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def fold_seed(seed: int, round_index: int, subject: str) -> int:
    """The seed of one fold, derived from the base seed, the round and the test subject."""
    digest = hashlib.sha256(f"{seed}:{round_index}:{subject}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") % (2 ** 31 - 1)


# --------------------------------------------------------------------------------------------------
# One fold

@dataclasses.dataclass
class FoldResult:
    """What one fold produced.

    Attributes:
        test_subject: the held-out subject.
        test_idx: indices (into the cache) of its samples.
        y_true, y_pred: class indices; ``y_pred`` is the argmax of ``"logits"``.
        probabilities: softmax of ``"logits"``, len(test_idx) x K.
        history: Keras history (per-epoch losses, and validation losses where configured).
        fold_seed: the seed the fold ran with.
        n_train, n_validation: samples used for fitting and for validation.
        best_epoch: the epoch whose weights predicted (1-based; the last one unless checkpointing).
        seconds: wall time of the fold.
        snapshots: epoch -> predicted classes of the test samples after that epoch
            (``config.snapshot_epochs``).
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


def _get_loss(name: str, **kwargs):
    from mer_keras.losses import get_loss
    return get_loss(name, **kwargs)


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    rate = config.learning_rate
    if config.lr_decay_per_epoch != 1.0:
        rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=max(1, steps_per_epoch),
            decay_rate=config.lr_decay_per_epoch, staircase=True)
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum,
                                    weight_decay=decay)
    return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)


def prepare_model_inputs(config: TrainConfig, data: CacheData):
    """The model inputs of the whole cache, and of its training augmentations.

    Returns:
        ``(inputs, augmented)``: N x ... float32, and N x K x ... float32 (``config.augment``) or
        None.
    """
    from mer_keras.inputs import appearance_inputs, appearance_mask

    name = config.input_array
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
    """The cache arrays a run of ``config`` loads."""
    return (config.input_array,) + ((f"{config.input_array}_aug",) if config.augment else ())


def _sample_weights(config: TrainConfig, labels: np.ndarray, num_classes: int):
    if config.class_weight is None:
        return None
    if config.class_weight == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(float)
        weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes),
                            where=counts > 0)
    else:
        weights = np.array([config.class_weight.get(k, 1.0) for k in range(num_classes)])
    return weights[labels].astype(np.float32)


class _EpochLine(keras.callbacks.Callback):
    """Prints one compact line per epoch (through ``tqdm.write`` so a fold bar stays intact)."""

    def __init__(self, prefix: str, epochs: int, write: Callable[[str], None]):
        super().__init__()
        self.prefix, self.epochs, self.write = prefix, epochs, write

    def on_epoch_end(self, epoch, logs=None):
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                         if k.endswith("loss"))
        self.write(f"{self.prefix} epoch {epoch + 1}/{self.epochs} {shown}")


class _BestWeights(keras.callbacks.Callback):
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


class _Snapshots(keras.callbacks.Callback):
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


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def run_fold(config: TrainConfig, data: CacheData, train_idx, test_idx, fold_seed: int, *,
             inputs: Optional[np.ndarray] = None, augmented: Optional[np.ndarray] = None,
             fold_name: Optional[str] = None, progress: Optional[Callable[[str], None]] = None
             ) -> FoldResult:
    """Train a fresh model on ``train_idx`` for ``config.epochs`` epochs, then predict ``test_idx``.

    Args:
        config: the run's config.
        data: the loaded cache (labels, subjects, databases; its ``config.input_array`` unless
            ``inputs``).
        train_idx, test_idx: the fold's indices; under LOSO ``test_idx`` must hold one subject
            only, under LOVO the two must not share a video.
        fold_seed: seeds Python, NumPy and the backend at the start of the fold.
        inputs, augmented: the model inputs of the whole cache and of its augmentations, when
            already prepared (:func:`prepare_model_inputs`).
        fold_name: the fold's name under LOVO (``lovo/01``); LOSO folds are named by their subject.
        progress: where to write one line per epoch, or None for silence.

    The function keeps no state between calls; the caller clears the Keras session between folds.
    """
    started = time.perf_counter()
    keras.utils.set_random_seed(int(fold_seed))
    train_idx = np.asarray(train_idx, dtype=np.int64)
    test_idx = np.asarray(test_idx, dtype=np.int64)
    if config.protocol == "loso":
        test_subjects = sorted(set(data.subjects[test_idx].tolist()))
        if len(test_subjects) != 1:
            raise ValueError(f"a fold tests one subject; test_idx holds {test_subjects}")
        test_subject = test_subjects[0]
        if test_subject in set(data.subjects[train_idx].tolist()):
            raise ValueError(f"test subject {test_subject!r} is also in the training indices")
    else:
        test_subject = fold_name or "lovo"
        shared = set(train_idx.tolist()) & set(test_idx.tolist())
        if shared:
            raise ValueError(f"fold {test_subject}: {len(shared)} video(s) both trained and tested")
    if inputs is None:
        inputs, augmented = prepare_model_inputs(config, data)
    if config.augment and augmented is None:
        raise ValueError("config.augment needs the augmented inputs (prepare_model_inputs)")
    num_classes = len(data.classes)

    fit_idx, val_idx = train_idx, np.array([], dtype=np.int64)
    if config.validation is not None:
        mode = "same-database" if config.validation == "same-database" else "fraction"
        size = None if mode == "same-database" else float(config.validation)
        fit_idx, val_idx = ValidationSubjects(mode, size, seed=fold_seed).split(
            train_idx, data.subjects, test_subject, data.databases)

    fit_x, fit_y = inputs[fit_idx], data.labels[fit_idx]
    if config.augment:  # the plain version and every augmented one of each training video
        extra = augmented[fit_idx]
        fit_x = np.concatenate([fit_x, extra.reshape((-1,) + extra.shape[2:])])
        fit_y = np.concatenate([fit_y, np.repeat(fit_y, extra.shape[1])])

    from mer_keras.models import get_builder
    model = get_builder(config.model)(input_shape=tuple(inputs.shape[1:]),
                                      num_classes=num_classes, **config.model_options)
    model.compile(
        optimizer=_optimizer(config, -(-len(fit_y) // config.batch_size)),
        loss={name: _get_loss(loss, **config.loss_kwargs.get(name, {}))
              for name, loss in config.losses.items()},
        loss_weights={name: config.loss_weights.get(name, 1.0) for name in config.losses},
    )

    def targets(labels):
        return {name: labels for name in config.losses}

    callbacks = []
    if progress is not None:
        callbacks.append(_EpochLine(f"[{test_subject}]", config.epochs, progress))
    best = _BestWeights() if config.validation_use == "checkpoint" else None
    if best is not None:
        callbacks.append(best)
    if config.stop_loss_delta is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="loss", min_delta=config.stop_loss_delta, patience=1, mode="min"))
    snapshots = None
    if config.snapshot_epochs:
        snapshots = _Snapshots(config.snapshot_epochs, inputs[test_idx], config.batch_size)
        callbacks.append(snapshots)
    history = model.fit(
        fit_x, targets(fit_y),
        sample_weight=_sample_weights(config, fit_y, num_classes),
        validation_data=(inputs[val_idx], targets(data.labels[val_idx])) if len(val_idx) else None,
        batch_size=config.batch_size, epochs=config.epochs, shuffle=config.shuffle,
        callbacks=callbacks, verbose=0,
    )
    outputs = model.predict(inputs[test_idx], batch_size=config.batch_size, verbose=0)
    logits = np.asarray(outputs["logits"] if isinstance(outputs, Mapping) else outputs, dtype=float)
    probabilities = _softmax(logits)
    return FoldResult(
        test_subject=test_subject,
        test_idx=test_idx,
        y_true=data.labels[test_idx],
        y_pred=probabilities.argmax(axis=1),
        probabilities=probabilities,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        fold_seed=int(fold_seed),
        n_train=int(len(fit_y)),
        n_validation=int(len(val_idx)),
        best_epoch=best.best_epoch if best is not None and best.weights is not None
        else len(history.history.get("loss", [])) or config.epochs,
        seconds=time.perf_counter() - started,
        snapshots=snapshots.predictions if snapshots is not None else {},
    )


# --------------------------------------------------------------------------------------------------
# Fold files

def _safe_subject(subject: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-/" else "_" for c in subject)
    return "/".join(part if part not in ("", ".", "..") else "_" for part in safe.split("/"))


def round_dir(out_dir, round_index: int) -> Path:
    """Round 0 lives in ``out_dir`` itself; round r >= 1 in ``out_dir/round_<r>``."""
    out_dir = Path(out_dir)
    return out_dir if round_index == 0 else out_dir / f"round_{round_index:02d}"


def fold_path(out_dir, round_index: int, subject: str) -> Path:
    """``<round dir>/folds/<subject>.csv`` (a prefixed subject id makes a database sub-folder)."""
    return round_dir(out_dir, round_index) / "folds" / f"{_safe_subject(subject)}.csv"


def _prob_columns(classes: Sequence[str]) -> list[str]:
    return [f"prob_{name}" for name in classes]


FOLD_COLUMNS = ("sample", "subject", "database", "y_true", "y_pred")


def _write_fold(path: Path, result: FoldResult, data: CacheData, *, round_index: int,
                config_hash: str) -> None:
    rows = []
    for i, index in enumerate(result.test_idx):
        row = {
            "sample": data.index[index]["sample"], "subject": data.subjects[index],
            "database": data.databases[index], "y_true": int(result.y_true[i]),
            "y_pred": int(result.y_pred[i]),
        }
        row.update({col: repr(float(p)) for col, p in
                    zip(_prob_columns(data.classes), result.probabilities[i])})
        row.update({"round": round_index, "fold_seed": result.fold_seed,
                    "config_hash": config_hash, "cache_fingerprint": data.fingerprint})
        rows.append(row)
    side = {"test_subject": result.test_subject, "fold_seed": result.fold_seed,
            "round": round_index, "n_train": result.n_train, "n_validation": result.n_validation,
            "best_epoch": result.best_epoch, "seconds": result.seconds, "history": result.history,
            "config_hash": config_hash, "cache_fingerprint": data.fingerprint,
            "snapshots": {str(epoch): pred for epoch, pred in sorted(result.snapshots.items())}}
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=1))
    # the CSV is the fold's commit mark: written last, atomically
    atomic_write_csv(path, rows, FOLD_COLUMNS + tuple(_prob_columns(data.classes)))


def read_fold(path) -> list[dict]:
    """The rows of a fold file; ``[]`` when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _fold_is_current(path: Path, expected_samples: Sequence[str], config_hash: str,
                     fingerprint: str) -> bool:
    rows = read_fold(path)
    return (bool(rows) and [r.get("sample") for r in rows] == list(expected_samples)
            and all(r.get("config_hash") == config_hash
                    and r.get("cache_fingerprint") == fingerprint for r in rows))


def _existing_fold_files(out_dir: Path) -> list[Path]:
    found = []
    for base in [out_dir] + sorted(out_dir.glob("round_*")):
        if (base / "folds").is_dir():
            found += sorted((base / "folds").rglob("*.csv"))
    return found


def _move_stale(out_dir: Path, config_hash: str, fingerprint: str, write) -> None:
    """Move the outputs of another config or cache to ``out_dir/stale/<time>`` and say so."""
    files = _existing_fold_files(out_dir)
    stale = [p for p in files if any(r.get("config_hash") != config_hash
                                     or r.get("cache_fingerprint") != fingerprint
                                     for r in read_fold(p)[:1])]
    if not stale:
        return
    old = read_fold(stale[0])[0]
    target = out_dir / "stale" / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    write(f"{out_dir}: {len(stale)} finished fold(s) were made with config "
          f"{old['config_hash'][:12]} on cache {old['cache_fingerprint'][:12]}, not config "
          f"{config_hash[:12]} on cache {fingerprint[:12]}; moving them and the old "
          f"results to {target} and starting over")
    movable = [out_dir / "folds"] + sorted(out_dir.glob("round_*")) + [out_dir / n for n in
                                                                       _RESULT_FILES]
    for path in movable:
        if path.exists():
            shutil.move(str(path), str(target / path.name))


# --------------------------------------------------------------------------------------------------
# Worker processes

#: per worker process: ``(key, data, inputs)`` of the cache it last loaded (one entry, so a process
#: never holds two caches). Only the worker functions below use it; ``run_fold`` keeps no state.
_WORKER_CACHE: dict = {}


def _worker_init() -> None:
    """Ctrl-C is the parent's to handle: it stops the worker (see ``_stop_pool``). On Linux the
    worker also ends with its parent, so a killed run leaves no orphan training on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker_data(config: TrainConfig, cache_dir: str, fingerprint: str):
    key = (cache_dir, fingerprint, config.input_array, config.augment, config.mask_fraction,
           config.input_channels, config.normalization, config.input_size)
    if _WORKER_CACHE.get("key") != key:
        _WORKER_CACHE.clear()
        data = load_cache(cache_dir, arrays=cache_arrays(config))
        if data.fingerprint != fingerprint:
            raise RuntimeError(f"{cache_dir}: the cache changed during the run (fingerprint "
                               f"{data.fingerprint[:12]}, expected {fingerprint[:12]})")
        inputs, augmented = prepare_model_inputs(config, data)
        _WORKER_CACHE.update(key=key, data=data, inputs=inputs, augmented=augmented)
    return _WORKER_CACHE["data"], _WORKER_CACHE["inputs"], _WORKER_CACHE["augmented"]


def _write_stderr(message: str) -> None:
    # on a terminal, first erase the parent's fold bar from the line (it is redrawn as folds end)
    sys.stderr.write(("\r\x1b[K" if sys.stderr.isatty() else "") + message + "\n")
    sys.stderr.flush()


def _run_fold_in_worker(config: TrainConfig, cache_dir: str, fingerprint: str, name: str,
                        train_idx, test_idx, seed: int, progress: bool) -> FoldResult:
    """``run_fold`` in a worker, on the cache the worker loads once; epoch lines go to stderr."""
    data, inputs, augmented = _worker_data(config, cache_dir, fingerprint)
    result = run_fold(config, data, train_idx, test_idx, seed, inputs=inputs,
                      augmented=augmented, fold_name=name,
                      progress=_write_stderr if progress else None)
    keras.backend.clear_session()
    return result


def _start_pool() -> concurrent.futures.ProcessPoolExecutor:
    # "spawn": a fork of a process that has imported TensorFlow may deadlock
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut ``pool`` down; ``kill``: end its worker now, mid-fold (after an error or Ctrl-C)."""
    if kill:
        # the executor has no public way to stop a running task; its worker table is private
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _train_in_worker(jobs, config: TrainConfig, cache_dir: str, fingerprint: str, *,
                     progress: bool, show, finish) -> None:
    """Train ``jobs`` (round, subject, train_idx, test_idx, seed) in one fresh worker process;
    ``finish(round, subject, result)`` as each fold ends."""
    pool, failed = _start_pool(), True
    try:
        futures = [pool.submit(_run_fold_in_worker, config, cache_dir, fingerprint, name,
                               train_idx, test_idx, seed, progress)
                   for _, name, train_idx, test_idx, seed in jobs]
        for (round_index, subject, *_), future in zip(jobs, futures):
            show(round_index, subject)
            try:
                result = future.result()
            except concurrent.futures.process.BrokenProcessPool as error:
                raise RuntimeError(
                    f"the worker process training round {round_index} fold {subject} ended "
                    "abruptly: killed (out of memory?), or it could not start (a script that "
                    "calls run_protocol needs an `if __name__ == \"__main__\":` guard, since "
                    "the worker re-imports it); its own message, if any, is on stderr above"
                ) from error
            finish(round_index, subject, result)
        failed = False
    finally:
        _stop_pool(pool, kill=failed)


# --------------------------------------------------------------------------------------------------
# All folds

@dataclasses.dataclass
class RunResult:
    """The outcome of :func:`run_protocol`.

    Attributes:
        out_dir: the run folder.
        config: the resolved config (after ``smoke``).
        scores: ``{database: {metric: mean over rounds}}`` (``"all"`` = the whole protocol), with
            the pooled ``uf1``/``uar``/``acc`` and the ``per_fold_mean_*`` scores.
        std: the same layout, the standard deviation over rounds (0 for one round).
        per_round: the scores of each round.
        trained: ``(round, subject)`` of the folds trained by this call.
        resumed: ``(round, subject)`` of the folds read back from earlier calls.
    """

    out_dir: Path
    config: TrainConfig
    scores: dict
    std: dict
    per_round: list
    trained: list
    resumed: list


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


def run_protocol(config: TrainConfig, cache_dir, out_dir, *, smoke: bool = False,
                 progress: bool = True, report: Union[None, Mapping, Sequence[Mapping]] = None,
                 folds_per_process: int = FOLDS_PER_PROCESS) -> RunResult:
    """Run every LOSO fold of a cache (``config.rounds`` times), resuming where a run stopped.

    Args:
        config: the run's config.
        cache_dir: a cache written by ``python -m data_prep``; its subjects are the LOSO groups
            (for a MEGC2019 composite cache this is the CDE protocol).
        out_dir: the run folder (see the module docstring); created if needed.
        smoke: a seconds-long check of the whole pipeline: 1 epoch (2, with a snapshot after the
            first, for an epoch study), 1 round, the first ``SMOKE_FOLDS`` subjects only. Recorded
            in ``run.json``.
        progress: a tqdm bar over folds and one line per epoch on stderr.
        report: which published row(s) this run reproduces, recorded in ``run.json`` for
            ``python -m mer_keras.report``: ``{"paper", "table", "method", "dataset_map"}`` or a
            list of them (the experiment knows the paper table; the library does not).
        folds_per_process: train the folds in a worker process (``spawn``) that is replaced after
            this many folds, to return the memory ``model.fit`` leaks (see the module docstring);
            0 trains in the calling process. Results are the same either way (same seeds, same
            arguments), so it is not part of the config or its hash. The worker loads the cache
            itself; its epoch lines go straight to stderr. An error in a fold is raised here with
            its message; Ctrl-C stops the worker, and every finished fold stays saved.
    """
    if int(folds_per_process) != folds_per_process or folds_per_process < 0:
        raise ValueError(f"folds_per_process must be an integer >= 0, not {folds_per_process!r}")
    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write = _progress_writer(progress)
    if smoke:
        # an epoch study keeps one snapshot, so a smoke run goes through that path too
        config = config.replace(epochs=2, rounds=1, snapshot_epochs=(1,)) \
            if config.snapshot_epochs else config.replace(epochs=1, rounds=1)
    data = load_cache(cache_dir, arrays=cache_arrays(config))
    config_hash = config.config_hash()
    _move_stale(out_dir, config_hash, data.fingerprint, write)

    if config.protocol == "loso":
        protocol = CompositeLOSO()
        names = protocol.subjects(data.subjects)
        splits = protocol.split(None, None, data.subjects)
    else:
        protocol = LeaveVideosOut(config.lovo_folds, seed=config.seed)
        names = protocol.fold_names()
        splits = protocol.split(None, data.labels, data.subjects)
    folds = list(zip(names, splits))
    if smoke:
        folds = folds[:SMOKE_FOLDS]
    trained, resumed, seeds, pending = [], [], {}, []
    for round_index in range(config.rounds):
        for subject, (train_idx, test_idx) in folds:
            seed = fold_seed(config.seed, round_index, subject)
            seeds.setdefault(str(round_index), {})[subject] = seed
            expected = [data.index[i]["sample"] for i in test_idx]
            if _fold_is_current(fold_path(out_dir, round_index, subject), expected, config_hash,
                                data.fingerprint):
                resumed.append((round_index, subject))
            else:
                pending.append((round_index, subject, train_idx, test_idx, seed))

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(resumed) + len(pending), initial=len(resumed), desc=config.experiment,
                   unit="fold", file=sys.stderr)

    def finish(round_index, subject, result):
        _write_fold(fold_path(out_dir, round_index, subject), result, data,
                    round_index=round_index, config_hash=config_hash)
        trained.append((round_index, subject))
        if bar is not None:
            bar.update(1)

    def show(round_index, subject):
        if bar is not None:
            bar.set_postfix_str(f"round {round_index} {subject}")

    try:
        if folds_per_process == 0:
            inputs, augmented = prepare_model_inputs(config, data)
            for round_index, subject, train_idx, test_idx, seed in pending:
                show(round_index, subject)
                result = run_fold(config, data, train_idx, test_idx, seed, inputs=inputs,
                                  augmented=augmented, fold_name=subject,
                                  progress=write if progress else None)
                keras.backend.clear_session()
                finish(round_index, subject, result)
        else:
            for start in range(0, len(pending), folds_per_process):
                _train_in_worker(pending[start:start + folds_per_process], config,
                                 str(Path(cache_dir).resolve()), data.fingerprint,
                                 progress=progress, show=show, finish=finish)
    finally:
        if bar is not None:
            bar.close()
    if resumed:
        write(f"{out_dir}: resumed {len(resumed)} finished fold(s), trained {len(trained)}")

    return _write_outputs(
        out_dir, config=config, data=data, folds=folds, seeds=seeds, trained=trained,
        resumed=resumed, config_hash=config_hash, cache_dir=cache_dir, smoke=smoke,
        started=started, report=report)


# --------------------------------------------------------------------------------------------------
# Run outputs

def _std(values: Sequence[float]) -> float:
    """Sample standard deviation over rounds (ddof=1); 0 for a single round."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def plot_confusion_matrices(path, matrices: Mapping[str, np.ndarray], classes: Sequence[str],
                            title: str = "") -> None:
    """Save one confusion matrix per entry of ``matrices`` side by side (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.6 * len(matrices), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, cm) in zip(axes, matrices.items()):
        ax.imshow(cm, cmap="Blues")
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, str(int(count)), ha="center", va="center",
                    color="white" if count > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    if title:
        figure.suptitle(title)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    tmp.replace(path)


def _write_outputs(out_dir: Path, *, config: TrainConfig, data: CacheData, folds, seeds, trained,
                   resumed, config_hash: str, cache_dir, smoke: bool, started: float,
                   report=None) -> RunResult:
    labels = list(range(len(data.classes)))
    probs = _prob_columns(data.classes)
    predictions, per_fold_rows, per_round_rows, per_round = [], [], [], []
    by_epoch: dict[int, list] = {epoch: [] for epoch in config.snapshot_epochs}
    matrices: dict[str, np.ndarray] = {}
    for round_index in range(config.rounds):
        rows, fold_names = [], []
        snapshot_pred = {epoch: [] for epoch in config.snapshot_epochs}
        for subject, _ in folds:
            path = fold_path(out_dir, round_index, subject)
            fold_rows = read_fold(path)
            side = {}
            if path.with_suffix(".json").is_file():
                side = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            y_t = np.array([int(r["y_true"]) for r in fold_rows])
            y_p = np.array([int(r["y_pred"]) for r in fold_rows])
            per_fold_rows.append({
                "round": round_index, "subject": subject, "database": fold_rows[0]["database"],
                "n_samples": len(fold_rows), **mt.compute_metrics(y_t, y_p, labels),
                "fold_seed": fold_rows[0]["fold_seed"], "best_epoch": side.get("best_epoch"),
                "seconds": side.get("seconds"),
            })
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

    scores, std, metric_rows = {}, {}, []
    for database in per_round[0]:
        scores[database], std[database] = {}, {}
        for metric in per_round[0][database]:
            values = [r[database][metric] for r in per_round]
            scores[database][metric] = float(np.mean(values))
            std[database][metric] = _std(values)
            metric_rows.append({
                "database": database, "metric": metric,
                "pooling": "per_fold_mean" if metric.startswith("per_fold_mean_") else "pooled",
                "value": scores[database][metric], "std": std[database][metric],
                "n_rounds": len(values)})

    if config.snapshot_epochs:
        by_epoch[config.epochs] = per_round
        epoch_rows = [
            {"epoch": epoch, "database": database, "metric": metric,
             "pooling": "per_fold_mean" if metric.startswith("per_fold_mean_") else "pooled",
             "value": float(np.mean([r[database][metric] for r in rounds])),
             "n_rounds": len(rounds)}
            for epoch, rounds in sorted(by_epoch.items())
            for database in rounds[0] for metric in rounds[0][database]]
        atomic_write_csv(out_dir / "metrics_by_epoch.csv", epoch_rows,
                         ("epoch", "database", "metric", "pooling", "value", "n_rounds"))

    columns = ("round", "sample", "subject", "database", "y_true", "y_pred", "true_class",
               "pred_class", *probs, "fold_seed")
    atomic_write_csv(out_dir / "predictions.csv", predictions, columns)
    atomic_write_csv(out_dir / "metrics_per_fold.csv", per_fold_rows,
                     ("round", "subject", "database", "n_samples", *mt.METRICS, "fold_seed",
                      "best_epoch", "seconds"))
    atomic_write_csv(out_dir / "metrics_per_round.csv", per_round_rows,
                     ("round", "database", "metric", "value"))
    atomic_write_csv(out_dir / "metrics.csv", metric_rows,
                     ("database", "metric", "pooling", "value", "std", "n_rounds"))
    plot_confusion_matrices(
        out_dir / "confusion_matrix.png", matrices, data.classes,
        title=f"{config.experiment}: pooled over all folds"
              + (f", summed over {config.rounds} rounds" if config.rounds > 1 else ""))
    finished = time.time()
    record = {
        "experiment": config.experiment, "config": config.to_dict(), "config_hash": config_hash,
        "smoke": smoke, "seed": config.seed, "fold_seeds": seeds,
        "protocol": {"name": config.protocol, "n_folds": len(folds),
                     "folds": [s for s, _ in folds],
                     "classes": list(data.classes),
                     "cache_protocol": data.meta.get("protocol")},
        "cache": {"path": str(Path(cache_dir).resolve()), "fingerprint": data.fingerprint,
                  "n_samples": len(data)},
        "versions": _versions(),
        "timings": {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(finished)),
                    "seconds_this_call": finished - started,
                    "fold_seconds_total": float(sum(r["seconds"] or 0 for r in per_fold_rows))},
        "folds_trained_this_call": len(trained), "folds_resumed": len(resumed),
        "metrics_note": "uf1/uar/acc are computed on the pooled predictions of all folds "
                        "(MEGC2019); per_fold_mean_* are means of per-fold scores",
    }
    if report is not None:
        record["report"] = report
    atomic_write_text(out_dir / "run.json", json.dumps(record, indent=2, sort_keys=True))
    return RunResult(out_dir=out_dir, config=config, scores=scores, std=std, per_round=per_round,
                     trained=trained, resumed=resumed)
