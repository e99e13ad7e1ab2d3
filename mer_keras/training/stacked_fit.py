"""The epochs of a group of folds on a :class:`~mer_keras.training.stacked.StackedTrainer`.

Each fold keeps what ``model.fit`` would give it alone: its own batch order (a NumPy generator
seeded by the fold's seed, reshuffled every epoch), its own last partial batch, its own learning
rate decay, validation, checkpoint, stop on a stalled training loss and epoch snapshots. Folds
that need fewer steps in an epoch, or have stopped, sit the remaining steps out untouched.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

from data_prep.cache import CacheData
from mer_keras.training.config import TrainConfig
from mer_keras.training.folds import FoldPlan, FoldResult, sample_weights, softmax
from mer_keras.training.probes import probe_rows
from mer_keras.training.stacked import StackedTrainer, pad_rows


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class _EarlyStop:
    """Keras' ``EarlyStopping(monitor="loss", min_delta, patience=1, mode="min")``, per fold."""

    def __init__(self, min_delta: float):
        self.min_delta, self.best, self.wait = abs(min_delta), None, 0

    def stop(self, epoch: int, loss: float) -> bool:
        self.wait += 1
        # Keras negates min_delta for mode "min": an improvement is loss + |delta| < best
        if self.best is None or loss + self.min_delta < self.best:
            self.best, self.wait = loss, 0
            return False
        return self.wait >= 1 and epoch > 0


def predict_logits(trainer: StackedTrainer, inputs: np.ndarray,
                   indices: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each slot's logits on its own samples (``indices[slot]`` into ``inputs``)."""
    rows = pad_rows([np.asarray(i, np.int64) for i in indices], trainer.width)
    logits = trainer.logits(inputs[rows])
    return [logits[slot, :len(i)] for slot, i in enumerate(indices)]


def fit_group(trainer: StackedTrainer, config: TrainConfig, data: CacheData,
              plans: Sequence[FoldPlan], inputs: np.ndarray, *, engine: str,
              progress: Optional[Callable[[str], None]] = None) -> list[FoldResult]:
    """Train ``plans`` (at most ``trainer.width``) together; one result per plan, in order.

    The trainer's table must already hold the run's training table.
    """
    started = time.perf_counter()
    width, batch = trainer.width, config.batch_size
    if not 0 < len(plans) <= width:
        raise ValueError(f"{len(plans)} folds for a trainer of width {width}")
    num_classes = len(data.classes)
    slots = range(len(plans))
    for slot, plan in zip(slots, plans):
        trainer.reset(slot, plan.seed)
    # a slot beyond len(plans) gets no batch: the step skips it, and nothing reads it
    rngs = [np.random.default_rng(plan.seed) for plan in plans]
    weights = [sample_weights(config, plan.fit_labels, num_classes) for plan in plans]
    weights = [np.ones(len(p.fit_rows), np.float32) if w is None else w
               for p, w in zip(plans, weights)]
    names = ["loss"] + ([f"{name}_loss" for name in trainer.output_names]
                        if len(trainer.output_names) > 1 else [])
    history = [{name: [] for name in names} for _ in plans]
    running = [True] * len(plans)
    stoppers = [_EarlyStop(config.stop_loss_delta) if config.stop_loss_delta is not None else None
                for _ in plans]
    checkpoint = config.validation_use == "checkpoint"
    best = [(np.inf, 0, None)] * len(plans)
    snapshots: list[dict] = [{} for _ in plans]
    # each slot's probe (if its model has one): before the first epoch, then after every epoch
    probed = [probe_rows(plan.fit_rows) for plan in plans] \
        if config.probes and trainer.probe is not None else None
    probes: list[dict] = [{} for _ in plans]

    def measure(live):
        for slot in (live if probed is not None else ()):
            for name, value in trainer.measure(slot, probed[slot]).items():
                probes[slot].setdefault(name, []).append(value)

    measure(slots)
    val = [plan.val_idx for plan in plans]
    if any(len(v) for v in val):
        val_x = inputs[pad_rows(val, width)]
        val_y = pad_rows([data.labels[v] for v in val], width)
        val_mask = pad_rows([np.ones(len(v), np.float32) for v in val], width).astype(np.float32)
        val_w = val_mask  # unweighted, as fit's validation_data without sample weights

    # a fold's own learning rate and epochs (an inner cross-validation's grid point or choice)
    rates = [plan.learning_rate or config.learning_rate for plan in plans]
    rates += [config.learning_rate] * (width - len(plans))
    epochs = [plan.epochs or config.epochs for plan in plans]
    for epoch in range(max(epochs)):
        for slot in slots:
            running[slot] = running[slot] and epoch < epochs[slot]
        # in float64, rounded once (as before per-fold rates): bit-identical decayed rates
        rate = (np.asarray(rates, np.float64) * config.lr_decay_per_epoch ** epoch
                ).astype(np.float32)
        orders = [rng.permutation(len(plan.fit_rows)) if config.shuffle
                  else np.arange(len(plan.fit_rows)) for rng, plan in zip(rngs, plans)]
        batches = [_batches(order, batch) if running[slot] else []
                   for slot, order in enumerate(orders)]
        totals = np.zeros((len(plans), len(names)))
        for step in range(max(len(b) for b in batches)):
            index = np.zeros((width, batch), np.int64)
            weight = np.zeros((width, batch), np.float32)
            mask = np.zeros((width, batch), np.float32)
            for slot in slots:
                if step < len(batches[slot]):
                    chosen = batches[slot][step]
                    # a short batch's padding repeats one of the slot's own samples (weight 0):
                    # never another fold's or a test sample, which batch statistics would see
                    index[slot, :] = plans[slot].fit_rows[chosen[0]]
                    index[slot, :len(chosen)] = plans[slot].fit_rows[chosen]
                    weight[slot, :len(chosen)] = weights[slot][chosen]
                    mask[slot, :len(chosen)] = 1.0
            losses = trainer.train_step(index, weight, mask, rate)
            totals += losses[:len(plans), :len(names)] * mask[:len(plans)].sum(axis=1)[:, None]
        val_loss = (trainer.validation_loss(val_x, val_y, val_w, val_mask)
                    if any(len(v) for v in val) else None)
        for slot, plan in zip(slots, plans):
            if not running[slot]:
                continue
            for position, name in enumerate(names):
                history[slot][name].append(float(totals[slot, position] / len(plan.fit_rows)))
            if val_loss is not None and len(val[slot]):
                history[slot].setdefault("val_loss", []).append(float(val_loss[slot]))
                if checkpoint and val_loss[slot] < best[slot][0]:
                    best[slot] = (float(val_loss[slot]), epoch + 1, trainer.state(slot))
        measure([s for s in slots if running[s]])
        if epoch + 1 in config.snapshot_epochs:
            for slot, logits in enumerate(predict_logits(trainer, inputs,
                                                         [p.test_idx for p in plans])):
                snapshots[slot][epoch + 1] = [int(c) for c in logits.argmax(axis=1)]
        if progress is not None:
            live = [s for s in slots if running[s]]
            shown = " ".join(f"{name}={np.mean([history[s][name][-1] for s in live]):.4f}"
                             for name in names if live)
            progress(f"[{_label(plans)}] epoch {epoch + 1}/{max(epochs)} {shown}")
        for slot in slots:
            if running[slot] and stoppers[slot] is not None and stoppers[slot].stop(
                    epoch, history[slot]["loss"][-1]):
                running[slot] = False
        if not any(running):
            break

    best_epochs = []
    for slot, plan in zip(slots, plans):
        if checkpoint and best[slot][2] is not None:
            trainer.set_state(slot, *best[slot][2])
            best_epochs.append(best[slot][1])
        else:
            best_epochs.append(len(history[slot]["loss"]))
    logits = predict_logits(trainer, inputs, [p.test_idx for p in plans])
    seconds = (time.perf_counter() - started) / len(plans)
    results = []
    for slot, plan in zip(slots, plans):
        probabilities = softmax(logits[slot].astype(float))
        results.append(FoldResult(
            test_subject=plan.name, test_idx=plan.test_idx, y_true=data.labels[plan.test_idx],
            y_pred=probabilities.argmax(axis=1), probabilities=probabilities,
            history=history[slot], fold_seed=plan.seed, n_train=len(plan.fit_rows),
            n_validation=len(plan.val_idx), best_epoch=best_epochs[slot], seconds=seconds,
            snapshots=snapshots[slot], engine=engine, probes=probes[slot]))
    return results


def _label(plans: Sequence[FoldPlan]) -> str:
    return plans[0].name if len(plans) == 1 else f"{plans[0].name} +{len(plans) - 1} folds"
