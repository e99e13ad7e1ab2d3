"""A config's optimizer and losses, the same for every fold engine."""

from __future__ import annotations

from typing import Optional

import keras

from mer_keras.training.config import TrainConfig


def make_losses(config: TrainConfig) -> dict:
    """Output name -> ``keras.losses.Loss`` (``mer_keras.losses.get_loss``, with its kwargs)."""
    from mer_keras.losses import get_loss
    return {name: get_loss(loss, **config.loss_kwargs.get(name, {}))
            for name, loss in config.losses.items()}


def optimizer_moments(config: TrainConfig) -> int:
    """Slot arrays the config's optimizer keeps per weight: 2 for Adam, 1 for SGD with momentum."""
    return 2 if config.optimizer == "adam" else 1 if config.momentum else 0


def make_optimizer(config: TrainConfig, steps_per_epoch: Optional[int] = None, *,
                   learning_rate: Optional[float] = None):
    """The config's SGD or Adam, with its weight decay.

    Args:
        config: the run's config.
        steps_per_epoch: with ``lr_decay_per_epoch`` != 1, the learning rate becomes a staircase
            schedule that decays once per epoch of this many steps (the per-fold ``fit`` engine).
        learning_rate: a plain rate instead (the stacked engine sets the decayed rate of each
            epoch itself).
    """
    rate = config.learning_rate if learning_rate is None else learning_rate
    if learning_rate is None and config.lr_decay_per_epoch != 1.0:
        rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=max(1, steps_per_epoch or 1),
            decay_rate=config.lr_decay_per_epoch, staircase=True)
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum,
                                    weight_decay=decay)
    return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)
