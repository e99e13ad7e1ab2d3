"""Tests of Micro-Attention: the unit (Eqs. 1-2), ResNet-10 with and without it, weight transfer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mer_keras.layers import MicroAttention
from mer_keras.models import get_builder
from mer_keras.models.micro_attention import build_micro_attention, build_resnet10
from mer_keras.models.transfer import load_pretrained, transfer_weights

SHAPE = (32, 32, 3)
WIDTHS = (4, 8, 8, 16)  # tiny blocks: the tests check wiring, not capacity
BATCH = 2
ATTENTION_LAYERS = [f"block{i}_attention" for i in range(1, 5)]


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _images(n=BATCH, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype("float32")


def _logits(model, x, training=False):
    return _numpy(model(x, training=training)["logits"])


def _embeddings(model):
    return [_numpy(model.get_layer(name).embedding.kernel) for name in ATTENTION_LAYERS]


# Table 3 (million parameters): [17] 4.9, with micro-attention 5.9.
def test_parameter_counts_against_table3():
    plain = build_resnet10(num_classes=5).count_params()
    attention = build_micro_attention(num_classes=5).count_params()
    assert plain == 4_918_469
    assert attention == 5_963_909
    assert abs(plain - 4.9e6) < 0.05e6
    # 5.96 M is 0.064 M above the printed 5.9: Table 3 truncates (4.918 -> 4.9, 5.964 -> 5.9)
    assert (int(plain / 1e5), int(attention / 1e5)) == (49, 59)
    # the units: 3C -> C embeddings, 3 (64^2 + 128^2 + 256^2 + 512^2) + biases, the paper's +1.0 M
    assert attention - plain == 3 * (64**2 + 128**2 + 256**2 + 512**2) + (64 + 128 + 256 + 512)
    assert abs((attention - plain) - 1.0e6) < 0.05e6


def test_plain_and_attention_models_share_layer_names():
    plain = build_resnet10(input_shape=SHAPE, widths=WIDTHS)
    attention = build_micro_attention(input_shape=SHAPE, widths=WIDTHS)
    plain_names = [layer.name for layer in plain.layers]
    attention_names = [layer.name for layer in attention.layers]
    assert set(attention_names) - set(plain_names) == set(ATTENTION_LAYERS)
    assert set(plain_names) <= set(attention_names)
    assert {"conv1", "block1_conv1x1", "block1_conv3x3_a", "block4_conv3x3_b_bn", "logits"} <= \
        set(plain_names)
    assert plain.name == "resnet10" and attention.name == "micro_attention"
    assert get_builder("resnet10") is build_resnet10
    assert get_builder("micro_attention") is build_micro_attention
    # spatial sizes of ResNet-10 at 224: 112 (conv1), 56 (pool1), 56, 28, 14, 7
    full = build_resnet10(num_classes=5)
    sizes = [full.get_layer(name).output.shape[1] for name in
             ("conv1", "pool1", "block1_relu", "block2_relu", "block3_relu", "block4_relu")]
    assert sizes == [112, 56, 56, 28, 14, 7]


def test_transferred_attention_model_equals_plain_then_learns():
    plain = build_resnet10(input_shape=SHAPE, num_classes=5, widths=WIDTHS)
    attention = build_micro_attention(input_shape=SHAPE, num_classes=5, widths=WIDTHS)
    x = _images()
    report = transfer_weights(plain, attention)
    assert report.copied == [layer.name for layer in plain.layers if layer.weights]
    assert report.skipped == {}
    assert report.untouched == ATTENTION_LAYERS
    # zero W*: M = 0, O = T, the pre-trained network unchanged (in both BN modes)
    for training in (False, True):
        np.testing.assert_allclose(_logits(attention, x, training), _logits(plain, x, training),
                                   rtol=1e-5, atol=1e-6)
    assert not any(kernel.any() for kernel in _embeddings(attention))

    attention.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                      loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    attention.train_on_batch(x, {"logits": np.array([0, 3])})
    kernels = _embeddings(attention)
    assert all(kernel.any() for kernel in kernels)  # the gradient of W* is not zero
    # from zero, every output column of W* gets the same gradient (the channel mean is linear)
    for kernel in kernels:
        np.testing.assert_allclose(kernel, np.repeat(kernel[..., :1], kernel.shape[-1], -1),
                                   rtol=1e-5, atol=1e-7)
    assert not np.allclose(_logits(attention, x), _logits(plain, x))


def _unit_inputs(seed=1):
    rng = np.random.default_rng(seed)
    l_c1, l_c2, l_c3 = (rng.normal(size=(2, 3, 4, 2)).astype("float32") for _ in range(3))
    return [l_c1 + l_c3, l_c1, l_c2, l_c3]


@pytest.mark.parametrize("activation", ["linear", "sigmoid"])
def test_unit_matches_a_hand_computation(activation):
    inputs = _unit_inputs()
    layer = MicroAttention(activation=activation)
    layer(inputs)
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(1, 1, 6, 2)).astype("float32")
    bias = rng.normal(size=(2,)).astype("float32")
    layer.embedding.set_weights([kernel, bias])

    t, *features = inputs
    concat = np.concatenate(features, axis=-1)  # L_cat, 3C = 6 channels
    m = (concat @ kernel[0, 0] + bias).mean(axis=-1, keepdims=True)  # Eq. 1: 1 x H x W
    if activation == "sigmoid":
        m = 1.0 / (1.0 + np.exp(-m))
    np.testing.assert_allclose(_numpy(layer.attention_map(inputs)), m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_numpy(layer(inputs)), t * (1.0 + m), rtol=1e-5, atol=1e-6)


def test_unit_starts_as_identity_and_sigmoid_as_one_and_a_half():
    inputs = _unit_inputs()
    linear, sigmoid = MicroAttention(), MicroAttention(activation="sigmoid")
    np.testing.assert_array_equal(_numpy(linear(inputs)), inputs[0])
    np.testing.assert_allclose(_numpy(sigmoid(inputs)), 1.5 * inputs[0], rtol=1e-6)
    assert [tuple(w.shape) for w in linear.weights] == [(1, 1, 6, 2), (2,)]
    assert tuple(linear.compute_output_shape([x.shape for x in inputs])) == inputs[0].shape


def test_unit_config_round_trip():
    inputs = _unit_inputs()
    layer = MicroAttention(activation="sigmoid", kernel_initializer="he_normal", name="unit")
    expected = _numpy(layer(inputs))
    assert keras.saving.get_registered_name(MicroAttention) == "mer_keras>MicroAttention"
    clone = MicroAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is MicroAttention and restored.get_config() == layer.get_config()
    assert restored.built  # serialize() carries the build config: the list of four shapes
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(_numpy(restored(inputs)), expected, rtol=1e-6)


def test_unit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="linear"):
        MicroAttention(activation="softmax")
    inputs = _unit_inputs()
    with pytest.raises(ValueError, match="four"):
        MicroAttention()(inputs[:3])
    with pytest.raises(ValueError, match="share H x W"):
        MicroAttention()(inputs[:3] + [np.zeros((2, 2, 4, 2), "float32")])
    with pytest.raises(ValueError, match="attention_activation"):
        build_micro_attention(attention_activation="relu")


@pytest.mark.parametrize("kwargs", [dict(attention=False), dict(),
                                    dict(attention_activation="sigmoid")],
                         ids=["resnet10", "micro_attention", "micro_attention-sigmoid"])
def test_model_trains_one_step_and_round_trips_keras_file(kwargs, tmp_path):
    model = build_micro_attention(input_shape=SHAPE, num_classes=5, widths=WIDTHS, **kwargs)
    x, y = _images(), np.array([1, 4])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    before = [_numpy(w) for w in model.trainable_weights]
    logs = model.train_on_batch(x, {"logits": y}, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(b, _numpy(a)) for b, a in zip(before, model.trainable_weights))

    path = tmp_path / f"{model.name}.keras"
    keras.saving.save_model(model, path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_logits(loaded, x), _logits(model, x), rtol=1e-5, atol=1e-6)
    if model.name == "micro_attention":
        for got, want in zip(_embeddings(loaded), _embeddings(model)):
            np.testing.assert_array_equal(got, want)


def test_transfer_skips_a_classifier_of_another_width():
    plain = build_resnet10(input_shape=SHAPE, num_classes=7, widths=WIDTHS)
    attention = build_micro_attention(input_shape=SHAPE, num_classes=5, widths=WIDTHS)
    logits_before = [_numpy(w) for w in attention.get_layer("logits").weights]
    report = transfer_weights(plain, attention, skip=("conv1",))
    assert set(report.skipped) == {"logits", "conv1"}
    assert "weight shapes differ" in report.skipped["logits"]
    assert "(16, 7)" in report.skipped["logits"] and "(16, 5)" in report.skipped["logits"]
    assert report.skipped["conv1"] == "listed in skip"
    assert "logits" not in report.copied and "block4_conv3x3_b" in report.copied
    assert report.untouched == ["conv1"] + ATTENTION_LAYERS + ["logits"]
    for got, want in zip(attention.get_layer("logits").weights, logits_before):
        np.testing.assert_array_equal(_numpy(got), want)
    np.testing.assert_array_equal(_numpy(attention.get_layer("block2_conv1x1").kernel),
                                  _numpy(plain.get_layer("block2_conv1x1").kernel))
    # a prefix finds the layers of a renamed copy; nothing matches, nothing is copied
    assert transfer_weights(plain, attention, prefix="clean_").copied == []


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_load_pretrained_from_a_file(suffix, tmp_path):
    # e.g. an ImageNet ResNet-10 (here 7 classes, another input size) saved from our builder
    pretrained = build_resnet10(input_shape=(40, 40, 3), num_classes=7, widths=WIDTHS)
    path = tmp_path / f"imagenet{suffix}"
    if suffix == ".keras":
        pretrained.save(path)
    else:
        pretrained.save_weights(path)
    model = build_micro_attention(input_shape=SHAPE, num_classes=5, widths=WIDTHS)
    report = load_pretrained(model, path, builder_kwargs={"widths": WIDTHS})
    assert set(report.skipped) == {"logits"}
    assert len(report.copied) == len([layer for layer in pretrained.layers if layer.weights]) - 1
    for name in ("conv1", "conv1_bn", "block3_conv3x3_a", "block4_conv1x1_bn"):
        for got, want in zip(model.get_layer(name).weights, pretrained.get_layer(name).weights):
            np.testing.assert_array_equal(_numpy(got), _numpy(want))


# Keras warns about every container it cannot fill before it raises on the mismatched file.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_load_pretrained_refuses_unusable_files(tmp_path):
    model = build_micro_attention(input_shape=SHAPE, widths=WIDTHS)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pretrained(model, tmp_path / "absent.keras")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=".keras model or a .weights.h5"):
        load_pretrained(model, tmp_path / "weights.npz")
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="other")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="no layer"):
        load_pretrained(model, tmp_path / "other.keras")
    build_resnet10(input_shape=SHAPE, widths=(4, 8, 8, 8)).save_weights(tmp_path / "r.weights.h5")
    with pytest.raises(ValueError, match="does not load into resnet10"):
        load_pretrained(model, tmp_path / "r.weights.h5", builder_kwargs={"widths": WIDTHS})
