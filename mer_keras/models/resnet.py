"""The ResNet-18 backbone (He et al. 2016) of MTMNet's encoder, as Keras functional layers.

MTMNet Sec 4.1: "We choose ResNet18 as backbone of the encoder". The standard BasicBlock network:
conv1 7x7/2 (64) + BN + ReLU + max-pool 3x3/2, then four stages of two blocks (64, 128, 256, 512
channels, stride 2 from the second stage on), identity shortcuts except where the shape changes
(1x1 conv/2 + BN). ``base_width`` scales every width (64 is the paper's); smaller widths are
only for the quick synthetic default, and the run records them.

Layer names are stable (``<prefix>conv1``, ``<prefix>stage2_block1_conv_a``, ...), so weights
move between models by name (:func:`mer_keras.models.transfer.transfer_weights`), e.g. from a
user's ImageNet ResNet-18 saved with this builder.
"""

from __future__ import annotations

from typing import Sequence

import keras

from mer_keras.models import register_model

#: blocks per stage of ResNet-18.
RESNET18_BLOCKS = (2, 2, 2, 2)


def basic_block(x, filters: int, *, stride: int, name: str):
    """One BasicBlock: conv3x3(stride) + BN + ReLU, conv3x3 + BN, plus the shortcut, then ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                       name=f"{name}_shortcut_conv")(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                            name=f"{name}_conv_a")(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn_a")(y)
    y = keras.layers.Activation("relu", name=f"{name}_relu_a")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv_b")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn_b")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def resnet18_features(x, *, base_width: int = 64, prefix: str = ""):
    """ResNet-18 up to its last stage: ``(batch, H/32, W/32, 8 * base_width)``."""
    y = keras.layers.Conv2D(base_width, 7, strides=2, padding="same", use_bias=False,
                            name=f"{prefix}conv1")(x)
    y = keras.layers.BatchNormalization(name=f"{prefix}bn1")(y)
    y = keras.layers.Activation("relu", name=f"{prefix}relu1")(y)
    y = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{prefix}pool1")(y)
    for stage, blocks in enumerate(RESNET18_BLOCKS, start=1):
        filters = base_width * 2 ** (stage - 1)
        for block in range(1, blocks + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            y = basic_block(y, filters, stride=stride, name=f"{prefix}stage{stage}_block{block}")
    return y


@register_model("resnet18")
def build_resnet18(*, input_shape: Sequence[int] = (224, 224, 3), num_classes: int = 3,
                   base_width: int = 64, name: str = "resnet18") -> keras.Model:
    """ResNet-18 with global average pooling and a dense ``"logits"`` layer: the network whose
    ``.weights.h5`` (e.g. the user's ImageNet ResNet-18 saved with this builder, 1000 classes)
    initialises MTMNet's encoder (``--init-weights``; layers are copied by name)."""
    inputs = keras.Input(tuple(input_shape), name="image")
    features = resnet18_features(inputs, base_width=base_width)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    return keras.Model(inputs, {"logits": keras.layers.Dense(num_classes, name="logits")(pooled)},
                       name=name)
