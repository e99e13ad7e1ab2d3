"""Tests of mer_keras.layers: behaviour and get_config / serialize round trips of every layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mer_keras import layers as mer_layers
from mer_keras.layers import ChannelSelect, ExpressionAttention, MicroAttention, RecurrentConv2D

# One instance of every public layer with non-default arguments, and an input to call it on.
LAYER_CASES = {
    "ChannelSelect": (lambda: ChannelSelect([2, 0], name="pick"), (2, 4, 4, 3)),
    "ExpressionAttention": (
        lambda: ExpressionAttention(activation="sigmoid", scale=2.0,
                                    kernel_initializer="he_normal", name="att"),
        (2, 8)),
    # a list of shapes: a layer of several inputs ([t, l_c1, l_c2, l_c3])
    "MicroAttention": (
        lambda: MicroAttention(activation="sigmoid", kernel_initializer="he_normal", name="unit"),
        [(2, 4, 4, 3)] * 4),
    "RecurrentConv2D": (
        lambda: RecurrentConv2D(4, kernel_size=3, steps=2, momentum=0.9, name="rcl"),
        (2, 6, 5, 3)),
}


def test_every_public_layer_has_a_case():
    assert set(mer_layers.__all__) == set(LAYER_CASES)


@pytest.mark.parametrize("layer_name", sorted(LAYER_CASES))
def test_layer_config_round_trip(layer_name):
    make, shape = LAYER_CASES[layer_name]
    layer = make()
    rng = np.random.default_rng(0)
    x = ([rng.normal(size=s).astype("float32") for s in shape] if isinstance(shape, list)
         else rng.normal(size=shape).astype("float32"))
    y = keras.ops.convert_to_numpy(layer(x))

    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    assert keras.saving.get_registered_name(type(layer)) == f"mer_keras>{layer_name}"

    if not restored.built:
        restored.build(shape)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), y, rtol=1e-6)
    assert tuple(layer.compute_output_shape(shape)) == y.shape


def test_channel_select_picks_channels_in_order():
    x = np.arange(2 * 2 * 2 * 3, dtype="float32").reshape(2, 2, 2, 3)
    out = keras.ops.convert_to_numpy(ChannelSelect([2, 0])(x))
    np.testing.assert_array_equal(out, x[..., [2, 0]])


@pytest.mark.parametrize("indices, message", [([], "at least one"), ([-1], "non-negative"),
                                              ([1, 1], "repeat")])
def test_channel_select_rejects_bad_indices(indices, message):
    with pytest.raises(ValueError, match=message):
        ChannelSelect(indices)


def test_channel_select_rejects_missing_channel():
    with pytest.raises(ValueError, match="out of range"):
        ChannelSelect([2])(np.zeros((1, 4, 4, 2), dtype="float32"))


def test_attention_softmax_sums_to_one_over_features():
    layer = ExpressionAttention()
    z = np.random.default_rng(1).normal(size=(2, 16)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(z))
    weights = keras.ops.convert_to_numpy(layer.attention_weights(z))
    assert weights.shape == z.shape
    np.testing.assert_allclose(weights.sum(axis=-1), np.ones(2), rtol=1e-5)
    assert (weights > 0).all()
    np.testing.assert_allclose(out, weights * z, rtol=1e-6)
    assert [w.shape for w in layer.weights] == [(16, 16), (16,)]


def test_attention_scale_and_sigmoid():
    z = np.random.default_rng(2).normal(size=(2, 8)).astype("float32")
    scaled = ExpressionAttention(scale=8.0)
    scaled(z)
    weights = keras.ops.convert_to_numpy(scaled.attention_weights(z))
    np.testing.assert_allclose(weights.mean(axis=-1), np.ones(2), rtol=1e-5)
    gate = ExpressionAttention(activation="sigmoid")
    gate(z)
    weights = keras.ops.convert_to_numpy(gate.attention_weights(z))
    assert ((weights > 0) & (weights < 1)).all()
    with pytest.raises(ValueError, match="softmax"):
        ExpressionAttention(activation="relu")


def test_attention_rejects_non_vector_input():
    with pytest.raises(ValueError, match="batch, features"):
        ExpressionAttention()(np.zeros((2, 4, 4), dtype="float32"))


def _rcl_numpy(layer, x):
    """The RCL's inference output recomputed by hand from its weights, one recurrent kernel."""
    import scipy.signal

    def conv(t, kernel, bias=None):
        # 'same' cross-correlation over H, W for every (in, out) channel pair
        out = np.zeros(t.shape[:3] + (kernel.shape[-1],))
        for b in range(t.shape[0]):
            for o in range(kernel.shape[-1]):
                for i in range(kernel.shape[-2]):
                    out[b, :, :, o] += scipy.signal.correlate2d(t[b, :, :, i], kernel[:, :, i, o],
                                                                mode="same")
        return out if bias is None else out + bias

    def bn(t, norm):
        gamma, beta, mean, var = (keras.ops.convert_to_numpy(w) for w in norm.weights)
        return gamma * (t - mean) / np.sqrt(var + norm.epsilon) + beta

    w_f, b_f = (keras.ops.convert_to_numpy(w) for w in layer.feedforward.weights)
    (w_r,) = (keras.ops.convert_to_numpy(w) for w in layer.recurrent.weights)
    drive = conv(x, w_f, b_f)
    state = np.maximum(bn(drive, layer.norms[0]), 0)
    for n in range(1, layer.steps + 1):
        state = np.maximum(bn(drive + conv(state, w_r), layer.norms[n]), 0)
    return state


def test_recurrent_conv_steps_share_one_recurrent_kernel():
    layer = RecurrentConv2D(3, steps=3, name="rcl")
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 2)).astype("float32")
    layer(x)
    kernels = [w for w in layer.trainable_weights if "kernel" in w.path]
    # one feed-forward and ONE recurrent kernel, whatever the number of steps
    assert sorted(tuple(w.shape) for w in kernels) == [(1, 1, 2, 3), (3, 3, 3, 3)]
    assert len(layer.norms) == 4
    # the unrolled steps all use that kernel: the output is the hand-unrolled recurrence
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)),
                               _rcl_numpy(layer, x), rtol=1e-4, atol=1e-4)
    # and changing the one kernel changes what every step computes
    layer.recurrent.kernel.assign(np.zeros((3, 3, 3, 3), "float32"))
    zero = _rcl_numpy(layer, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), zero,
                               rtol=1e-4, atol=1e-4)


def test_recurrent_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        RecurrentConv2D(0)
    with pytest.raises(ValueError, match="steps"):
        RecurrentConv2D(4, steps=0)
