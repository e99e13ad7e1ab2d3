"""The unified table: mean and sd over rounds, published numbers beside, the paired difference."""

import json

import numpy as np
import pytest

from data_prep.atomic import atomic_write_csv
from mer_keras import leaderboard as lb
from mer_keras import metrics as mt

PUBLISHED = [{"paper": "fr", "table": "2", "method": "FR", "dataset": "all", "protocol": "cde",
              "splitter": "loso", "classes": "3", "metric": "uf1", "value": "0.7838"}]


def _fake_run(path, per_round_predictions, subjects):
    """A run folder with predictions.csv and metrics_per_round.csv for rounds of predictions."""
    path.mkdir(parents=True)
    predictions, per_round = [], []
    for round_index, (y_true, y_pred) in enumerate(per_round_predictions):
        for i, (t, p) in enumerate(zip(y_true, y_pred)):
            predictions.append({"round": round_index, "subject": subjects[i], "y_true": t,
                                "y_pred": p})
        scores = mt.compute_metrics(np.array(y_true), np.array(y_pred), [0, 1, 2])
        for metric, value in scores.items():
            per_round.append({"round": round_index, "database": "all", "metric": metric,
                              "value": value})
            per_round.append({"round": round_index, "database": "all",
                              "metric": f"per_fold_mean_{metric}", "value": value / 2})
    atomic_write_csv(path / "predictions.csv", predictions, ("round", "subject", "y_true",
                                                             "y_pred"))
    atomic_write_csv(path / "metrics_per_round.csv", per_round,
                     ("round", "database", "metric", "value"))
    (path / "run.json").write_text(json.dumps({"seed": 0}))


def _labels(seed, n=60):
    return np.random.default_rng(seed).integers(0, 3, n)


def test_rows_give_mean_sd_published_and_an_empty_sd_for_one_round(tmp_path):
    subjects = [f"s{i // 3}" for i in range(60)]
    y = _labels(0)
    noisy = [np.where(np.random.default_rng(s).random(60) < 0.3, (y + 1) % 3, y) for s in (1, 2)]
    _fake_run(tmp_path / "two", [(y, noisy[0]), (y, noisy[1])], subjects)
    _fake_run(tmp_path / "one", [(y, noisy[0])], subjects)
    rows = [lb.Row(run="two", model="FR", variant="v", inputs="flows",
                   published={"paper": "fr", "table": "2", "method": "FR"}),
            lb.Row(run="one", model="FR", variant="w", inputs="flows"),
            lb.Row(run="absent", model="X", variant="", inputs="")]
    lines = lb.leaderboard_rows(rows, tmp_path, PUBLISHED)
    two = [x for x in lines if x["run"] == "two" and x["pooling"] == "pooled"][0]
    values = [mt.compute_metrics(y, p, [0, 1, 2])["uf1"] for p in noisy]
    assert float(two["uf1_mean"]) == pytest.approx(np.mean(values), abs=1e-4)
    assert float(two["uf1_sd"]) == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    assert two["published_uf1"] == "0.7838" and two["n_rounds"] == 2
    per_fold = [x for x in lines if x["run"] == "two" and x["pooling"] == "per_fold_mean"][0]
    assert per_fold.get("published_uf1", "") == ""  # a paper's pooled number is not set beside a mean
    one = [x for x in lines if x["run"] == "one" and x["pooling"] == "pooled"][0]
    assert one["uf1_sd"] == "" and one["n_rounds"] == 1
    assert [x["status"] for x in lines if x["run"] == "absent"] == ["not run yet"]
    assert lb.plot_leaderboard(tmp_path / "board.png", lines, tmp_path).stat().st_size > 0


def test_uf1_and_uar_of_confusion_counts_match_the_metrics():
    y, p = _labels(3, 200), _labels(4, 200)
    counts = mt.confusion_matrix(y, p, [0, 1, 2])
    scores = mt.compute_metrics(y, p, [0, 1, 2])
    assert lb.uf1_of(counts) == pytest.approx(scores["uf1"])
    assert lb.uar_of(counts) == pytest.approx(scores["uar"])


def test_paired_difference_sees_a_real_gap_and_none_between_equals(tmp_path):
    subjects = [f"s{i // 4}" for i in range(80)]
    y = _labels(5, 80)
    good = [(y, np.where(np.random.default_rng(s).random(80) < 0.1, (y + 1) % 3, y))
            for s in range(3)]
    poor = [(y, np.where(np.random.default_rng(s + 9).random(80) < 0.6, (y + 2) % 3, y))
            for s in range(3)]
    _fake_run(tmp_path / "good", good, subjects)
    _fake_run(tmp_path / "poor", poor, subjects)
    gap = lb.paired_difference(tmp_path / "good", tmp_path / "poor", n_boot=2000)
    assert gap["difference"] > 0.3 and gap["paired_rounds"] == 3
    assert 0 < gap["bootstrap_ci_low"] < gap["difference"] < gap["bootstrap_ci_high"]
    assert gap["paired_ci_low"] > 0 and gap["bootstrap_p_not_greater"] == 0.0
    same = lb.paired_difference(tmp_path / "good", tmp_path / "good", n_boot=500)
    assert same["difference"] == 0 and same["bootstrap_ci_low"] == same["bootstrap_ci_high"] == 0
    other = [f"t{i // 4}" for i in range(80)]
    _fake_run(tmp_path / "other", good, other)
    with pytest.raises(ValueError, match="different subjects"):
        lb.paired_difference(tmp_path / "good", tmp_path / "other")


def test_the_csv_has_the_issue_columns():
    assert {"model", "variant", "inputs", "protocol", "selection", "seeds", "uf1_mean", "uf1_sd",
            "uar_mean", "uar_sd", "acc_mean", "acc_sd", "database", "pooling", "command",
            "published_uf1"} <= set(lb.COLUMNS)
