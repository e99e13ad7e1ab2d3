"""``ExpressionAttention``: FR's attention unit, ``z*_k = softmax(FC_k(z)) * z`` (Eqs. 2-3)."""

from __future__ import annotations

import keras
from keras import ops

_ACTIVATIONS = ("softmax", "sigmoid")


@keras.saving.register_keras_serializable(package="mer_keras")
class ExpressionAttention(keras.layers.Layer):
    """One branch of FR's expression proposal module: feature-wise attention on the shared feature.

    For the expression-shared feature ``z`` (width ``d``) the branch computes the attention weights
    ``a_k = softmax(z W_k + b_k)`` with a ``d x d`` fully connected layer, normalised over the
    feature axis, and returns the expression-specific feature ``z*_k = a_k * z`` (element-wise).
    Sec 3.2: "the expression-shared feature z is connected with K fully connected layers
    separately. After activated by Softmax, we gain the attention weight of z for each specific
    expression, a_k = softmax_k(z), where a_k is a vector that has the same dimension as z".
    The softmax therefore runs over the feature axis (the last one), so every ``a_k`` sums to 1.

    Args:
        activation: ``"softmax"`` (the paper; over the feature axis) or ``"sigmoid"`` (an
            independent gate per feature, offered for the ablation of PAPER_NOTES 1.6 item 2).
        scale: a constant that multiplies ``a_k``; 1.0 is the paper. ``d`` (the feature width)
            gives a softmax attention whose mean weight is 1, so that ``z*_k`` keeps the scale of
            ``z``; not in the paper.
        kernel_initializer, bias_initializer: initialisers of ``W_k`` and ``b_k``.
        **kwargs: passed to ``keras.layers.Layer``.

    Input shape: ``(batch, d)``. Output shape: ``(batch, d)``.
    """

    def __init__(self, activation: str = "softmax", scale: float = 1.0,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"ExpressionAttention activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.scale = float(scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: expects a (batch, features) input with a known feature width, "
                f"got shape {tuple(input_shape)}")
        width = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(width, width),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer=self.bias_initializer)
        super().build(input_shape)

    def attention_weights(self, inputs):
        """Return ``a_k``, the attention weights of ``inputs`` (same shape as ``inputs``)."""
        scores = ops.add(ops.matmul(inputs, self.kernel), self.bias)
        if self.activation == "softmax":
            weights = ops.softmax(scores, axis=-1)
        else:
            weights = ops.sigmoid(scores)
        if self.scale != 1.0:
            weights = ops.multiply(weights, self.scale)
        return weights

    def call(self, inputs):
        return ops.multiply(self.attention_weights(inputs), inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "activation": self.activation,
            "scale": self.scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
