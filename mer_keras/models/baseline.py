"""A linear baseline: flatten the flow and one dense layer. For tests and calibration only."""

from __future__ import annotations

import keras

from mer_keras.models import register_model


@register_model("linear")
def build_linear(*, input_shape=(28, 28, 3), num_classes: int = 3, name: str = "linear"
                 ) -> keras.Model:
    """A multinomial logistic regression on the flattened flow tensor.

    Not a paper's model: it trains in milliseconds, so tests and the calibration of the training
    core (seeds, resume, metrics) run on it, and it gives the floor any paper's network should beat.

    Args:
        input_shape: ``(H, W, C)`` of the flow tensor.
        num_classes: width of ``"logits"``.
        name: the model's name.

    Returns:
        A functional ``keras.Model`` with one input and the output dict ``{"logits": ...}``
        (pre-softmax scores).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="flow")
    x = keras.layers.Flatten(name="linear_flatten")(inputs)
    logits = keras.layers.Dense(num_classes, name="linear_logits")(x)
    return keras.Model(inputs, {"logits": logits}, name=name)
