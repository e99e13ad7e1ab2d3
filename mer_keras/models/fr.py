"""FR: Feature Refinement with expression-specific feature learning and fusion (Zhou et al. 2022).

Three stages (Fig. 1): a two-stream Inception backbone on the u and v optical-flow components
learns an expression-shared feature z (Sec 3.1); an expression proposal module distils K
expression-specific features ``z*_k = softmax(FC_k(z)) * z``, each watched by a sigmoid detector
(Sec 3.2); their element-wise sum is classified by FC -> Dropout(0.5) -> FC(K) (Sec 3.3). The total
loss ``L = lambda L_prop + L_cls`` (Eq. 8, lambda = 0.85) is ``mer_keras.losses.fr_losses``.

The ablation variants of Table 1 are chosen with ``build_fr(variant=...)``; see ``VARIANTS``.
"""

from __future__ import annotations

from typing import Sequence

import keras

from mer_keras.layers import ChannelSelect, ExpressionAttention
from mer_keras.models import register_model

#: Table 1's models. "dual_inception" and "basic_inception" build the same network: Table 1(a)
#: says they differ only in the apex frame fed to the optical flow (the middle frame for
#: Dual-Inception [38], interframe-Diff / ground-truth apex for Basic Inception), which is data
#: preparation, not model.
VARIANTS = ("fr", "fr_fc", "fr_concat", "basic_inception", "dual_inception")

_WITH_PROPOSALS = ("fr", "fr_fc", "fr_concat")


def has_proposals(variant: str) -> bool:
    """Whether ``variant`` has the expression proposal module, i.e. a ``"proposals"`` output."""
    _check_variant(variant)
    return variant in _WITH_PROPOSALS


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown FR variant {variant!r}; known variants: {', '.join(VARIANTS)}")


def inception_v1_block(x, filters: int, *, activation: str = "relu", name: str):
    """Apply an Inception-V1 block (Szegedy et al. 2015) with ``filters`` filters in every conv.

    Four parallel branches with 'same' padding, concatenated on channels (``4 * filters``):
    1x1 conv; 1x1 conv -> 3x3 conv; 1x1 conv -> 5x5 conv; 3x3 max-pool (stride 1) -> 1x1 conv.
    This is the block of the authors' Dual-Inception code ([ext] in PAPER_NOTES 1.2), which FR
    names as its backbone (Sec 4.3 (1)); every conv is followed by ``activation``.

    Args:
        x: a ``(batch, H, W, C)`` tensor.
        filters: filters of every conv in the block.
        activation: activation of every conv.
        name: prefix of the block's layer names.
    """
    def conv(tensor, size, suffix):
        return keras.layers.Conv2D(filters, size, padding="same", activation=activation,
                                   name=f"{name}_{suffix}")(tensor)

    branch_1x1 = conv(x, 1, "1x1")
    branch_3x3 = conv(conv(x, 1, "3x3_reduce"), 3, "3x3")
    branch_5x5 = conv(conv(x, 1, "5x5_reduce"), 5, "5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, 1, "pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(
        [branch_1x1, branch_3x3, branch_5x5, branch_pool])


def _stream(x, channels: Sequence[int], stream: str, filters: Sequence[int], activation: str):
    """One stream: select its channels, then (Inception -> 2x2 max-pool) per filter count."""
    x = ChannelSelect(list(channels), name=f"{stream}_select")(x)
    for depth, count in enumerate(filters, start=1):
        x = inception_v1_block(x, count, activation=activation, name=f"{stream}_inception{depth}")
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"{stream}_pool{depth}")(x)
    return keras.layers.Flatten(name=f"{stream}_flatten")(x)


@register_model("fr")
def build_fr(
    *,
    input_shape: Sequence[int] = (28, 28, 2),
    num_classes: int = 3,
    variant: str = "fr",
    stream_channels: Sequence[Sequence[int]] = ((0,), (1,)),
    inception_filters: Sequence[int] = (6, 16),
    z_units: int | None = 1024,
    attention_activation: str = "softmax",
    attention_scale: float = 1.0,
    detector_units: int = 128,
    classifier_units: int = 256,
    dropout: float = 0.5,
    activation: str = "relu",
    name: str | None = None,
) -> keras.Model:
    """Build FR (or one of its Table 1 ablation variants) as a functional ``keras.Model``.

    The one input is the flow tensor ``(H, W, C)``; each stream of the two-stream Inception
    backbone takes its channels through ``ChannelSelect`` (channel 0 = u, channel 1 = v by
    default), runs Inception(6) -> MaxPool 2x2 -> Inception(16) -> MaxPool 2x2 -> Flatten with its
    own weights, and the flattened streams are concatenated (6272-d at 28 x 28) and mapped by
    FC(``z_units``, ReLU) to the expression-shared feature z. For each class k the proposal
    module computes ``z*_k = softmax(FC_k(z)) * z`` (``ExpressionAttention``) and a detector
    ``p_k = sigmoid(FC(1)(FC(detector_units, ReLU)(z*_k)))``; the fusion ``z' = sum_k z*_k``
    goes through FC(``classifier_units``, ReLU) -> Dropout(``dropout``) -> FC(K). The outputs are
    a dict: ``"logits"`` (``(batch, K)``, pre-softmax; Eq. 7's softmax is in the loss) and, for
    the variants with a proposal module, ``"proposals"`` (``(batch, K)``, the p_k). Compile with
    ``mer_keras.losses.fr_losses(0.85, with_proposals=has_proposals(variant))``.

    Where the paper leaves a choice open (PAPER_NOTES 1.6):

    * Size of z (``z_units``). Sec 3.1 reads "the flattened two sets of feature maps are
      concentrated into an expression-shared feature", i.e. z = the 6272-d concatenation, and
      Eq. 2 says a_k "has the same dimension as z". A 6272 x 6272 attention FC per branch (39 M
      parameters) contradicts Table 7 (FR adds 3.76 M for K = 3 and 1.18 M per extra class),
      which fits a 1024-d z: the FC-1024 (ReLU) of Basic Inception. Default 1024; ``None`` gives
      the literal 6272-d reading.
    * Softmax axis (``attention_activation``). "After activated by Softmax, we gain the attention
      weight of z ... a_k is a vector that has the same dimension as z" (Sec 3.2): a softmax over
      the feature axis, so every a_k sums to 1 and z*_k is about z / 1024 at initialisation.
      Checked here (synthetic 3-class flows, 256 samples, batch 32): with the paper's plain SGD
      (lr 1e-3, no momentum; also lr 1e-2) this literal FR stays at chance loss for 800 steps
      while Basic Inception and FR-fc learn; with Adam (1e-3 or 1e-4) it learns after a slow
      start. The documented fix for SGD is ``attention_scale=z_units`` (mean weight 1, so z*_k
      keeps the scale of z), which then trains like FR-fc. ``"sigmoid"`` gates are also offered.
      Neither is in the paper; the default stays the literal reading.
    * Hidden sizes. Detector k "contains two fully connected layers with a Sigmoid layer as the
      output" (Sec 3.2) and the classifier "consists of two fully connected layers" with Dropout
      0.5 after the first (Sec 3.3); no widths are given. Solving Table 7's two FR counts gives a
      detector width of about 128 and a classifier width of about 245: defaults 128 and 256.
    * Activations are not stated: ReLU in every hidden conv and FC (as the authors'
      Dual-Inception code), ``activation``.
    * Input channels (``stream_channels``). Sec 3.1: "two optical flow components are extracted";
      one channel per stream, u = channel 0 and v = channel 1 of the flow tensor (a third
      channel, such as optical strain, is ignored). The Dual-Inception code reads each component
      as a 3-channel image; for such an input pass e.g. ``((0, 1, 2), (3, 4, 5))``.
    * FR-fc (Table 1(b)) "only uses fully-connected layers in the proposal module": z*_k =
      FC_k(z) with ``activation``, same width as z, detectors and sum fusion kept.
    * FR-concatenated (Table 1(c)) "directly concatenates the expression-specific features"
      instead of summing them; the rest is FR.
    * Basic Inception / Dual-Inception (Table 1(a)): backbone -> FC(``z_units``, ReLU) -> FC(K);
      no proposal module, so the only output is ``"logits"``.

    Parameter count (learnable, 28 x 28 x 2 input, defaults) against Table 7:

    ==================  ========  ================  =========  ================
    model               K = 3     Table 7 (SMIC-HS) K = 4      Table 7 (CASME II)
    ==================  ========  ================  =========  ================
    Basic Inception     6,449,867 6,480,300         6,450,892  6,481,300
    FR                  10,252,750 10,241,800       11,433,936 11,423,100
    ==================  ========  ================  =========  ================

    FR is within 0.11 % of Table 7 for both K; Basic Inception is 0.47 % below (the ~30 k offset
    of PAPER_NOTES 1.2, unexplained; 3-channel streams would add only 96).

    Args:
        input_shape: ``(H, W, C)`` of the flow tensor; 28 x 28 in the paper (Sec 4.2).
        num_classes: K, the number of classes (and of proposal branches); at least 2.
        variant: one of ``VARIANTS``: ``"fr"`` (full model), ``"fr_fc"``, ``"fr_concat"``,
            ``"basic_inception"``, ``"dual_inception"``.
        stream_channels: the input channels of each stream, one stream per entry.
        inception_filters: filters of the successive Inception blocks; (6, 16) in the paper.
        z_units: width of z, the FC after the concatenated streams; ``None``: no FC, z is the
            concatenation itself (not possible for the Basic/Dual-Inception variants).
        attention_activation: ``"softmax"`` (paper) or ``"sigmoid"``.
        attention_scale: constant factor on the attention weights; 1.0 is the paper.
        detector_units: width of each detector's hidden FC.
        classifier_units: width of the classifier's hidden FC.
        dropout: dropout rate after the classifier's hidden FC; 0.5 in the paper.
        activation: activation of every hidden conv and FC layer.
        name: model name; defaults to the variant.

    Returns:
        A ``keras.Model`` with one input and a dict of outputs (``"logits"``, and
        ``"proposals"`` where ``has_proposals(variant)``).

    Reference:
        Ling Zhou, Qirong Mao, Xiaohua Huang, Feifei Zhang, Zhihong Zhang. "Feature refinement:
        An expression-specific feature learning and fusion method for micro-expression
        recognition." Pattern Recognition 122 (2022) 108275.
        https://doi.org/10.1016/j.patcog.2021.108275
    """
    _check_variant(variant)
    num_classes = int(num_classes)
    if num_classes < 2:
        raise ValueError(
            f"FR needs num_classes >= 2 (one proposal branch per class), got {num_classes}")
    if len(stream_channels) < 1:
        raise ValueError("FR needs at least one stream in stream_channels")
    if z_units is None and not has_proposals(variant):
        raise ValueError(f"variant {variant!r} needs z_units (its FC before the softmax layer)")

    inputs = keras.Input(shape=tuple(input_shape), name="flow")
    stream_names = ("u", "v") if len(stream_channels) == 2 else tuple(
        f"stream{i}" for i in range(len(stream_channels)))
    flats = [_stream(inputs, channels, stream, inception_filters, activation)
             for stream, channels in zip(stream_names, stream_channels)]
    shared = (keras.layers.Concatenate(axis=-1, name="shared_concat")(flats)
              if len(flats) > 1 else flats[0])
    if z_units is not None:
        shared = keras.layers.Dense(int(z_units), activation=activation, name="shared_fc")(shared)

    if not has_proposals(variant):
        logits = keras.layers.Dense(num_classes, name="logits")(shared)
        return keras.Model(inputs, {"logits": logits}, name=name or variant)

    width = shared.shape[-1]
    specific, detections = [], []
    for k in range(num_classes):
        if variant == "fr_fc":
            z_k = keras.layers.Dense(width, activation=activation, name=f"proposal{k}_fc")(shared)
        else:
            z_k = ExpressionAttention(activation=attention_activation, scale=attention_scale,
                                      name=f"proposal{k}_attention")(shared)
        specific.append(z_k)
        hidden = keras.layers.Dense(detector_units, activation=activation,
                                    name=f"detector{k}_fc")(z_k)
        detections.append(
            keras.layers.Dense(1, activation="sigmoid", name=f"detector{k}_out")(hidden))
    proposals = keras.layers.Concatenate(axis=-1, name="proposals")(detections)

    if variant == "fr_concat":
        fused = keras.layers.Concatenate(axis=-1, name="fusion_concat")(specific)
    else:
        fused = keras.layers.Add(name="fusion_sum")(specific)
    hidden = keras.layers.Dense(classifier_units, activation=activation,
                                name="classifier_fc")(fused)
    hidden = keras.layers.Dropout(dropout, name="classifier_dropout")(hidden)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    return keras.Model(inputs, {"logits": logits, "proposals": proposals}, name=name or variant)
