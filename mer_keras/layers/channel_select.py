"""``ChannelSelect``: pick input channels by index (the u / v streams of a flow tensor)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mer_keras")
class ChannelSelect(keras.layers.Layer):
    """Select channels of the last axis, in the given order; a saveable stand-in for ``Lambda``.

    A two-stream model (FR, OFF-ApexNet) takes one flow tensor ``(..., C)`` whose channel 0 is the
    horizontal component u and channel 1 the vertical component v; ``ChannelSelect([0])`` and
    ``ChannelSelect([1])`` feed the two streams.

    Args:
        indices: channel indices to keep, in order; non-negative, no repeats.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``...).

    Input shape: ``(batch, ..., C)`` with ``C > max(indices)``.
    Output shape: ``(batch, ..., len(indices))``.
    """

    def __init__(self, indices: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("ChannelSelect needs at least one channel index")
        if min(indices) < 0:
            raise ValueError(f"ChannelSelect indices must be non-negative, got {indices}")
        if len(set(indices)) != len(indices):
            raise ValueError(f"ChannelSelect indices repeat: {indices}")
        self.indices = indices

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and max(self.indices) >= channels:
            raise ValueError(
                f"{self.name}: channel index {max(self.indices)} is out of range for an input "
                f"with {channels} channels (shape {tuple(input_shape)})")
        super().build(input_shape)

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (len(self.indices),)

    def get_config(self):
        config = super().get_config()
        config.update({"indices": list(self.indices)})
        return config
