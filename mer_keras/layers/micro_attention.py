"""``MicroAttention``: the micro-attention unit of a residual block, ``O = T(1 + M)`` (Eqs. 1-2)."""

from __future__ import annotations

import keras
from keras import ops

_ACTIVATIONS = ("linear", "sigmoid")


@keras.saving.register_keras_serializable(package="mer_keras")
class MicroAttention(keras.layers.Layer):
    """Micro-Attention's unit: a spatial attention map from the block's own multi-scale features.

    The inputs are the residual output ``T = L_c1 + L_c3`` and the three feature maps of the block
    ``[L_c1, L_c2, L_c3]`` (the 1 x 1 shortcut and the two 3 x 3 convs of the main path, receptive
    fields 1, 3 and 5; Sec 3.2). The unit concatenates them on channels
    (``L_cat``, ``3C`` channels), embeds ``L_cat`` with a learned 1 x 1 convolution ``W*`` to the
    ``C`` channels of ``T`` and averages over channels, giving one map
    ``M = mean_c(W* * L_cat)`` of shape ``H x W x 1`` (Eq. 1), broadcast over the channels of T.
    The output is ``O = T * (1 + M)`` (Eq. 2, garbled in the text; read from "only brings in the
    T(X)*M(X) section", PAPER_NOTES 2.2 / 2.7-3).

    ``W*`` maps 3C to C channels because Table 3's +1.0 M parameters (5.9 M against 4.9 M) are
    ``3 (64^2 + 128^2 + 256^2 + 512^2) = 1.04 M`` over ResNet-10's four blocks; a 3C -> 1 embedding
    would add 3 k (PAPER_NOTES 2.2). Since the channel mean is linear, the map equals that of a
    3C -> 1 convolution whose kernel is the mean of W*'s columns; from the zero initialisation the
    C columns even get equal gradients and stay equal under SGD or Adam. The extra parameters
    therefore buy the paper's count, not expressiveness.

    ``W*`` (kernel and bias) is zero-initialised by default, so ``M = 0`` and ``O = T``: adding
    the units to a pre-trained ResNet leaves its outputs unchanged, and fine-tuning starts from it
    (PAPER_NOTES 2.2 [choice], 2.7-9). The gradient of ``W*`` is not zero there (it is
    ``dL/dO * T`` times ``L_cat``), so the unit learns.

    Args:
        activation: ``"linear"`` (default: no squashing is mentioned and "the attention map M(X)
            would approximately approach zero when the attentional areas are not obviously
            learned", PAPER_NOTES 2.7-2) or ``"sigmoid"``, ``M = sigmoid(mean_c(W* * L_cat))``,
            the ablation; it is also the authors' Caffe prototxt's gate (PEERS 1.1). With the
            sigmoid, a zero ``W*`` gives ``M = 0.5`` and ``O = 1.5 T``, not ``T``.
        kernel_initializer, bias_initializer: initialisers of ``W*``; zeros by default.
        **kwargs: passed to ``keras.layers.Layer``.

    Input: a list ``[t, l_c1, l_c2, l_c3]`` of ``(batch, H, W, C_i)`` tensors with equal
    ``H x W``. Output shape: the shape of ``t``.
    """

    def __init__(self, activation: str = "linear", kernel_initializer="zeros",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MicroAttention activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 4
                and all(isinstance(shape, (list, tuple)) for shape in input_shape)):
            raise ValueError(f"{self.name}: expects the list [t, l_c1, l_c2, l_c3] of four "
                             f"feature maps, got input shape {input_shape}")
        shapes = [tuple(shape) for shape in input_shape]
        if any(len(shape) != 4 or shape[-1] is None for shape in shapes):
            raise ValueError(f"{self.name}: every input must be (batch, H, W, C) with known C, "
                             f"got shapes {shapes}")
        spatial = {shape[1:3] for shape in shapes if None not in shape[1:3]}
        if len(spatial) > 1:
            raise ValueError(f"{self.name}: t, l_c1, l_c2 and l_c3 must share H x W, got shapes "
                             f"{shapes}")
        channels = int(shapes[0][-1])
        concat_channels = sum(int(shape[-1]) for shape in shapes[1:])
        # W*, the 1 x 1 embedding from the 3C channels of L_cat to the C channels of T.
        self.embedding = keras.layers.Conv2D(
            channels, 1, kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer, name="embedding")
        self.embedding.build(shapes[1][:-1] + (concat_channels,))
        super().build(input_shape)

    def attention_map(self, inputs):
        """Return ``M``, the ``(batch, H, W, 1)`` attention map of ``[t, l_c1, l_c2, l_c3]``."""
        _, *features = inputs
        embedded = self.embedding(ops.concatenate(features, axis=-1))
        attention = ops.mean(embedded, axis=-1, keepdims=True)
        if self.activation == "sigmoid":
            attention = ops.sigmoid(attention)
        return attention

    def call(self, inputs):
        return ops.multiply(inputs[0], ops.add(1.0, self.attention_map(inputs)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
