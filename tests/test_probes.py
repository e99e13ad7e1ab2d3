"""Per-epoch probes: FR's attention perplexity, ||z'||/||z|| and dead units, in a run's outputs."""

import csv

import numpy as np
import pytest

from mer_keras import training
from mer_keras.models.fr import build_fr
from mer_keras.models.fr_probe import FRProbe
from mer_keras.training import probes
from tests.test_training import write_tiny_cache


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _tiny_fr(variant="fr"):
    return build_fr(input_shape=(8, 8, 2), num_classes=3, variant=variant, z_units=16,
                    inception_filters=(2, 2), detector_units=4, classifier_units=8)


def test_probe_reads_a_uniform_and_a_collapsed_attention():
    model = _tiny_fr()
    x = np.random.default_rng(0).random((32, 8, 8, 2)).astype(np.float32)
    probe = FRProbe.for_model(model)
    for layer in probe.attention:  # zero kernel: a uniform softmax over the 16 features
        layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    uniform = probe.measure(x)
    assert uniform["attention_perplexity_0"] == pytest.approx(16, rel=1e-4)
    assert uniform["attention_max_0"] == pytest.approx(1 / 16, rel=1e-4)
    z = probe.shared(x).numpy()
    live = np.linalg.norm(z, axis=1) > 0
    # z' = sum_k z / 16 = 3 z / 16
    assert uniform["fused_to_shared_norm"] == pytest.approx(3 / 16, rel=1e-4)
    assert uniform["shared_dead_fraction"] == pytest.approx(np.mean(np.all(z == 0, axis=0)))
    # a bias far above the others on feature 5: every branch attends to it alone
    bias = np.zeros(16, np.float32)
    bias[5] = 60.0
    probe.attention[1].bias.assign(bias)
    collapsed = probe.measure(x)
    assert collapsed["attention_perplexity_1"] == pytest.approx(1.0, abs=1e-3)
    assert collapsed["attention_max_1"] == pytest.approx(1.0, abs=1e-4)
    assert collapsed["attention_perplexity_0"] == pytest.approx(16, rel=1e-4)
    assert live.any()


def test_probe_of_each_variant_names_what_it_has():
    x = np.random.default_rng(1).random((8, 8, 8, 2)).astype(np.float32)
    names = {variant: set(FRProbe.for_model(_tiny_fr(variant)).measure(x))
             for variant in ("fr_fc", "fr_concat", "basic_inception")}
    assert names["basic_inception"] == {"shared_dead_fraction"}
    assert names["fr_fc"] == {"shared_dead_fraction", "fused_to_shared_norm"}
    assert {"attention_perplexity_2", "attention_max_0"} <= names["fr_concat"]


def test_switching_probes_off_keeps_the_config_hash():
    assert _fr_config().replace(probes=False).config_hash() == _fr_config().config_hash()


def test_probe_rows_are_evenly_spaced_training_rows():
    rows = np.arange(100, 1100)
    chosen = probes.probe_rows(rows, count=10)
    assert len(chosen) == 10 and chosen[0] == 100 and chosen[-1] == 1099
    assert set(chosen) <= set(rows)
    assert np.array_equal(probes.probe_rows(rows[:5], count=10), rows[:5])


def _fr_config():
    return training.TrainConfig(
        experiment="tiny_fr", model="fr",
        model_options={"variant": "fr", "z_units": 16, "inception_filters": [2, 2],
                       "detector_units": 4, "classifier_units": 8},
        input_channels=("u", "v"), normalization="minmax", optimizer="adam", learning_rate=1e-2,
        batch_size=4, epochs=2, seed=3,
        losses={"logits": "sparse_categorical_crossentropy", "proposals": "fr_proposal"},
        loss_weights={"proposals": 0.85})


def _probed_run(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache")
    out = tmp_path / "probed"
    training.run_protocol(_fr_config(), cache, out, progress=False, folds_per_process=0,
                          engine="compile_once")
    return cache, out


@pytest.mark.slow
def test_a_run_logs_probes_per_epoch_and_they_change_no_prediction(tmp_path):
    cache, out = _probed_run(tmp_path)
    rows = [r for r in _read_csv(out / "metrics_by_epoch.csv") if r["pooling"] == "training_probe"]
    perplexity = {int(r["epoch"]): float(r["value"]) for r in rows
                  if r["metric"] == "attention_perplexity_0"}
    assert sorted(perplexity) == [0, 1, 2]  # initialisation, then every epoch
    assert all(1.0 <= v <= 16.0 for v in perplexity.values())
    assert {r["metric"] for r in rows} >= {"fused_to_shared_norm", "shared_dead_fraction"}
    assert (out / "probes_by_epoch.png").stat().st_size > 0
    side = (out / "folds" / "samm" / "006.json").read_text()
    assert '"probes"' in side

    plain = tmp_path / "plain"
    training.run_protocol(_fr_config().replace(probes=False), cache, plain, progress=False,
                          folds_per_process=0, engine="compile_once")
    assert not (plain / "metrics_by_epoch.csv").exists()
    assert _read_csv(out / "predictions.csv") == _read_csv(plain / "predictions.csv")
