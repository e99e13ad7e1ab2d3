"""What the transfer chains share: their settings, cached pre-training, and a fold's prediction.

A chain (:mod:`~mer_keras.transfer.micro_attention`, :mod:`~mer_keras.transfer.mtmnet`) pre-trains
what depends on no micro-expression subject once per run (on macro faces only, so no fold's test
subject is involved) and caches the weights in the run folder (``pretrained/``), keyed by the
settings, the macro data and the initial weights: a resumed run reuses them, a changed setting
retrains. What depends on a fold's training subjects is trained inside the fold.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

import keras
import numpy as np

from data_prep.cache import atomic_write_text, load_cache, read_cache_meta
from mer_keras.training.folds import FoldPlan, FoldResult, softmax
from mer_keras.transfer.images import face_inputs


def chain_settings(defaults: Mapping, given: Mapping, chain: str) -> dict:
    """``defaults`` updated with ``given`` (the config's ``transfer``); unknown keys are refused."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {chain} transfer settings {unknown}; known: {sorted(defaults)}")
    return {**defaults, **given}


def settings_key(*parts) -> str:
    """A short hash of JSON-able ``parts`` (settings, fingerprints): a cached file's name."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cached_weights(work_dir, name: str, key: str, models: Mapping[str, keras.Model],
                   train: Callable[[], dict], say: Callable[[str], None]) -> dict:
    """Load ``models``' weights from ``work_dir/pretrained/<name>_<key>_<model>.weights.h5``, or
    ``train()`` them (returning a record for ``<name>_<key>.json``) and save them atomically.

    The weights are not committed, so a run resumed on another machine trains them again (same
    seed; CPU float differences can still change them). The new record then keeps the earlier
    ones under ``"earlier"``, newest first, so the folds trained before stay described."""
    folder = Path(work_dir) / "pretrained"
    paths = {part: folder / f"{name}_{key}_{part}.weights.h5" for part in models}
    record_path = folder / f"{name}_{key}.json"
    if record_path.is_file() and all(path.is_file() for path in paths.values()):
        for part, model in models.items():
            model.load_weights(paths[part])
        say(f"{name}: reusing pre-trained weights {record_path.name}")
        return json.loads(record_path.read_text(encoding="utf-8"))
    earlier = []
    if record_path.is_file():
        previous = json.loads(record_path.read_text(encoding="utf-8"))
        earlier = [{k: v for k, v in previous.items() if k != "earlier"},
                   *previous.get("earlier", [])]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record = dict(train())
    record["seconds"] = time.perf_counter() - started
    record["made"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if earlier:
        record["earlier"] = earlier
    for part, model in models.items():
        temporary = paths[part].with_name(f".{paths[part].stem}.tmp.weights.h5")
        model.save_weights(temporary)
        os.replace(temporary, paths[part])
    atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True))  # written last
    say(f"{name}: pre-trained in {record['seconds']:.0f} s, saved {record_path.name}")
    return record


class MacroFaces:
    """A macro cache's faces at the model's size, with labels, subjects and the train split.

    Attributes:
        expression: float32 N x H x W x 3 in [0, 1].
        neutral: the same for each row's neutral frame, or None (``has_neutral`` false).
        labels: N class indices, in the MICRO protocol's classes.
        subjects, sequences: N ids.
        train: N booleans, the ``split`` column's "train" (all rows where there is no column).
        fingerprint: the cache's.
    """

    def __init__(self, cache_dir, classes, size):
        meta = read_cache_meta(cache_dir)
        if meta.get("kind") != "macro":
            raise ValueError(f"{cache_dir}: a {meta.get('kind')!r} cache, not a macro cache "
                             "(python -m data_prep macro)")
        if tuple(meta["classes"]) != tuple(classes):
            raise ValueError(f"{cache_dir}: macro classes {meta['classes']} differ from the "
                             f"micro cache's {list(classes)}: prepare it with the same --protocol")
        has_neutral = bool(meta.get("has_neutral", meta.get("params", {}).get("has_neutral")))
        data = load_cache(cache_dir, arrays=("expression",) + (("neutral",) if has_neutral
                                                                else ()))
        self.expression = face_inputs(data.arrays["expression"], size)
        self.neutral = face_inputs(data.arrays["neutral"], size) if has_neutral else None
        self.labels = data.labels
        self.subjects = data.subjects
        self.sequences = np.array([row.get("sequence") or row["sample"] for row in data.index])
        self.train = np.array([row.get("split", "train") != "validation" for row in data.index])
        self.fingerprint = data.fingerprint

    def __len__(self) -> int:
        return len(self.labels)


def predict_clips(model: keras.Model, clips: np.ndarray, batch_size: int) -> np.ndarray:
    """Softmax of ``"logits"`` for ``N x K x H x W x 3`` clips, averaged over their K frames
    (MTMNet's per-video prediction, PAPER_NOTES 4.6-3; K = 1 is the plain apex prediction)."""
    count, frames = clips.shape[:2]
    outputs = model.predict(clips.reshape((-1,) + clips.shape[2:]), batch_size=batch_size,
                            verbose=0)
    logits = np.asarray(outputs["logits"] if isinstance(outputs, Mapping) else outputs, float)
    return softmax(logits).reshape(count, frames, -1).mean(axis=1)


def fold_result(plan: FoldPlan, data, probabilities: np.ndarray, *, history: dict,
                n_train: int, epochs: int, seconds: float, engine: str = "transfer") -> FoldResult:
    """The :class:`FoldResult` of a chain's fold (last epoch's weights: nothing is selected)."""
    return FoldResult(
        test_subject=plan.name, test_idx=plan.test_idx, y_true=data.labels[plan.test_idx],
        y_pred=probabilities.argmax(axis=1), probabilities=probabilities,
        history={k: [float(v) for v in vs] for k, vs in history.items()},
        fold_seed=int(plan.seed), n_train=int(n_train), n_validation=0, best_epoch=int(epochs),
        seconds=float(seconds), engine=engine)


def step_decay(base: float, epoch: int, step: Optional[int]) -> float:
    """``base`` divided by 10 every ``step`` epochs (0-based ``epoch``; None or 0: constant)."""
    return base * (0.1 ** (epoch // step)) if step else base
