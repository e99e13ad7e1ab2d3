"""STRCN: spatiotemporal recurrent convolutional networks (Xia et al., IEEE TMM 2020), Table I.

Two networks share one trunk: Conv1 5x5 (no padding) -> Pool1 -> RCL2 -> Pool2 -> RCL3 -> Pool3 ->
RCL4 -> Pool4 -> RCL5 -> global average pooling -> FC -> softmax (Eq. 8). Every convolution, feed-
forward or recurrent, has M feature maps and is followed by BN and ReLU (Sec IV-A). Each RCL is a
1 x 1 feed-forward convolution and a 3 x 3 recurrent one unrolled for 3 steps
(``mer_keras.layers.RecurrentConv2D``). The two differ in their input and their first pools:

* STRCN-A (appearance, Sec III-C1): a ``d2 x T x 3`` matrix, each column the masked pixels of one
  magnified frame per colour channel (T = 30); Pool1 and Pool2 are 4 x 1 (along the pixel axis
  only: the 30 frames are kept whole until Pool3).
* STRCN-G (geometry, Sec III-C2): the ``300 x 245 x 2`` onset -> apex optical flow; every pool is
  square (4 x 4, 4 x 4, 4 x 4, then 2 x 2).

Pools take the floor of the size ('valid'), so the spatial sizes are those of PAPER_NOTES 5.3.
"""

from __future__ import annotations

from typing import Sequence

import keras

from mer_keras.layers import RecurrentConv2D
from mer_keras.models import register_model

#: Table I's pools after Conv1, RCL2, RCL3 and RCL4 (pool size = stride).
POOLS = {
    "appearance": ((4, 1), (4, 1), (4, 4), (2, 2)),
    "geometry": ((4, 4), (4, 4), (4, 4), (2, 2)),
}
#: M: "the number of feature maps" is not given (Fig. 5 sweeps it); PAPER_NOTES 5.7-1.
FEATURE_MAPS = 64


def _conv_bn_relu(x, filters: int, kernel: int, *, name: str):
    x = keras.layers.Conv2D(filters, kernel, padding="valid", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build_strcn(*, input_shape, num_classes: int = 3, pools: Sequence[Sequence[int]],
                feature_maps: int = FEATURE_MAPS, steps: int = 3, input_name: str = "inputs",
                name: str = "strcn") -> keras.Model:
    """The STRCN trunk of Table I with the given pools (see :data:`POOLS`).

    Args:
        input_shape: ``(H, W, C)`` of the input matrix.
        num_classes: width of ``"logits"``.
        pools: the four (height, width) pools after Conv1, RCL2, RCL3 and RCL4.
        feature_maps: M, the feature maps of every convolution.
        steps: recurrent steps of each RCL (3).
        input_name: the name of the model's input.
        name: the model's name.

    Raises:
        ValueError: an input too small for the pools (a size would reach 0), naming the layer.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    height, width = height - 4, width - 4  # Conv1, 5 x 5, no padding
    for index, (ph, pw) in enumerate(pools, start=1):
        height, width = height // ph, width // pw
        if height < 1 or width < 1:
            raise ValueError(f"{name}: input {tuple(input_shape)} is too small for Table I's pools "
                             f"{[tuple(p) for p in pools]}: Pool{index} would leave "
                             f"{height} x {width}")
    inputs = keras.Input(shape=tuple(input_shape), name=input_name)
    x = _conv_bn_relu(inputs, feature_maps, 5, name="conv1")
    for index, pool in enumerate(pools, start=1):
        x = keras.layers.MaxPooling2D(tuple(pool), strides=tuple(pool), padding="valid",
                                      name=f"pool{index}")(x)
        x = RecurrentConv2D(feature_maps, kernel_size=3, feedforward_kernel_size=1, steps=steps,
                            name=f"rcl{index + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name=name)


@register_model("strcn_a")
def build_strcn_a(*, input_shape=(922, 30, 3), num_classes: int = 3,
                  feature_maps: int = FEATURE_MAPS, steps: int = 3,
                  name: str = "strcn_a") -> keras.Model:
    """STRCN-A: the appearance network on ``d2 x T x 3`` masked-pixel sequences (Table I).

    d2 is the number of pixels the 30 % mask keeps of a 64 x 48 frame (about 922, Sec IV-A);
    ``mer_keras.inputs.appearance_inputs`` builds the matrix.
    """
    return build_strcn(input_shape=input_shape, num_classes=num_classes,
                       pools=POOLS["appearance"], feature_maps=feature_maps, steps=steps,
                       input_name="appearance", name=name)


@register_model("strcn_g")
def build_strcn_g(*, input_shape=(300, 245, 2), num_classes: int = 3,
                  feature_maps: int = FEATURE_MAPS, steps: int = 3,
                  pools: Sequence[Sequence[int]] = POOLS["geometry"],
                  name: str = "strcn_g") -> keras.Model:
    """STRCN-G: the geometric network on the ``300 x 245 x 2`` onset -> apex flow (Table I).

    ``pools`` other than Table I's adapt it to other inputs (not the paper): the 28 x 28 MEGC2019
    flows cannot pass Table I's 128-fold reduction, and ``((2, 2), (2, 2), (2, 2), (1, 1))``
    leaves them 3 x 3 before the global pooling, as Table I leaves its 296 x 241 about 2 x 1.
    """
    return build_strcn(input_shape=input_shape, num_classes=num_classes,
                       pools=[tuple(p) for p in pools], feature_maps=feature_maps, steps=steps,
                       input_name="geometry", name=name)
