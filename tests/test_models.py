"""Tests of mer_keras.models: the registry, FR's structure and variants, training and .keras saving.

Every registered model (and every FR variant) builds, trains one step with the losses of its
outputs, and survives a ``.keras`` save / load with equal outputs; a new model is covered as soon
as it is registered.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from mer_keras.layers import ExpressionAttention
from mer_keras.losses import fr_losses, get_loss
from mer_keras.models import MODELS, get_builder, register_model
from mer_keras.models.fr import VARIANTS, build_fr, has_proposals

INPUT_SHAPE = (16, 16, 3)  # u, v, strain: the channel layout of data_prep's flow cache
BATCH = 2
NUM_CLASSES = 3
# Tiny settings for builders that take them; any other registered model builds with its defaults.
TINY = {"fr": dict(inception_filters=(2, 4), z_units=8, detector_units=4, classifier_units=4),
        "strcn_a": dict(feature_maps=4), "strcn_g": dict(feature_maps=4),
        "resnet10": dict(widths=(4, 8, 8, 16)), "micro_attention": dict(widths=(4, 8, 8, 16)),
        "mtmnet": dict(base_width=4), "resnet18": dict(base_width=4)}
# Inputs of models that need another shape: STRCN's Table I pools divide the pooled axes by 128, so
# they need at least 132 there (5 x 5 valid conv first); STRCN-A's frame axis is pooled by 8 only.
SHAPES = {"strcn_a": (132, 12, 3), "strcn_g": (132, 132, 2)}
# The loss for each output name a model may have.
OUTPUT_LOSS = {"logits": "sparse_categorical_crossentropy", "proposals": "fr_proposal"}


def _cases():
    cases = []
    for name in sorted(MODELS):
        variants = VARIANTS if name == "fr" else (None,)
        for variant in variants:
            kwargs = dict(TINY.get(name, {}))
            if variant is not None:
                kwargs["variant"] = variant
            case_id = name if variant is None else f"{name}-{variant}"
            cases.append(pytest.param(name, kwargs, id=case_id))
    return cases


def _build(name, kwargs):
    shape = SHAPES.get(name, INPUT_SHAPE)
    return get_builder(name)(input_shape=shape, num_classes=NUM_CLASSES, **kwargs)


def _data(shape=INPUT_SHAPE):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH,) + tuple(shape)).astype("float32")
    y = np.array([0, 2])
    return x, y


def _numpy(outputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.mark.parametrize("name, kwargs", _cases())
def test_model_outputs(name, kwargs):
    model = _build(name, kwargs)
    x, _ = _data(SHAPES.get(name, INPUT_SHAPE))
    outputs = _numpy(model(x, training=False))
    assert "logits" in outputs
    assert outputs["logits"].shape == (BATCH, NUM_CLASSES)
    assert len(model.inputs) == 1
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    if "proposals" in outputs:
        assert outputs["proposals"].shape == (BATCH, NUM_CLASSES)
        assert ((outputs["proposals"] > 0) & (outputs["proposals"] < 1)).all()
    assert set(outputs) <= set(OUTPUT_LOSS)


@pytest.mark.parametrize("name, kwargs", _cases())
def test_model_trains_one_step_and_round_trips_keras_file(name, kwargs, tmp_path):
    model = _build(name, kwargs)
    x, y = _data(SHAPES.get(name, INPUT_SHAPE))
    keys = list(model.output)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss={key: get_loss(OUTPUT_LOSS[key]) for key in keys},
                  loss_weights={key: (0.85 if key == "proposals" else 1.0) for key in keys})
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    logs = model.train_on_batch(x, {key: y for key in keys}, return_dict=True)
    assert np.isfinite(logs["loss"])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))

    expected = _numpy(model(x, training=False))
    path = tmp_path / f"{model.name}.keras"
    keras.saving.save_model(model, path)
    loaded = keras.saving.load_model(path)
    got = _numpy(loaded(x, training=False))
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)
    # the compiled losses come back too, so training can resume from the file
    loaded.train_on_batch(x, {key: y for key in keys})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builder_signature_is_keyword_only_with_defaults(name):
    parameters = inspect.signature(get_builder(name)).parameters
    assert {"input_shape", "num_classes"} <= set(parameters)
    for parameter in parameters.values():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter.name
        assert parameter.default is not inspect.Parameter.empty, parameter.name
    assert len(parameters["input_shape"].default) == 3  # (H, W, C)
    assert parameters["num_classes"].default == 3


def test_registry_refuses_duplicates_and_names_known_models():
    assert "fr" in MODELS
    with pytest.raises(ValueError, match="already registered"):
        register_model("fr")(lambda **kwargs: None)
    name = "test_models_dummy"
    try:
        builder = register_model(name)(lambda **kwargs: None)
        assert get_builder(name) is builder
        with pytest.raises(ValueError, match="already registered"):
            register_model(name)(builder)
    finally:
        MODELS.pop(name, None)
    with pytest.raises(KeyError, match="known models: .*fr"):
        get_builder("no_such_model")


def test_fr_losses_match_variant_outputs():
    for variant in VARIANTS:
        model = build_fr(input_shape=INPUT_SHAPE, variant=variant, **TINY["fr"])
        losses, weights = fr_losses(with_proposals=has_proposals(variant))
        assert set(losses) == set(weights) == set(model.output)


def test_fr_structure():
    model = build_fr(input_shape=INPUT_SHAPE, num_classes=4, **TINY["fr"])
    names = {layer.name for layer in model.layers}
    attentions = [layer for layer in model.layers if isinstance(layer, ExpressionAttention)]
    assert len(attentions) == 4
    assert all(a.activation == "softmax" and a.scale == 1.0 for a in attentions)
    assert {"u_select", "v_select", "u_inception1_3x3", "v_inception2_5x5", "shared_fc",
            "fusion_sum", "classifier_dropout", "logits", "proposals"} <= names
    assert model.get_layer("classifier_dropout").rate == 0.5
    # u and v streams: separate weights, same shapes
    u = model.get_layer("u_inception2_5x5").kernel
    v = model.get_layer("v_inception2_5x5").kernel
    assert u is not v and tuple(u.shape) == tuple(v.shape) == (5, 5, 4, 4)  # after the 1x1 reduce
    assert model.get_layer("u_flatten").output.shape[-1] == 4 * 4 * (4 * 4)
    assert model.get_layer("fusion_sum").output.shape[-1] == 8
    concat = build_fr(input_shape=INPUT_SHAPE, num_classes=4, variant="fr_concat", **TINY["fr"])
    assert concat.get_layer("fusion_concat").output.shape[-1] == 4 * 8
    fc = build_fr(input_shape=INPUT_SHAPE, num_classes=4, variant="fr_fc", **TINY["fr"])
    assert not any(isinstance(layer, ExpressionAttention) for layer in fc.layers)
    assert fc.get_layer("proposal3_fc").units == 8
    scaled = build_fr(input_shape=INPUT_SHAPE, attention_scale=8.0, **TINY["fr"])
    assert scaled.get_layer("proposal0_attention").scale == 8.0  # the SGD stall fix, opt-in


def test_fr_streams_read_u_and_v_only():
    model = build_fr(input_shape=INPUT_SHAPE, **TINY["fr"])
    x, _ = _data()
    changed = x.copy()
    changed[..., 2] += 5.0  # the strain channel
    np.testing.assert_allclose(_numpy(model(changed))["logits"], _numpy(model(x))["logits"])
    changed[..., 1] += 5.0  # v
    assert not np.allclose(_numpy(model(changed))["logits"], _numpy(model(x))["logits"])


def test_fr_literal_z_reading():
    model = build_fr(input_shape=INPUT_SHAPE, z_units=None, inception_filters=(2, 4),
                     detector_units=4, classifier_units=4)
    width = 2 * 4 * 4 * 16
    assert model.get_layer("fusion_sum").output.shape[-1] == width
    assert "shared_fc" not in {layer.name for layer in model.layers}


@pytest.mark.parametrize("kwargs, error", [
    (dict(variant="fr-fc"), "known variants"),
    (dict(num_classes=1), "num_classes >= 2"),
    (dict(variant="basic_inception", z_units=None), "needs z_units"),
])
def test_fr_rejects_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        build_fr(**kwargs)


# Table 7, learnable parameters (million): K = 3 on SMIC-HS, K = 4 on CASME II (4 classes) / SAMM.
TABLE7 = {("fr", 3): 10.2418e6, ("fr", 4): 11.4231e6,
          ("basic_inception", 3): 6.4803e6, ("basic_inception", 4): 6.4813e6}
# Our default counts; FR within 0.2 % of Table 7, Basic Inception within 0.5 % (the ~30 k offset
# that PAPER_NOTES 1.2 cannot explain).
OURS = {("fr", 3): 10_252_750, ("fr", 4): 11_433_936,
        ("basic_inception", 3): 6_449_867, ("basic_inception", 4): 6_450_892}
TOLERANCE = {"fr": 0.002, "basic_inception": 0.005}


@pytest.mark.parametrize("variant, k", sorted(TABLE7))
def test_default_parameter_count_against_table7(variant, k):
    count = build_fr(num_classes=k, variant=variant).count_params()
    assert count == OURS[(variant, k)]
    assert abs(count - TABLE7[(variant, k)]) / TABLE7[(variant, k)] < TOLERANCE[variant]


def test_fr_parameter_step_per_class_matches_table7():
    step = build_fr(num_classes=4).count_params() - build_fr(num_classes=3).count_params()
    assert abs(step - (TABLE7[("fr", 4)] - TABLE7[("fr", 3)])) < 300  # 1,181,186 vs 1.1813 M
