"""MTMNet: learning from macro-expressions (Xia, Wang, Wang, Chen; ACM MM 2020), its networks.

EIDNet (Sec 3.1, Fig. 2 left) is the network both MicroNet and MacroNet are made of:

* encoder E: a ResNet-18 backbone (Sec 4.1) then two branches, expression (f^e) and identity
  (f^s). The branches are not specified; each is conv3x3 (8 * base_width) + BN + ReLU, so both
  embeddings are spatial maps (PAPER_NOTES 4.2 [choice]): the discriminator "several
  convolutional layers" needs maps;
* decoder D_r: reconstructs x_E from [f_E^e, f_N^s] (Eq. 2) with "up-sampling to double feature
  map size ... convolutional layers with ReLU and Batch normalization" (Sec 4.1): five x2 steps
  (512 -> 256 -> 128 -> 64 -> 32 channels at base_width 64) and a conv3x3 to 3 channels with a
  sigmoid (images are in [0, 1]);
* expression classifier D_e and identity classifier D_s on f_E^e: global average pool + dense.

MTMNet (Sec 3.2) adds the discriminator D, "several convolutional layers ending with a linear
layer outputs a scalar value" (Sec 4.1): conv3x3/2 (4 * base_width) + LeakyReLU, conv3x3/2
(2 * base_width) + LeakyReLU, flatten, dense 1 (a logit; the losses apply the sigmoid).

The networks are separate Keras models because each has its own optimizer, learning rate and
update step (:mod:`mer_keras.transfer.mtmnet`). The registered builder ``mtmnet`` is MicroNet's
classifier, E then D_e, the model that predicts a test subject.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras

from mer_keras.models import register_model
from mer_keras.models.resnet import resnet18_features


def _conv_bn_relu(x, filters: int, *, name: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def build_encoder(*, input_shape: Sequence[int] = (224, 224, 3), base_width: int = 64,
                  name: str = "encoder") -> keras.Model:
    """E: an image -> ``{"expression": f^e, "identity": f^s}``, each H/32 x W/32 x 8 base_width."""
    inputs = keras.Input(tuple(input_shape), name="image")
    features = resnet18_features(inputs, base_width=base_width)
    width = 8 * base_width
    return keras.Model(inputs, {
        "expression": _conv_bn_relu(features, width, name="expression_branch"),
        "identity": _conv_bn_relu(features, width, name="identity_branch"),
    }, name=name)


def build_classifier(*, feature_shape: Sequence[int], num_classes: int,
                     name: str = "expression_classifier") -> keras.Model:
    """D_e or D_s: a feature map -> logits (global average pool, dense)."""
    inputs = keras.Input(tuple(feature_shape), name="features")
    pooled = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name=f"{name}_logits")(pooled),
                       name=name)


def build_decoder(*, feature_shape: Sequence[int], output_shape: Sequence[int],
                  base_width: int = 64, name: str = "decoder") -> keras.Model:
    """D_r: ``[f_E^e, f_N^s]`` (two maps) -> the reconstructed expression image in [0, 1].

    Five x2 up-samplings take a 7 x 7 map back to 224 x 224; for another input size the result
    is resized to ``output_shape`` at the end.
    """
    expression = keras.Input(tuple(feature_shape), name="expression")
    identity = keras.Input(tuple(feature_shape), name="identity")
    x = keras.layers.Concatenate(name=f"{name}_concat")([expression, identity])
    for step, factor in enumerate((8, 4, 2, 1, 0.5), start=1):
        x = keras.layers.UpSampling2D(2, name=f"{name}_up{step}")(x)
        x = _conv_bn_relu(x, max(1, int(base_width * factor)), name=f"{name}_block{step}")
    x = keras.layers.Conv2D(output_shape[-1], 3, padding="same", activation="sigmoid",
                            name=f"{name}_image")(x)
    if tuple(x.shape[1:3]) != tuple(output_shape[:2]):
        x = keras.layers.Resizing(*output_shape[:2], name=f"{name}_resize")(x)
    return keras.Model([expression, identity], x, name=name)


def build_discriminator(*, feature_shape: Sequence[int], base_width: int = 64,
                        name: str = "discriminator") -> keras.Model:
    """D: an expression embedding -> one logit, "real" = a macro-expression embedding."""
    inputs = keras.Input(tuple(feature_shape), name="embedding")
    x = inputs
    for step, factor in enumerate((4, 2), start=1):
        x = keras.layers.Conv2D(base_width * factor, 3, strides=2, padding="same",
                                name=f"{name}_conv{step}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu{step}")(x)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name=f"{name}_logit")(x), name=name)


@dataclasses.dataclass
class EIDNet:
    """The four networks of one EIDNet (MicroNet or MacroNet).

    Attributes:
        encoder: E (:func:`build_encoder`).
        expression_classifier: D_e.
        identity_classifier: D_s, ``num_identities`` wide (the subjects it is trained on).
        decoder: D_r.
    """

    encoder: keras.Model
    expression_classifier: keras.Model
    identity_classifier: keras.Model
    decoder: keras.Model

    def classifier(self, name: str = "micronet") -> keras.Model:
        """E then D_e as one model: an image -> ``{"logits": ...}``."""
        inputs = keras.Input(self.encoder.input_shape[1:], name="image")
        logits = self.expression_classifier(self.encoder(inputs)["expression"])
        return keras.Model(inputs, {"logits": logits}, name=name)


def build_eidnet(*, input_shape: Sequence[int] = (224, 224, 3), num_classes: int = 3,
                 num_identities: int = 2, base_width: int = 64, prefix: str = "") -> EIDNet:
    """A fresh EIDNet (weights from each layer's initializer)."""
    encoder = build_encoder(input_shape=input_shape, base_width=base_width,
                            name=f"{prefix}encoder")
    feature_shape = tuple(encoder.output["expression"].shape[1:])
    return EIDNet(
        encoder=encoder,
        expression_classifier=build_classifier(feature_shape=feature_shape,
                                               num_classes=num_classes,
                                               name=f"{prefix}expression_classifier"),
        identity_classifier=build_classifier(feature_shape=feature_shape,
                                             num_classes=max(2, num_identities),
                                             name=f"{prefix}identity_classifier"),
        decoder=build_decoder(feature_shape=feature_shape, output_shape=tuple(input_shape),
                              base_width=base_width, name=f"{prefix}decoder"),
    )


@register_model("mtmnet")
def build_mtmnet(*, input_shape: Sequence[int] = (224, 224, 3), num_classes: int = 3,
                 base_width: int = 64, name: str = "micronet") -> keras.Model:
    """MicroNet's classifier (E then D_e): an apex face -> ``{"logits"}``; MTMNet predicts with it.

    Training it is the transfer chain's (:mod:`mer_keras.transfer.mtmnet`), not ``model.fit``.
    """
    return build_eidnet(input_shape=input_shape, num_classes=num_classes,
                        base_width=base_width).classifier(name=name)
