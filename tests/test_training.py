"""Training core on a tiny fake cache: inputs, one fold, a whole run, resume, stale runs."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from data_prep import cache
from mer_keras import inputs, training
from mer_keras.training import TrainConfig
from mer_keras.training import run as run_module
from mer_keras.training import scoring

CLASSES = ["negative", "positive", "surprise"]
SUBJECTS = [("casme2", "casme2/sub01"), ("casme2", "casme2/sub02"), ("samm", "samm/006")]


def write_tiny_cache(root, n_per_subject=4, size=8, seed=0):
    """3 subjects x 4 samples of 8x8x3 flow whose mean depends on the class."""
    rng = np.random.default_rng(seed)
    rows = []
    for database, subject in SUBJECTS:
        for i in range(n_per_subject):
            label = CLASSES[i % 3]
            clip = f"clip{i}"
            rel = cache.entry_relpath(subject, clip)
            flow = rng.normal(CLASSES.index(label), 0.3, (size, size, 3)).astype(np.float32)
            cache.write_entry(root / rel, {"flow": flow},
                              cache.make_provenance("fake", {"size": size}, f"{subject}{clip}"))
            rows.append({"database": database, "subject": subject, "sample": clip,
                         "label": label, "entry": rel})
    cache.write_index(root, rows)
    cache.write_cache_meta(root, {"kind": "flow", "protocol": "cde", "classes": CLASSES})
    return root


@pytest.fixture
def tiny_cache(tmp_path):
    return write_tiny_cache(tmp_path / "cache")


def _config(**changes):
    base = dict(experiment="tiny", model="linear", epochs=2, batch_size=4, learning_rate=0.05,
                optimizer="sgd", seed=7)
    base.update(changes)
    return TrainConfig(**base)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- inputs ----------------------------------------------------------------------------------------

def test_inputs_select_normalise_and_resize():
    flow = np.stack([np.stack([np.full((4, 4), c + 10 * n) for c in range(3)], -1)
                     for n in range(2)]).astype(np.float32)
    flow[0, 0, 0, 2] = -5.0
    x = inputs.prepare_inputs(flow, channels=("strain", "u"), normalization="minmax", size=(6, 5))
    assert x.shape == (2, 6, 5, 2)
    assert float(x[0, ..., 0].min()) == 0.0 and float(x[0, ..., 0].max()) == 1.0
    assert float(np.abs(x[1]).max()) == 0.0  # a constant channel becomes 0
    raw = inputs.prepare_inputs(flow, channels=("v",))
    assert raw.shape == (2, 4, 4, 1) and raw[1, 0, 0, 0] == 11.0
    with pytest.raises(ValueError, match="unknown input channels"):
        inputs.select_channels(flow, ["w"])
    with pytest.raises(ValueError, match="normalization"):
        inputs.normalize(flow, "zscore")


def test_median_centring_puts_each_images_still_level_at_zero():
    rng = np.random.default_rng(0)
    # min-max scaled images whose zero-motion level sits at 0.2 and at 0.9
    still = np.array([0.2, 0.9])[:, None, None, None] * np.ones((2, 10, 10, 2), np.float32)
    flow = still.copy()
    flow[:, :3, :3, :] += rng.uniform(-0.1, 0.1, (2, 3, 3, 2))  # motion in one corner
    flow = np.concatenate([flow, np.zeros((2, 10, 10, 1), np.float32)], axis=-1)
    x = inputs.prepare_inputs(flow, channels=("u", "v"), normalization="median_centred")
    assert np.allclose(x[:, 5:, 5:, :], 0.0, atol=1e-6)  # the still face is 0 in both images
    assert np.allclose(x[0, :3, :3], flow[0, :3, :3, :2] - 0.2, atol=1e-6)
    assert float(np.abs(x[:, :3, :3]).max()) > 0.01


# -- config ----------------------------------------------------------------------------------------

def test_config_round_trips_through_json_and_hash_ignores_rounds():
    config = _config(input_size=(4, 4), class_weight={1: 2.0}, validation=0.3,
                     validation_use="checkpoint", model_options={"name": "x"})
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert again.config_hash() == config.config_hash()
    assert config.replace(rounds=5).config_hash() == config.config_hash()
    assert config.replace(epochs=3).config_hash() != config.config_hash()
    with pytest.raises(ValueError, match="optimizer"):
        _config(optimizer="rmsprop")
    with pytest.raises(ValueError, match="needs a validation set"):
        _config(validation_use="checkpoint")


def test_fold_seeds_are_derived_from_seed_round_and_subject():
    assert training.fold_seed(0, 0, "casme2/sub01") == training.fold_seed(0, 0, "casme2/sub01")
    assert training.fold_seed(0, 0, "casme2/sub01") != training.fold_seed(0, 1, "casme2/sub01")
    assert training.fold_seed(0, 0, "casme2/sub01") != training.fold_seed(1, 0, "casme2/sub01")


# -- one fold --------------------------------------------------------------------------------------

def test_run_fold_predicts_the_test_subject_only(tiny_cache):
    data = cache.load_cache(tiny_cache)
    test_idx = np.flatnonzero(data.subjects == "samm/006")
    train_idx = np.flatnonzero(data.subjects != "samm/006")
    result = training.run_fold(_config(), data, train_idx, test_idx, fold_seed=3)
    assert result.test_subject == "samm/006"
    assert result.y_pred.shape == (4,) and result.probabilities.shape == (4, 3)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)
    assert result.y_pred.tolist() == result.probabilities.argmax(axis=1).tolist()
    assert len(result.history["loss"]) == 2
    with pytest.raises(ValueError, match="also in the training"):
        training.run_fold(_config(), data, np.arange(len(data)), test_idx, fold_seed=3)


def test_stop_loss_delta_ends_a_fold_when_the_training_loss_stalls(tiny_cache):
    data = cache.load_cache(tiny_cache)
    test_idx = np.flatnonzero(data.subjects == "samm/006")
    train_idx = np.flatnonzero(data.subjects != "samm/006")
    # no epoch can lower the loss by 100: the second epoch is the last (the first sets the mark)
    stalled = training.run_fold(_config(epochs=6, stop_loss_delta=100.0), data, train_idx,
                                test_idx, fold_seed=3)
    assert len(stalled.history["loss"]) == 2 and stalled.best_epoch == 2
    tiny = training.run_fold(_config(epochs=3, stop_loss_delta=1e-12, learning_rate=0.01), data,
                             train_idx, test_idx, fold_seed=3)
    assert len(tiny.history["loss"]) == 3  # a falling loss trains up to the cap
    with pytest.raises(ValueError, match="stop_loss_delta"):
        _config(epochs=3, stop_loss_delta=1e-3, snapshot_epochs=(1,))


def test_run_fold_with_a_validation_checkpoint_never_uses_the_test_subject(tiny_cache):
    data = cache.load_cache(tiny_cache)
    test_idx = np.flatnonzero(data.subjects == "casme2/sub01")
    train_idx = np.flatnonzero(data.subjects != "casme2/sub01")
    config = _config(validation="same-database", validation_use="checkpoint", epochs=3)
    result = training.run_fold(config, data, train_idx, test_idx, fold_seed=1)
    # same-database: casme2/sub02 validates, samm/006 trains
    assert (result.n_train, result.n_validation) == (4, 4)
    assert "val_loss" in result.history and 1 <= result.best_epoch <= 3


def test_run_fold_is_reproducible_with_the_same_seed(tiny_cache):
    data = cache.load_cache(tiny_cache)
    test_idx = np.flatnonzero(data.subjects == "casme2/sub02")
    train_idx = np.flatnonzero(data.subjects != "casme2/sub02")
    a = training.run_fold(_config(), data, train_idx, test_idx, fold_seed=11)
    b = training.run_fold(_config(), data, train_idx, test_idx, fold_seed=11)
    assert np.array_equal(a.probabilities, b.probabilities)


# -- whole runs ------------------------------------------------------------------------------------

def test_run_protocol_writes_every_output(tiny_cache, tmp_path):
    out = tmp_path / "run"
    result = training.run_protocol(_config(), tiny_cache, out, progress=False)
    for name in ("predictions.csv", "metrics_per_fold.csv", "metrics.csv", "run.json",
                 "confusion_matrix.png", "metrics_per_round.csv"):
        assert (out / name).is_file(), name
    assert sorted(p.relative_to(out / "folds").as_posix() for p in (out / "folds").rglob("*.csv")) \
        == ["casme2/sub01.csv", "casme2/sub02.csv", "samm/006.csv"]
    fold = _read_csv(out / "folds" / "samm" / "006.csv")
    assert [r["sample"] for r in fold] == ["clip0", "clip1", "clip2", "clip3"]
    assert {"subject", "database", "y_true", "y_pred", "prob_negative"} <= set(fold[0])
    predictions = _read_csv(out / "predictions.csv")
    assert len(predictions) == 12
    metrics_rows = _read_csv(out / "metrics.csv")
    assert list(metrics_rows[0]) == ["database", "metric", "pooling", "value", "std", "n_rounds"]
    keyed = {(r["database"], r["metric"]): r for r in metrics_rows}
    assert keyed[("all", "uf1")]["pooling"] == "pooled"
    assert keyed[("all", "per_fold_mean_uf1")]["pooling"] == "per_fold_mean"
    assert {r["std"] for r in metrics_rows} == {""}  # one round: spread unknown, not 0
    assert result.std["all"]["uf1"] is None
    assert {db for db, _ in keyed} == {"all", "casme2", "samm"}
    assert float(keyed[("all", "uar")]["value"]) == pytest.approx(result.scores["all"]["uar"])
    run = json.loads((out / "run.json").read_text())
    assert run["config"] == _config().to_dict()
    assert run["cache"]["fingerprint"] == cache.fingerprint(tiny_cache)
    assert run["versions"]["keras"] and run["versions"]["mer_keras"]
    assert sorted(run["fold_seeds"]["0"]) == sorted(s for _, s in SUBJECTS)
    assert len(_read_csv(out / "metrics_per_fold.csv")) == 3
    assert len(result.trained) == 3 and result.resumed == []


# the one-model engines; the transfer engine's resume is tested in test_transfer.py
@pytest.mark.parametrize("engine", [e for e in training.ENGINES
                                    if e not in ("transfer", "sklearn")])
def test_resume_after_an_interrupted_run_retrains_only_the_missing_folds(
        tiny_cache, tmp_path, monkeypatch, engine):
    # the fold writer is patched here, so the folds must run in this process
    reference = training.run_protocol(_config(), tiny_cache, tmp_path / "ref", progress=False,
                                      folds_per_process=0, engine=engine)

    real_write = run_module.write_fold
    written = []

    def killed_after_two(path, *args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt("killed")
        written.append(path)
        return real_write(path, *args, **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr(run_module, "write_fold", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        training.run_protocol(_config(), tiny_cache, out, progress=False, folds_per_process=0,
                              engine=engine)
    finished = sorted((out / "folds").rglob("*.csv"))
    assert len(finished) == 2 and not (out / "metrics.csv").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in finished}

    monkeypatch.setattr(run_module, "write_fold", real_write)
    resumed = training.run_protocol(_config(), tiny_cache, out, progress=False,
                                    folds_per_process=0, engine=engine)
    assert len(resumed.trained) == 1 and len(resumed.resumed) == 2
    assert {p: p.stat().st_mtime_ns for p in finished} == mtimes
    assert _read_csv(out / "predictions.csv") == _read_csv(tmp_path / "ref" / "predictions.csv")
    assert resumed.scores == reference.scores
    sides = [json.loads(p.with_suffix(".json").read_text()) for p in finished]
    assert {side["engine"] for side in sides} == {engine}


def test_a_different_config_starts_over_and_moves_the_old_folds_aside(
        tiny_cache, tmp_path, capsys):
    out = tmp_path / "run"
    training.run_protocol(_config(), tiny_cache, out, progress=False, folds_per_process=0)
    result = training.run_protocol(_config(epochs=1), tiny_cache, out, progress=True,
                                   folds_per_process=0)
    assert len(result.trained) == 3 and result.resumed == []
    assert "starting over" in capsys.readouterr().err
    stale = list((out / "stale").iterdir())
    assert len(stale) == 1 and (stale[0] / "folds" / "samm" / "006.csv").is_file()
    assert json.loads((out / "run.json").read_text())["config"]["epochs"] == 1


def test_rounds_report_mean_and_std_and_smoke_limits_the_run(tiny_cache, tmp_path):
    out = tmp_path / "rounds"
    result = training.run_protocol(_config(rounds=2, epochs=1), tiny_cache, out, progress=False,
                                   folds_per_process=0)
    assert (out / "round_01" / "folds" / "samm" / "006.csv").is_file()
    assert len(result.per_round) == 2
    values = [r["all"]["uf1"] for r in result.per_round]
    assert result.scores["all"]["uf1"] == pytest.approx(np.mean(values))
    assert result.std["all"]["uf1"] == pytest.approx(np.std(values, ddof=1))
    assert len(_read_csv(out / "predictions.csv")) == 24
    assert {r["n_rounds"] for r in _read_csv(out / "metrics.csv")} == {"2"}

    smoke = training.run_protocol(_config(epochs=5, rounds=3), tiny_cache, tmp_path / "smoke",
                                  smoke=True, progress=False, folds_per_process=0)
    assert smoke.config.epochs == 1 and smoke.config.rounds == 1
    assert json.loads((tmp_path / "smoke" / "run.json").read_text())["smoke"] is True


# -- worker processes ------------------------------------------------------------------------------

def test_worker_processes_give_the_in_process_predictions_and_resume(tiny_cache, tmp_path):
    here = training.run_protocol(_config(), tiny_cache, tmp_path / "here", progress=False,
                                 folds_per_process=0)
    out = tmp_path / "workers"
    # 3 folds, 2 per process: the second process picks up where the first stopped
    workers = training.run_protocol(_config(), tiny_cache, out, progress=True, folds_per_process=2)
    assert workers.trained == here.trained and workers.scores == here.scores
    assert _read_csv(out / "predictions.csv") == _read_csv(tmp_path / "here" / "predictions.csv")

    (out / "folds" / "casme2" / "sub02.csv").unlink()  # as if the run had been killed there
    kept = {p: p.stat().st_mtime_ns for p in (out / "folds").rglob("*.csv")}
    resumed = training.run_protocol(_config(), tiny_cache, out, progress=False,
                                    folds_per_process=2)
    assert resumed.trained == [(0, "casme2/sub02")] and len(resumed.resumed) == 2
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert _read_csv(out / "predictions.csv") == _read_csv(tmp_path / "here" / "predictions.csv")


def test_an_error_in_a_worker_is_raised_with_its_message(tiny_cache, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyError, match="unknown model 'no_such_model'"):
        training.run_protocol(_config(model="no_such_model"), tiny_cache, out, progress=False,
                              folds_per_process=8)
    assert not list(out.rglob("folds/**/*.csv"))
    with pytest.raises(ValueError, match="folds_per_process"):
        training.run_protocol(_config(), tiny_cache, out, progress=False, folds_per_process=-1)


def test_epoch_study_of_each_round_is_written_beside_the_mean(tiny_cache, tmp_path):
    out = tmp_path / "run"
    training.run_protocol(_config(epochs=2, snapshot_epochs=(1,), rounds=2), tiny_cache, out,
                          progress=False, folds_per_process=0)
    per_round = _read_csv(out / "metrics_by_epoch_per_round.csv")
    assert {(r["epoch"], r["round"]) for r in per_round} == {
        ("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")}
    # the last epoch's rows are the rounds' final scores ...
    final = {(r["round"], r["database"], r["metric"]): float(r["value"])
             for r in _read_csv(out / "metrics_per_round.csv")}
    assert {(r["round"], r["database"], r["metric"]): float(r["value"])
            for r in per_round if r["epoch"] == "2"} == pytest.approx(final)
    # ... and each epoch's mean over rounds is the one in metrics_by_epoch.csv
    means = {(r["epoch"], r["database"], r["metric"]): float(r["value"])
             for r in _read_csv(out / "metrics_by_epoch.csv")}
    for key, mean in means.items():
        values = [float(r["value"]) for r in per_round
                  if (r["epoch"], r["database"], r["metric"]) == key]
        assert len(values) == 2 and np.mean(values) == pytest.approx(mean)


def test_snapshot_epochs_give_an_epoch_study_from_one_run(tiny_cache, tmp_path):
    out = tmp_path / "run"
    config = _config(epochs=3, snapshot_epochs=(2, 1))
    assert config.snapshot_epochs == (1, 2)
    training.run_protocol(config, tiny_cache, out, progress=False, folds_per_process=0)
    rows = _read_csv(out / "metrics_by_epoch.csv")
    assert sorted({int(r["epoch"]) for r in rows}) == [1, 2, 3]
    final = {(r["database"], r["metric"]): float(r["value"]) for r in _read_csv(out / "metrics.csv")}
    last = {(r["database"], r["metric"]): float(r["value"]) for r in rows if r["epoch"] == "3"}
    assert last == pytest.approx({k: v for k, v in final.items() if k in last})
    side = json.loads((out / "folds" / "samm" / "006.json").read_text())
    assert sorted(side["snapshots"]) == ["1", "2"] and len(side["snapshots"]["1"]) == 4
    # the epoch-1 snapshot is what a 1-epoch run of the same seeds predicts
    one = training.run_protocol(_config(epochs=1), tiny_cache, tmp_path / "one", progress=False,
                                folds_per_process=0)
    first = {(r["database"], r["metric"]): float(r["value"]) for r in rows if r["epoch"] == "1"}
    assert first[("all", "uf1")] == pytest.approx(one.scores["all"]["uf1"])


def test_epoch_rows_carry_the_spread_over_rounds():
    by_epoch = {100: [{"all": {"uf1": 0.6}}, {"all": {"uf1": 0.8}}],
                300: [{"all": {"uf1": 0.7}}]}
    rows = {row["epoch"]: row for row in scoring.epoch_rows(by_epoch)}
    assert rows[100]["value"] == pytest.approx(0.7) and rows[100]["n_rounds"] == 2
    assert rows[100]["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert rows[300]["std"] is None  # one round: unknown, not zero


@pytest.mark.parametrize("epochs", [[0], [3], [5]])
def test_snapshot_epochs_must_precede_the_last_epoch(epochs):
    with pytest.raises(ValueError, match="snapshot_epochs"):
        _config(epochs=3, snapshot_epochs=epochs)


def test_fields_added_later_are_hashed_only_when_set():
    # the committed FR run's config hash must not move when TrainConfig grows a field
    run = json.loads((Path(__file__).resolve().parents[1] / "results" / "fr_cde_megc442"
                      / "run.json").read_text())
    assert TrainConfig.from_dict(run["config"]).config_hash() == run["config_hash"]
    base = _config()
    for change in (dict(splitter="lovo"), dict(augment=True), dict(weight_decay=5e-4),
                   dict(lr_decay_per_epoch=0.8), dict(snapshot_epochs=(1,)),
                   dict(stop_loss_delta=1e-3)):
        assert base.replace(**change).config_hash() != base.config_hash(), change


def test_lovo_tests_every_video_once_in_stratified_folds(tiny_cache, tmp_path):
    from mer_keras.protocols import LeaveVideosOut

    labels = np.array([0, 1, 2] * 8)
    folds = list(LeaveVideosOut(4, seed=0).split(None, labels))
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(24))
    for train, test in folds:
        assert not set(train) & set(test)
        assert sorted(np.bincount(labels[test]).tolist()) == [2, 2, 2]
    with pytest.raises(ValueError, match="at least 30 videos"):
        next(LeaveVideosOut(30).split(None, labels))

    out = tmp_path / "lovo"
    result = training.run_protocol(_config(splitter="lovo", lovo_folds=4), tiny_cache, out,
                                   progress=False, folds_per_process=0)
    predictions = _read_csv(out / "predictions.csv")
    assert sorted(r["sample"] + r["subject"] for r in predictions) == sorted(
        r["sample"] + r["subject"] for r in cache.read_index(tiny_cache))
    per_fold = _read_csv(out / "metrics_per_fold.csv")
    assert [r["subject"] for r in per_fold] == ["lovo/01", "lovo/02", "lovo/03", "lovo/04"]
    assert json.loads((out / "run.json").read_text())["splitter"]["name"] == "lovo"
    assert 0 <= result.scores["all"]["acc"] <= 1


def write_sequence_cache(root, k=2, seed=0):
    """3 subjects x 3 clips of STRCN arrays: appearance frames and geometry flow, K augmentations."""
    rng = np.random.default_rng(seed)
    rows = []
    for database, subject in SUBJECTS:
        for i in range(3):
            label = CLASSES[i]
            rel = cache.entry_relpath(subject, f"clip{i}")
            frames = rng.integers(0, 50, (4, 6, 5, 3), dtype=np.uint8)
            frames[1:, :2, :2] += np.uint8(100 + 40 * i)   # class-dependent motion, top left
            arrays = {
                "appearance": frames,
                "appearance_aug": np.stack([frames] * k),
                "geometry": rng.normal(i, 0.2, (8, 8, 2)).astype(np.float16),
                "geometry_aug": rng.normal(i, 0.2, (k, 8, 8, 2)).astype(np.float16),
            }
            cache.write_entry(root / rel, arrays, cache.make_provenance("fake", {}, rel))
            rows.append({"database": database, "subject": subject, "sample": f"clip{i}",
                         "label": label, "entry": rel})
    cache.write_index(root, rows)
    cache.write_cache_meta(root, {"kind": "strcn", "protocol": "cde", "classes": CLASSES})
    return root


@pytest.mark.parametrize("array", ["appearance", "geometry"])
def test_sequence_arrays_train_with_their_augmentations(tmp_path, array):
    root = write_sequence_cache(tmp_path / "cache")
    config = _config(input_array=array, augment=True, input_channels=("u", "v"),
                     mask_fraction=0.2, weight_decay=5e-4, lr_decay_per_epoch=0.8)
    data = cache.load_cache(root, arrays=training.cache_arrays(config))
    inputs, augmented = training.prepare_model_inputs(config, data)
    if array == "appearance":
        assert inputs.shape == (9, 6, 4, 3)  # d2 = 20 % of 6 x 5 pixels, T = 4, RGB
        assert augmented.shape == (9, 2, 6, 4, 3)
    else:
        assert inputs.shape == (9, 8, 8, 2) and augmented.shape == (9, 2, 8, 8, 2)
    train_idx, test_idx = np.arange(3, 9), np.arange(0, 3)
    result = training.run_fold(config, data, train_idx, test_idx, 1, inputs=inputs,
                               augmented=augmented)
    assert result.n_train == 6 * 3  # each training video, plain and twice augmented
    assert result.test_subject == "casme2/sub01" and len(result.y_pred) == 3


def test_the_sklearn_engine_scores_a_logistic_regression_like_any_run(tiny_cache, tmp_path):
    from sklearn.linear_model import LogisticRegression

    config = _config(model="logreg", model_options={"C": 0.5}, class_weight="balanced")
    with pytest.raises(ValueError, match="use engine 'sklearn'"):
        training.run_protocol(config, tiny_cache, tmp_path / "wrong", progress=False,
                              folds_per_process=0)
    with pytest.raises(ValueError, match="not a scikit-learn model"):
        training.run_protocol(_config(), tiny_cache, tmp_path / "wrong2", progress=False,
                              folds_per_process=0, engine="sklearn")
    out = tmp_path / "logreg"
    training.run_protocol(config, tiny_cache, out, progress=False, folds_per_process=0,
                          engine="sklearn")
    data = cache.load_cache(tiny_cache)
    test = data.subjects == "samm/006"
    x = data.arrays["flow"].reshape(len(data), -1)
    expected = LogisticRegression(C=0.5, class_weight="balanced", max_iter=2000).fit(
        x[~test], data.labels[~test]).predict(x[test])
    fold = _read_csv(out / "folds" / "samm" / "006.csv")
    assert [int(r["y_pred"]) for r in fold] == expected.tolist()
    assert json.loads((out / "run.json").read_text())["engine"]["name"] == "sklearn"
