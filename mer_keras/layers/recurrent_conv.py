"""``RecurrentConv2D``: STRCN's recurrent convolutional layer (RCL), Eqs. (6)-(7), unrolled."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mer_keras")
class RecurrentConv2D(keras.layers.Layer):
    """A recurrent convolutional layer (Liang & Hu, CVPR 2015) unrolled for ``steps`` steps.

    STRCN Sec III-D, Eq. (6): the input of unit (i, j) at step n is
    ``z(n) = w_f * u + w_r * v(n-1) + b``, the feed-forward input ``u`` (the layer's input, held
    constant) convolved by ``w_f`` plus the previous state convolved by the recurrent kernel
    ``w_r``; Eq. (7): ``v(n) = f(z(n))``, and Sec IV-A: "each convolutional layer either feed-forward
    or recurrent is followed by BN and ReLU". Table I: feed-forward 1 x 1, recurrent 3 x 3 (pad 1),
    3 steps. ``w_r`` is ONE kernel shared by every step (the RCNN's weight sharing); each step has
    its own batch normalisation, as in the RCNN. The initial state is
    ``v(0) = ReLU(BN_0(w_f * u + b))`` (PAPER_NOTES 5.3 / 5.7-6, after Liang & Hu); the layer returns
    ``v(steps)``.

    Args:
        filters: feature maps M (input and output of every step).
        kernel_size: recurrent kernel side (3).
        feedforward_kernel_size: feed-forward kernel side (1).
        steps: recurrent steps unrolled (3).
        kernel_initializer: initialiser of both kernels.
        momentum, epsilon: of every batch normalisation.
        **kwargs: passed to ``keras.layers.Layer``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H, W, filters)`` ('same' padding).
    """

    def __init__(self, filters: int, kernel_size: int = 3, feedforward_kernel_size: int = 1,
                 steps: int = 3, kernel_initializer="he_normal", momentum: float = 0.99,
                 epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1 or int(steps) < 1:
            raise ValueError(f"RecurrentConv2D needs filters >= 1 and steps >= 1, got "
                             f"filters={filters}, steps={steps}")
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.feedforward_kernel_size, self.steps = int(feedforward_kernel_size), int(steps)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.feedforward = keras.layers.Conv2D(
            self.filters, self.feedforward_kernel_size, padding="same",
            kernel_initializer=self.kernel_initializer, name="feedforward")
        self.recurrent = keras.layers.Conv2D(
            self.filters, self.kernel_size, padding="same", use_bias=False,
            kernel_initializer=self.kernel_initializer, name="recurrent")
        self.norms = [keras.layers.BatchNormalization(momentum=self.momentum, epsilon=self.epsilon,
                                                      name=f"bn_step{n}")
                      for n in range(self.steps + 1)]

    def build(self, input_shape):
        self.feedforward.build(input_shape)
        state_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.recurrent.build(state_shape)
        for norm in self.norms:
            norm.build(state_shape)
        self.built = True

    def call(self, inputs, training=None):
        drive = self.feedforward(inputs)  # w_f * u + b, the same at every step
        state = ops.relu(self.norms[0](drive, training=training))
        for n in range(1, self.steps + 1):
            state = ops.relu(self.norms[n](drive + self.recurrent(state), training=training))
        return state

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size,
            "feedforward_kernel_size": self.feedforward_kernel_size, "steps": self.steps,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "momentum": self.momentum, "epsilon": self.epsilon,
        })
        return config
