"""The fold engines: compile-once independence, stacked = per-fold steps, modes agree, fallbacks."""

import numpy as np
import pytest

import keras

from data_prep import cache
from mer_keras.losses import fr_loss_names
from mer_keras.models import MODELS, register_model
from mer_keras.training import TrainConfig, engines, run_protocol
from mer_keras.training.compiling import make_losses, make_optimizer
from mer_keras.training.stacked import NotStackable, StackedTrainer, initial_values
from mer_keras.training.workers import FoldSession

from test_training import write_tiny_cache


def _config(**changes):
    base = dict(experiment="tiny", model="linear", epochs=3, batch_size=4, learning_rate=0.05,
                optimizer="adam", seed=7)
    base.update(changes)
    return TrainConfig(**base)


def _job(data, subject, seed):
    test_idx = np.flatnonzero(data.subjects == subject)
    return (0, subject, np.flatnonzero(data.subjects != subject), test_idx, seed)


@pytest.fixture
def tiny_data(tmp_path):
    return cache.load_cache(write_tiny_cache(tmp_path / "cache"))


# -- compile once ----------------------------------------------------------------------------------

def test_a_compile_once_fold_does_not_depend_on_the_folds_before_it(tiny_data):
    config = _config(model="off_apexnet", model_options={"dense_units": 16}, epochs=2)
    alone = FoldSession(config, tiny_data, "compile_once").train(
        [_job(tiny_data, "samm/006", 3)])[0]
    session = FoldSession(config, tiny_data, "compile_once")
    first, after = session.train([_job(tiny_data, "casme2/sub01", 5),
                                  _job(tiny_data, "samm/006", 3)])
    assert not np.allclose(first.probabilities[:1], alone.probabilities[:1])  # a real difference
    np.testing.assert_allclose(after.probabilities, alone.probabilities, rtol=1e-5, atol=1e-6)
    assert after.history["loss"] == pytest.approx(alone.history["loss"], rel=1e-5)


def test_a_fold_parallel_fold_does_not_depend_on_its_neighbours(tiny_data):
    config = _config(model="off_apexnet", model_options={"dense_units": 16}, epochs=2)
    alone = FoldSession(config, tiny_data, "fold_parallel", width=3).train(
        [_job(tiny_data, "samm/006", 3)])[0]
    grouped = FoldSession(config, tiny_data, "fold_parallel", width=3).train(
        [_job(tiny_data, "casme2/sub01", 5), _job(tiny_data, "casme2/sub02", 6),
         _job(tiny_data, "samm/006", 3)])
    np.testing.assert_allclose(grouped[2].probabilities, alone.probabilities, rtol=1e-5,
                               atol=1e-6)
    assert grouped[2].engine == "fold_parallel"


def test_initial_values_depend_on_the_seed_only():
    model = MODELS["off_apexnet"](input_shape=(8, 8, 2), num_classes=3, dense_units=8)
    a, a_state = initial_values(model, 1)
    b, _ = initial_values(model, 1)
    c, _ = initial_values(model, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert [x.shape for x in a] == [tuple(v.shape) for v in model.trainable_variables]
    # glorot kernels keep their distribution; biases start at zero; dropout seeds are redrawn
    assert 0 < np.std(a[0]) < 1 and not np.any(a[1])
    assert len(a_state) == len(model.non_trainable_variables) == 2


# -- stacked steps = per-fold steps ----------------------------------------------------------------

def _reference_weights(config, builder_kwargs, start, batches, table):
    """Keras' own ``train_on_batch`` on one fold's batches from the given initial weights."""
    x, y = table
    model = MODELS[config.model](**builder_kwargs, **config.model_options)
    model.set_weights(start)
    model.compile(optimizer=make_optimizer(config, learning_rate=config.learning_rate),
                  loss=make_losses(config),
                  loss_weights={n: config.loss_weights.get(n, 1.0) for n in config.losses})
    for rows, weights in batches:
        model.train_on_batch(x[rows], {name: y[rows] for name in config.losses},
                             sample_weight=weights)
    weights = model.get_weights()
    keras.backend.clear_session()
    return weights


_OFF_ADAM = _config(model="off_apexnet", model_options={"dense_units": 12, "dropout": 0.0},
                   optimizer="adam", weight_decay=0.01, learning_rate=0.01)
_OFF_SGD = _config(model="off_apexnet", model_options={"dense_units": 12, "dropout": 0.0},
                   optimizer="sgd", momentum=0.9, learning_rate=0.05)
_FR = _config(model="fr", model_options={"inception_filters": (2, 3), "z_units": 16,
                                         "detector_units": 4, "classifier_units": 8,
                                         "dropout": 0.0},
              optimizer="adam", learning_rate=0.01,
              **dict(zip(("losses", "loss_weights"), fr_loss_names(0.85, with_proposals=True))))


# the whole-step XLA program (the GPU path) is checked on OFF-ApexNet: FR's takes a minute here
@pytest.mark.parametrize("config, jit_compile", [
    (_OFF_ADAM, False), (_OFF_SGD, False), (_FR, False), (_OFF_ADAM, True)],
    ids=["off_apexnet-adam-decay", "off_apexnet-sgd-momentum", "fr-adam-two-losses",
         "off_apexnet-adam-decay-xla"])
def test_k_stacked_steps_equal_k_per_fold_keras_steps(config, jit_compile):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    kwargs = {"input_shape": (8, 8, 2), "num_classes": 3}
    width, steps, batch = 3, 4, 5
    trainer = StackedTrainer(config, (8, 8, 2), 3, width=width, jit_compile=jit_compile)
    trainer.set_table(x, y)
    starts, schedules = [], []
    for slot in range(width):
        trainer.reset(slot, 100 + slot)
        starts.append(trainer.weights(slot))
        # unequal folds: slot 1 has a short last batch, slot 2 sits the last step out
        sizes = [batch] * (steps - 1) + [[batch, 2, 0][slot]]
        schedules.append([(rng.choice(40, size, replace=False),
                           rng.uniform(0.5, 2.0, size).astype(np.float32)) for size in sizes])
    for step in range(steps):
        index = np.zeros((width, batch), np.int64)
        weight = np.zeros((width, batch), np.float32)
        mask = np.zeros((width, batch), np.float32)
        for slot in range(width):
            rows, weights = schedules[slot][step]
            index[slot, :len(rows)], weight[slot, :len(rows)], mask[slot, :len(rows)] = \
                rows, weights, 1
        trainer.train_step(index, weight, mask, np.full(width, config.learning_rate, np.float32))
    for slot in range(width):
        expected = _reference_weights(config, kwargs, starts[slot],
                                      [s for s in schedules[slot] if len(s[0])], (x, y))
        got = trainer.weights(slot)
        assert len(got) == len(expected)
        for g, e, s in zip(got, expected, starts[slot]):
            np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-6)
        assert any(not np.allclose(g, s) for g, s in zip(got, starts[slot]))  # it trained


# -- modes agree over seeds ------------------------------------------------------------------------

def _noisy_cache(root, subjects=5, per_subject=6, noise=2.5, seed=0):
    """A harder tiny cache: class means 1 apart under heavy noise (UF1 well below 1)."""
    rng = np.random.default_rng(seed)
    classes = ["negative", "positive", "surprise"]
    rows = []
    for s in range(subjects):
        subject = f"casme2/sub{s:02d}"
        for i in range(per_subject):
            label = classes[i % 3]
            rel = cache.entry_relpath(subject, f"clip{i}")
            flow = rng.normal(classes.index(label), noise, (6, 6, 3)).astype(np.float32)
            cache.write_entry(root / rel, {"flow": flow},
                              cache.make_provenance("fake", {}, f"{subject}{i}"))
            rows.append({"database": "casme2", "subject": subject, "sample": f"clip{i}",
                         "label": label, "entry": rel})
    cache.write_index(root, rows)
    cache.write_cache_meta(root, {"kind": "flow", "protocol": "cde", "classes": classes})
    return root


@pytest.mark.slow  # 40 s: five seeds of two engines
def test_the_pooled_uf1_of_the_modes_agrees_within_seed_noise(tmp_path):
    data_dir = _noisy_cache(tmp_path / "noisy")
    scores = {}
    for engine in ("per_fold_fit", "fold_parallel"):
        scores[engine] = [
            run_protocol(_config(seed=seed, epochs=4, learning_rate=0.02), data_dir,
                         tmp_path / f"{engine}{seed}", progress=False, folds_per_process=0,
                         engine=engine).scores["all"]["uf1"]
            for seed in range(5)]
    a, b = (np.array(scores[e]) for e in ("per_fold_fit", "fold_parallel"))
    assert 0.2 < a.mean() < 0.95 and 0.2 < b.mean() < 0.95  # neither trivial nor perfect
    noise = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) <= 3 * noise + 0.02, scores


# -- fallbacks -------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="mer_keras_tests")
class _Scale(keras.layers.Layer):
    """A weight with no initializer in the layer's config: the stacked engines cannot redraw it."""

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.factor


if "test_unresettable" not in MODELS:
    @register_model("test_unresettable")
    def _build_unresettable(*, input_shape=(6, 6, 3), num_classes=3):
        inputs = keras.Input(shape=input_shape, name="flow")
        x = keras.layers.Flatten()(_Scale()(inputs))
        return keras.Model(inputs, {"logits": keras.layers.Dense(num_classes)(x)})


def test_a_model_that_cannot_be_stacked_falls_back_to_per_fold_fit_and_says_so_once(
        tmp_path, capsys):
    data_dir = write_tiny_cache(tmp_path / "cache")
    with pytest.raises(NotStackable, match="factor"):
        initial_values(MODELS["test_unresettable"](), 0)
    result = run_protocol(_config(model="test_unresettable", epochs=1), data_dir, tmp_path / "run",
                          progress=True, folds_per_process=0, engine="fold_parallel")
    err = capsys.readouterr().err
    assert result.engine == "per_fold_fit" and len(result.trained) == 3
    assert err.count("training each fold with its own model (per_fold_fit)") == 1


def test_folds_that_do_not_fit_in_memory_together_fall_back_to_compile_once(
        tmp_path, capsys, monkeypatch):
    data_dir = write_tiny_cache(tmp_path / "cache")
    monkeypatch.setattr(engines, "MEMORY_BUDGET", 1000)
    result = run_protocol(_config(epochs=1), data_dir, tmp_path / "run", progress=True,
                          folds_per_process=0, engine="fold_parallel")
    assert result.engine == "compile_once"
    assert capsys.readouterr().err.count("(compile_once)") == 1


# -- fit's features in the stacked engines ---------------------------------------------------------

@pytest.mark.parametrize("engine", ["compile_once", "fold_parallel"])
def test_stacked_folds_stop_validate_and_checkpoint_as_fit_does(tiny_data, engine):
    def train(config, subject="samm/006"):
        return FoldSession(config, tiny_data, engine, 2).train([_job(tiny_data, subject, 3)])[0]

    # no epoch can lower the loss by 100: the second epoch is the last (the first sets the mark)
    stalled = train(_config(epochs=6, stop_loss_delta=100.0))
    assert len(stalled.history["loss"]) == 2 and stalled.best_epoch == 2
    assert len(train(_config(epochs=3, stop_loss_delta=1e-12, learning_rate=0.01)
                     ).history["loss"]) == 3
    # same-database validation: casme2/sub02 validates, samm/006 trains; the test subject never
    checked = train(_config(validation="same-database", validation_use="checkpoint", epochs=4),
                    subject="casme2/sub01")
    assert (checked.n_train, checked.n_validation) == (4, 4)
    losses = checked.history["val_loss"]
    assert len(losses) == 4 and checked.best_epoch == int(np.argmin(losses)) + 1
    balanced = train(_config(class_weight="balanced", epochs=2))
    assert np.allclose(balanced.probabilities.sum(axis=1), 1.0)
