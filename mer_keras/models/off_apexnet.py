"""OFF-ApexNet: optical-flow features from the apex frame (Gan, Liong et al., SPIC 2019).

Each optical-flow component between the onset and the apex frame, the horizontal u and the vertical
v, resized to 28 x 28 (Sec 4.2), goes through its own small CNN stream (Table 2): conv 5x5 (6) ->
2x2 max-pool -> conv 5x5 (16) -> 2x2 max-pool, all with 'same' padding and ReLU. The two flattened
7 x 7 x 16 feature maps are concatenated and classified by FC 1024 -> FC 1024 -> softmax, with
ReLU after each FC layer (Sec 3.3) and dropout 0.5 after each (Sec 4.2: "dropout ... applied after
the two fully connected layers"). About 2.66 M parameters for u + v.

One stream is built per input channel, so the u / v / u+v ablation of Table 10 is the same builder
fed one or two channels (``TrainConfig.input_channels``).
"""

from __future__ import annotations

import keras

from mer_keras.layers import ChannelSelect
from mer_keras.models import register_model

#: Table 2's streams: (filters, kernel) of Conv1 and Conv2.
CONV_LAYERS = ((6, 5), (16, 5))


def off_apexnet_stream(x, *, conv_layers=CONV_LAYERS, name: str):
    """One stream of Table 2: [conv k x k + ReLU -> 2x2 max-pool, stride 2] per conv, 'same' padding.

    Args:
        x: a ``(batch, H, W, 1)`` tensor (one flow component).
        conv_layers: ``(filters, kernel)`` of each conv.
        name: prefix of the stream's layer names.

    Returns:
        The flattened feature map (784 values for a 28 x 28 input).
    """
    for i, (filters, kernel) in enumerate(conv_layers, start=1):
        x = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu",
                                name=f"{name}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"{name}_pool{i}")(x)
    return keras.layers.Flatten(name=f"{name}_flatten")(x)


@register_model("off_apexnet")
def build_off_apexnet(*, input_shape=(28, 28, 2), num_classes: int = 3, conv_layers=CONV_LAYERS,
                      dense_units: int = 1024, dropout: float = 0.5,
                      stream_names=("u", "v"), name: str = "off_apexnet") -> keras.Model:
    """Build OFF-ApexNet (Fig. 3, Table 2).

    The streams have separate weights and are trained jointly through the merged FC layers:
    PAPER_NOTES 3.6-1 on "two independently trained CNN models ... merged", whose Eqs. (16)-(17)
    reuse one set of symbols. The pooling is plain 2x2 max pooling as in Table 2 and Eq. (15), not
    Eq. (14)'s trainable subsampling (PAPER_NOTES 3.6-2).

    Args:
        input_shape: ``(H, W, C)``; one stream per channel (u, v: C = 2; one component: C = 1).
        num_classes: width of ``"logits"``.
        conv_layers: ``(filters, kernel)`` of each stream's convs (Table 2: (6, 5), (16, 5)).
        dense_units: units of FC1 and FC2 (1024).
        dropout: dropout rate after FC1 and FC2 (0.5).
        stream_names: names of the streams in channel order (layer-name prefixes only).
        name: the model's name.

    Returns:
        A functional ``keras.Model`` with one input and the output dict ``{"logits": ...}``
        (pre-softmax; the softmax of Eq. (18) is in the loss).
    """
    input_shape = tuple(input_shape)
    channels = int(input_shape[-1])
    if channels < 1:
        raise ValueError(f"OFF-ApexNet needs at least one flow channel, got shape {input_shape}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    names = list(stream_names)[:channels]
    names += [f"c{i}" for i in range(len(names), channels)]
    inputs = keras.Input(shape=input_shape, name="flow")
    features = []
    for index, stream in enumerate(names):
        component = ChannelSelect([index], name=f"{stream}_select")(inputs)
        features.append(off_apexnet_stream(component, conv_layers=conv_layers, name=stream))
    x = features[0] if channels == 1 else keras.layers.Concatenate(name="merge")(features)
    for i in (1, 2):
        x = keras.layers.Dense(dense_units, activation="relu", name=f"fc{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, {"logits": logits}, name=name)
