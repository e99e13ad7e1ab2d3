"""Inner cross-validation: choices made on training subjects only, recorded, and blind to the
test subject."""

import csv
import dataclasses
import json

import keras
import numpy as np
import pytest

from data_prep.cache import load_cache
from mer_keras import training
from mer_keras.models import register_model
from mer_keras.training import selection
from mer_keras.training.config import fold_seed
from mer_keras.training.workers import FoldSession
from tests.test_training import write_tiny_cache

GRID = {"grid": {"learning_rate": [0.001, 0.2], "epochs": [1, 3]}, "inner_folds": 2,
        "metric": "uf1"}


@register_model("tiny_batch_norm")
def _tiny_batch_norm(*, input_shape, num_classes, name="tiny_batch_norm"):
    """A model whose training-mode output depends on every row of its batch (BatchNorm), so a
    padded batch that held a test sample would show it."""
    inputs = keras.Input(shape=tuple(input_shape), name="flow")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(4, name="hidden")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)
    return keras.Model(inputs, {"logits": keras.layers.Dense(num_classes, name="logits")(x)},
                       name=name)


def _config(**changes):
    # batch 3 on 4-sample inner folds: every epoch ends on a padded batch
    base = dict(experiment="tiny_select", model="tiny_batch_norm", epochs=2, batch_size=3,
                learning_rate=0.05, optimizer="sgd", seed=7, selection=GRID)
    base.update(changes)
    return training.TrainConfig(**base)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_inner_groups_hold_whole_training_subjects():
    subjects = np.array([f"s{i // 3}" for i in range(30)])  # 10 subjects x 3 samples
    train_idx = np.flatnonzero(subjects != "s4")
    groups = selection.inner_groups(train_idx, subjects, 3, seed=5)
    assert sorted(np.concatenate(groups).tolist()) == train_idx.tolist()
    names = [set(subjects[g].tolist()) for g in groups]
    assert all(not (a & b) for i, a in enumerate(names) for b in names[i + 1:])
    assert "s4" not in set().union(*names)
    assert sorted(len(g) for g in groups) == [9, 9, 9]
    with pytest.raises(ValueError, match="at least 3 training subjects"):
        selection.inner_groups(train_idx[:6], subjects, 3, seed=5)


def test_selection_settings_are_checked():
    with pytest.raises(ValueError, match="selection grid must name"):
        _config(selection={"grid": {"momentum": [0.9]}})
    with pytest.raises(ValueError, match="cannot go with"):
        _config(snapshot_epochs=(1,))
    with pytest.raises(ValueError, match="inner_folds"):
        _config(selection={**GRID, "inner_folds": 1})
    assert _config().config_hash() != _config(selection={}).config_hash()
    # one selection, two spellings: one hash
    shuffled = {"grid": {"epochs": [3, 1], "learning_rate": [0.001, 0.2]}, "inner_folds": 2}
    assert _config(selection=shuffled).config_hash() == _config().config_hash()
    with pytest.raises(ValueError, match="logistic regression"):
        _config(model="logreg")


def _choices(data, config, engine="compile_once"):
    session = FoldSession(config, data, engine, width=4)
    jobs = []
    for subject in ("casme2/sub01", "samm/006"):
        test_idx = np.flatnonzero(data.subjects == subject)
        train_idx = np.flatnonzero(data.subjects != subject)
        jobs.append((0, subject, train_idx, test_idx, fold_seed(config.seed, 0, subject)))
    return session.train(jobs)


def _without_time(record):
    return {k: v for k, v in record.items() if k != "inner_seconds"}


@pytest.mark.parametrize("engine", ["compile_once", "fold_parallel"])
def test_the_choice_never_reads_the_test_subject(tmp_path, engine):
    data = load_cache(write_tiny_cache(tmp_path / "cache"))
    config = _config()
    plain = _choices(data, config, engine)
    for result in plain:
        corrupted_flow = np.array(data.arrays["flow"], copy=True)
        corrupted_flow[data.subjects == result.test_subject] = np.nan
        corrupted = dataclasses.replace(data, arrays={"flow": corrupted_flow})
        found = {r.test_subject: r
                 for r in _choices(corrupted, config, engine)}[result.test_subject]
        # the inner scores of every grid point, and so the choice, are the same to the bit
        assert _without_time(found.selection) == _without_time(result.selection)
        # the test subject's inputs are read for its final prediction, and only there
        assert np.isnan(found.probabilities).all() or not np.array_equal(
            found.probabilities, result.probabilities)
    record = plain[0].selection
    assert {(s["learning_rate"], s["epochs"]) for s in record["scores"]} == {
        (0.001, 1), (0.001, 3), (0.2, 1), (0.2, 3)}
    assert record["inner_folds"] == 2 and len(record["groups"]) == 2
    assert plain[0].test_subject not in sum(record["groups"], [])
    assert all(s["n"] == 8 for s in record["scores"])  # the two other subjects' 4 + 4 samples
    best = max(s["score"] for s in record["scores"])
    first_best = next(s for s in record["scores"] if s["score"] == best)
    assert (record["learning_rate"], record["epochs"]) == (first_best["learning_rate"],
                                                            first_best["epochs"])


def test_a_run_with_selection_records_every_choice(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache")
    out = tmp_path / "run"
    training.run_protocol(_config(), cache, out, progress=False, folds_per_process=0,
                          engine="fold_parallel")
    rows = _read_csv(out / "selection.csv")
    assert len(rows) == 3 * 4  # 3 folds x 4 grid points
    chosen = [r for r in rows if r["chosen"] == "1"]
    assert sorted(r["subject"] for r in chosen) == ["casme2/sub01", "casme2/sub02", "samm/006"]
    run = json.loads((out / "run.json").read_text())
    choices = run["selection"]["choices"]["0"]
    assert run["selection"]["settings"] == GRID
    per_fold = {r["subject"]: r for r in _read_csv(out / "metrics_per_fold.csv")}
    for row in chosen:  # each fold trained as long as its choice says
        assert int(per_fold[row["subject"]]["best_epoch"]) == int(row["epochs"])
        assert choices[row["subject"]] == {"learning_rate": float(row["learning_rate"]),
                                           "epochs": int(row["epochs"])}


def test_a_killed_selection_run_keeps_the_choices_it_made(tmp_path, monkeypatch):
    cache = write_tiny_cache(tmp_path / "cache")
    out = tmp_path / "run"
    training.run_protocol(_config(), cache, out, progress=False, folds_per_process=0,
                          engine="compile_once")
    before = {r["subject"]: r for r in _read_csv(out / "selection.csv") if r["chosen"] == "1"}
    (out / "folds" / "samm" / "006.csv").unlink()  # as if killed after samm/006's choice

    def no_inner_training(*args, **kwargs):
        raise AssertionError("the saved choice should have been reused")

    monkeypatch.setattr(selection, "choose", no_inner_training)
    result = training.run_protocol(_config(), cache, out, progress=False, folds_per_process=0,
                                   engine="compile_once")
    assert result.trained == [(0, "samm/006")]
    after = {r["subject"]: r for r in _read_csv(out / "selection.csv") if r["chosen"] == "1"}
    assert after == before
