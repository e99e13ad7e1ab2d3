"""The training config: everything that decides a fold's result, its hash, and the fold seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping, Optional, Union

from mer_keras.inputs import CHANNELS, NORMALIZATIONS

OPTIMIZERS = ("sgd", "adam")
VALIDATION_USES = ("monitor", "checkpoint")
#: how a run splits its cache into folds (``splitter``); "protocol" names the cache's sample set
#: (``cde``, ``smic_3class``: ``data_prep``) and the published evaluation (``cde``, ``cdmer``,
#: ``single-database``: ``results/published.csv``).
SPLITTERS = ("loso", "lovo", "lodo")
#: cache arrays a model can read: the onset->apex flow (u, v, strain) of the flow stage, the
#: STRCN stage's ``geometry`` flow (u, v) and magnified ``appearance`` frames, and the apex face
#: ``frames`` (K x S x S x 3 RGB) of the frames stage (Micro-Attention, MTMNet).
INPUT_ARRAYS = ("flow", "geometry", "appearance", "frames")
#: config fields that do not change a fold's result, so they stay out of the config hash.
_UNHASHED = ("experiment", "rounds", "probes")
#: fields added after the first committed runs: hashed only when they differ from their default,
#: so those runs keep their hash (and resume) while a config that uses them hashes differently.
_HASHED_WHEN_SET = ("snapshot_epochs", "input_array", "augment", "mask_fraction", "splitter",
                    "lovo_folds", "weight_decay", "lr_decay_per_epoch", "stop_loss_delta",
                    "transfer", "selection")

#: what ``selection`` may choose, by what, and its inner folds (``mer_keras.training.selection``)
SELECTION_GRID_FIELDS = ("learning_rate", "epochs")
SELECTION_METRICS = ("uf1", "uar", "acc")
DEFAULT_INNER_FOLDS = 3


def selection_problems(selection: Mapping) -> list[str]:
    """The problems of a ``selection`` record (empty: valid, or no selection)."""
    if not selection:
        return []
    problems = []
    unknown = sorted(set(selection) - {"grid", "inner_folds", "metric"})
    if unknown:
        problems.append(f"selection: unknown keys {unknown}")
    grid = selection.get("grid") or {}
    if not isinstance(grid, Mapping) or not grid or set(grid) - set(SELECTION_GRID_FIELDS):
        return problems + [f"selection grid must name some of {SELECTION_GRID_FIELDS}, got "
                           f"{sorted(grid) if isinstance(grid, Mapping) else grid!r}"]
    for name, values in grid.items():
        if not isinstance(values, list) or not values or len(set(values)) != len(values):
            problems.append(f"selection grid {name!r} must be a non-empty list of distinct values")
    if any(int(e) != e or e < 1 for e in grid.get("epochs", [1])):
        problems.append("selection grid epochs must be integers >= 1")
    if any(not v > 0 for v in grid.get("learning_rate", [1])):
        problems.append("selection grid learning rates must be > 0")
    if int(selection.get("inner_folds", DEFAULT_INNER_FOLDS)) < 2:
        problems.append("selection inner_folds must be >= 2")
    if selection.get("metric", "uf1") not in SELECTION_METRICS:
        problems.append(f"selection metric must be one of {SELECTION_METRICS}")
    return problems


def normal_selection(selection: Mapping) -> dict:
    """A valid ``selection`` with its defaults written out and its epochs sorted, so that two
    spellings of one selection hash the same (the learning rates keep their order: ties go to
    the first)."""
    if not selection:
        return {}
    grid = dict(selection["grid"])
    if "epochs" in grid:
        grid["epochs"] = sorted(int(e) for e in grid["epochs"])
    if "learning_rate" in grid:
        grid["learning_rate"] = [float(v) for v in grid["learning_rate"]]
    return {"grid": grid, "inner_folds": int(selection.get("inner_folds", DEFAULT_INNER_FOLDS)),
            "metric": selection.get("metric", "uf1")}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result, serialisable to JSON.

    Attributes:
        experiment: the run's name (for the report; not hashed).
        model: registry name of the builder (``mer_keras.models.get_builder``).
        model_options: keyword arguments of the builder besides ``input_shape``/``num_classes``.
        input_channels: cache flow channels fed to the model, by name (``u``, ``v``, ``strain``).
        normalization: ``"none"``, ``"minmax"`` or ``"median_centred"`` (per sample, per channel;
            ``mer_keras.inputs.normalize``).
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
        splitter: ``"loso"`` (one subject per fold), ``"lovo"`` (``lovo_folds`` stratified folds
            of videos, ``mer_keras.protocols.LeaveVideosOut``) or ``"lodo"`` (one database per
            fold, trained on the others: cross-database, ``LeaveOneDatabaseOut``). Named ``protocol`` before; hashed
            under the new name only when set, so committed LOSO runs keep their hash.
        lovo_folds: folds of ``"lovo"`` (20: 5 % of the videos each).
        weight_decay: L2 weight decay of the optimizer (Keras' decoupled form).
        lr_decay_per_epoch: the learning rate is multiplied by this after every epoch (1: fixed).
        stop_loss_delta: stop a fold once an epoch lowers the TRAINING loss by less than this
            (STRCN's "10^-3", Sec IV-A); None trains all ``epochs``. Reads no held-out data.
        transfer: the settings of the model's transfer chain (``mer_keras.transfer``: macro
            pre-training, schedules, augmentations, loss terms); empty for the other models.
        probes: measure the model's per-epoch probes where it has one (FR:
            ``mer_keras.training.probes``); they read weights only, so not hashed.
        selection: empty (fixed settings), or each outer fold's choice of learning rate and
            epochs by subject-grouped inner cross-validation over its own training subjects
            (``{"grid": {"learning_rate": [...], "epochs": [...]}, "inner_folds": 3, "metric":
            "uf1"}``, :mod:`~mer_keras.training.selection`); ``learning_rate`` / ``epochs`` are
            then used only where the grid does not name them.
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
    splitter: str = "loso"
    lovo_folds: int = 20
    weight_decay: float = 0.0
    lr_decay_per_epoch: float = 1.0
    stop_loss_delta: Optional[float] = None
    transfer: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    selection: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    probes: bool = True

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
        fix("transfer", json.loads(json.dumps(dict(self.transfer))))  # JSON-normal: lists, dicts
        fix("selection", json.loads(json.dumps(dict(self.selection))))
        if isinstance(self.class_weight, Mapping):
            fix("class_weight", {int(k): float(v) for k, v in self.class_weight.items()})
        problems = []
        if self.input_array not in INPUT_ARRAYS:
            problems.append(f"input_array {self.input_array!r} not in {INPUT_ARRAYS}")
        if self.input_array not in ("appearance", "frames") and (
                [c for c in self.input_channels if c not in CHANNELS] or not self.input_channels):
            problems.append(f"input_channels {self.input_channels} must be among {list(CHANNELS)}")
        if self.normalization not in NORMALIZATIONS:
            problems.append(f"normalization {self.normalization!r} not in {NORMALIZATIONS}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} not in {OPTIMIZERS}")
        if self.splitter not in SPLITTERS:
            problems.append(f"splitter {self.splitter!r} not in {SPLITTERS}")
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
        problems += selection_problems(self.selection)
        if self.selection and (self.snapshot_epochs or self.validation is not None
                               or self.stop_loss_delta is not None or self.transfer
                               or self.model == "logreg"):
            problems.append("selection chooses learning rate and epochs: it cannot go with "
                            "snapshot_epochs, validation, stop_loss_delta, a transfer chain or "
                            "the logistic regression (which has neither)")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))
        fix("selection", normal_selection(self.selection))

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
        record = dict(record)
        if "protocol" in record and "splitter" not in record:  # run.json before the rename
            record["splitter"] = record.pop("protocol")
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
        defaults["transfer"] = {}
        defaults["selection"] = {}
        record = {k: v for k, v in self.to_dict().items()
                  if k not in _UNHASHED and not (k in defaults and v == defaults[k])}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def derived_seed(*parts) -> int:
    """A seed in ``[0, 2**31 - 1)`` derived from ``parts`` (SHA-256 of them joined by ``:``)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") % (2 ** 31 - 1)


def fold_seed(seed: int, round_index: int, subject: str) -> int:
    """The seed of one fold, derived from the base seed, the round and the test subject."""
    return derived_seed(seed, round_index, subject)
