"""Micro-Attention: a ResNet-10 with a micro-attention unit in every residual block (Wang et al.).

The base is the residual network of the paper's [17], which Table 3's 4.9 M parameters identify as
ResNet-10 (PAPER_NOTES 2.2 / 2.7-1): ``resnet10`` builds it. ``micro_attention`` is the same
network with a ``MicroAttention`` unit in each of its four blocks (Sec 3.2); the units add
``3C -> C`` 1 x 1 embeddings (+1.0 M, Table 3's 5.9 M). Both builders give every shared layer the
same name, so the transfer-learning recipe of Sec 3.3 (ImageNet -> macro-expression pre-training
of the plain ResNet -> add the units -> fine-tune) is ``mer_keras.models.transfer``'s
``transfer_weights(plain, attention)`` or ``load_pretrained(attention, "plain.weights.h5")``;
with the units' zero-initialised ``W*`` the attention model then computes exactly the plain one.
"""

from __future__ import annotations

from typing import Sequence

import keras

from mer_keras.layers import MicroAttention
from mer_keras.models import register_model

#: ResNet-10: BasicBlock x [1, 1, 1, 1] with these widths (PAPER_NOTES 2.2 [inferred]).
RESNET10_WIDTHS = (64, 128, 256, 512)
ATTENTION_ACTIVATIONS = ("linear", "sigmoid")

# Caffe's and torchvision's ResNets (the usual sources of ImageNet weights) use 1e-5.
_BN_EPSILON = 1e-5


def _conv(x, filters: int, size: int, stride: int, *, name: str):
    """A bias-free conv; stride 2 pads ``size // 2`` on every side first, as Caffe and PyTorch do.

    Keras' 'same' padding at stride 2 pads only bottom/right, which would shift the sampling grid
    of weights trained in those frameworks by one pixel.
    """
    if stride == 1:
        return keras.layers.Conv2D(filters, size, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", name=name)(x)
    if size > 1:
        x = keras.layers.ZeroPadding2D(size // 2, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, size, strides=stride, padding="valid", use_bias=False,
                               kernel_initializer="he_normal", name=name)(x)


def _bn(x, *, name: str):
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=name)(x)


def residual_attention_block(x, filters: int, *, stride: int, attention: bool,
                             attention_activation: str = "linear", name: str):
    """Apply one residual (attention) block of Figs 1-2 to ``x``.

    Shortcut ``L_c1 = BN(Conv1x1/stride(X))``, always a projection (Fig. 1); main path
    ``L_c2 = ReLU(BN(Conv3x3/stride(X)))`` and ``L_c3 = BN(Conv3x3(L_c2))``; ``T = L_c1 + L_c3``;
    with ``attention``, ``O = T (1 + M([L_c1, L_c2, L_c3]))`` (``MicroAttention``), else ``O = T``;
    the block returns ``ReLU(O)`` (PAPER_NOTES 2.2 [choice]).

    ``L_c2`` in the concatenation is the activated map, the one the second conv reads: Sec 3.2
    names the three maps the products of "the Conv 1x1, first Conv 3x3 and second Conv 3x3" with
    receptive fields "1x1, 3x3 and 5x5", and 5 x 5 is the field of the second conv only when it
    is applied to L_c2 (PAPER_NOTES 2.2: ``L_c3 = Conv3x3(L_c2)``); and since ``T = L_c1 + L_c3``
    is a residual sum, L_c1 and L_c3 are the normalised maps, so each of the three enters
    ``L_cat`` as the block passes it on.

    Layer names are ``{name}_conv1x1``, ``{name}_conv1x1_bn``, ``{name}_conv3x3_a``,
    ``{name}_conv3x3_a_bn``, ``{name}_conv3x3_a_relu``, ``{name}_conv3x3_b``,
    ``{name}_conv3x3_b_bn``, ``{name}_add``, ``{name}_attention`` (attention only),
    ``{name}_relu``: identical with and without attention.
    """
    l_c1 = _bn(_conv(x, filters, 1, stride, name=f"{name}_conv1x1"), name=f"{name}_conv1x1_bn")
    l_c2 = _bn(_conv(x, filters, 3, stride, name=f"{name}_conv3x3_a"),
               name=f"{name}_conv3x3_a_bn")
    l_c2 = keras.layers.ReLU(name=f"{name}_conv3x3_a_relu")(l_c2)
    l_c3 = _bn(_conv(l_c2, filters, 3, 1, name=f"{name}_conv3x3_b"), name=f"{name}_conv3x3_b_bn")
    out = keras.layers.Add(name=f"{name}_add")([l_c1, l_c3])
    if attention:
        out = MicroAttention(activation=attention_activation,
                             name=f"{name}_attention")([out, l_c1, l_c2, l_c3])
    return keras.layers.ReLU(name=f"{name}_relu")(out)


@register_model("micro_attention")
def build_micro_attention(
    *,
    input_shape: Sequence[int] = (224, 224, 3),
    num_classes: int = 3,
    attention: bool = True,
    attention_activation: str = "linear",
    widths: Sequence[int] = RESNET10_WIDTHS,
    name: str | None = None,
) -> keras.Model:
    """Build Micro-Attention's ResNet-10 with (or, ``attention=False``, without) its units.

    The input is the apex frame ``(H, W, 3)``, 224 x 224 RGB in the paper (Sec 4.1, PAPER_NOTES
    2.1). Stem: Conv 7 x 7 / 2 (64) -> BN -> ReLU -> max-pool 3 x 3 / 2; then four residual
    blocks (``residual_attention_block``) of ``widths`` (64-128-256-512) channels, stride 1 for
    the first and 2 for the others; global average pooling; FC(``num_classes``) -> ``"logits"``.
    Every conv is bias-free and followed by batch normalisation (epsilon 1e-5, as the Caffe and
    torchvision ResNets whose ImageNet weights a user may load). Compile with a from-logits
    softmax cross-entropy (Sec 4.2 implies it).

    Where the paper leaves a choice open (PAPER_NOTES 2.7):

    * Depth: "a stack of 10 residual blocks" (Sec 3.1) against Table 3's 4.9 M parameters of
      [17]; ResNet-10 (BasicBlock x [1, 1, 1, 1]) has 4.9 M, so 10 is read as layers (2.7-1).
    * ``W*``: 3C -> C, then a channel mean; linear M by default, ``"sigmoid"`` for the ablation;
      zero-initialised so that the pre-trained plain ResNet's function is where fine-tuning
      starts (2.7-2, 2.7-9); see ``MicroAttention``.
    * Eq. (2), garbled: ``O = T (1 + M)`` (2.7-3). ReLU after the attention, on O (2.7-4).
    * The shortcut is a 1 x 1 projection in every block, the first included: the unit needs
      ``L_c1`` (Fig. 2), so Fig. 1's projection block is used throughout.
    * ``L_c2`` in ``L_cat``: after BN and ReLU; see ``residual_attention_block``.
    * The authors' Caffe prototxt (PEERS 1.1) differs from the text (it concatenates the block
      input instead of L_c3 and gates with two 1 x 1 convs and a sigmoid); the text and Table 3's
      count are followed here.

    Parameters at 224 x 224 x 3 and 5 classes (``count_params()``, batch-norm statistics
    included): plain 4,918,469 (Table 3: 4.9 M); with attention 5,963,909 (Table 3: 5.9 M, so
    the paper's figures read as truncated, not rounded, to 0.1 M; the units add 1,045,440 against
    the paper's 1.0 M).

    Args:
        input_shape: ``(H, W, C)`` of the apex frame.
        num_classes: width of ``"logits"``; 5 (objective classes I-V) for CASME II / SAMM and
            CDE in the paper, 3 for SMIC. The default 3 is the registry's (PAPER_NOTES 0.2).
        attention: add a ``MicroAttention`` unit to every block; ``False`` builds the plain
            ResNet-10 of [17] (the registered ``resnet10``).
        attention_activation: ``"linear"`` (default) or ``"sigmoid"`` (ablation).
        widths: channels of the four blocks; (64, 128, 256, 512) in ResNet-10. The stem has
            ``widths[0]`` channels. Smaller widths are for tests.
        name: model name; ``"micro_attention"`` or ``"resnet10"`` by default.

    Returns:
        A functional ``keras.Model`` with one input (``"image"``) and the output dict
        ``{"logits": (batch, num_classes)}`` (pre-softmax).

    Reference:
        Chongyang Wang, Min Peng, Tao Bi, Tong Chen. "Micro-attention for micro-expression
        recognition." Neurocomputing 410 (2020) 354-362.
        https://doi.org/10.1016/j.neucom.2020.06.005
    """
    if attention_activation not in ATTENTION_ACTIVATIONS:
        raise ValueError(f"attention_activation must be one of {ATTENTION_ACTIVATIONS}, got "
                         f"{attention_activation!r}")
    widths = tuple(int(width) for width in widths)
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be four positive block widths, got {widths}")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = _conv(inputs, widths[0], 7, 2, name="conv1")
    x = keras.layers.ReLU(name="conv1_relu")(_bn(x, name="conv1_bn"))
    # x >= 0 after the ReLU, so zero padding is max-pooling's -inf padding.
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for index, width in enumerate(widths, start=1):
        x = residual_attention_block(x, width, stride=1 if index == 1 else 2,
                                     attention=attention,
                                     attention_activation=attention_activation,
                                     name=f"block{index}")
    x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    logits = keras.layers.Dense(int(num_classes), name="logits")(x)
    default_name = "micro_attention" if attention else "resnet10"
    return keras.Model(inputs, {"logits": logits}, name=name or default_name)


@register_model("resnet10")
def build_resnet10(
    *,
    input_shape: Sequence[int] = (224, 224, 3),
    num_classes: int = 3,
    widths: Sequence[int] = RESNET10_WIDTHS,
    name: str | None = "resnet10",
) -> keras.Model:
    """Build the plain ResNet-10 of the paper's [17] (Table 3: 4.9 M parameters).

    ``build_micro_attention(attention=False)``: the same layers under the same names, without
    the units, so its weights (ImageNet, then macro-expression pre-training, Sec 3.3) transfer
    by name into ``micro_attention``. See ``build_micro_attention`` for the architecture.

    Args:
        input_shape: ``(H, W, C)`` of the image.
        num_classes: width of ``"logits"`` (1000 for ImageNet weights, 5 for the pre-training).
        widths: channels of the four blocks.
        name: model name.

    Returns:
        A functional ``keras.Model``, one input, outputs ``{"logits": ...}``.

    Reference:
        Min Peng, Zhan Wu, Zhihao Zhang, Tong Chen. "From macro to micro expression recognition:
        deep learning on small datasets using transfer learning." FG 2018, 657-661.
        https://doi.org/10.1109/FG.2018.00103
    """
    return build_micro_attention(input_shape=input_shape, num_classes=num_classes,
                                 attention=False, widths=widths, name=name)
