"""The experiment configs and the main job, end to end on a few synthetic subjects."""

import csv
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_prep import cache
from experiments import fr_single_database
from experiments.common import Experiment, PUBLISHED, main
from mer_keras.models import get_builder
from mer_keras.losses import get_loss
from mer_keras.report import published_value, read_published

REPO = Path(__file__).resolve().parents[1]
CONFIG_MODULES = ("fr_cde", "fr_cde_ablation", "fr_single_database")
SINGLE_DATABASE = {protocol: dataset for protocol, dataset, _ in fr_single_database.RUNS}


def _experiments(module_name):
    module = importlib.import_module(f"experiments.{module_name}")
    made = (module.get_config if hasattr(module, "get_config") else module.get_configs)()
    return [made] if isinstance(made, Experiment) else list(made)


@pytest.mark.parametrize("module_name", CONFIG_MODULES)
def test_every_config_names_a_model_its_losses_and_a_published_row(module_name):
    published = read_published(PUBLISHED)
    for experiment in _experiments(module_name):
        get_builder(experiment.train.model)
        for loss in experiment.train.losses.values():
            get_loss(loss)
        report = experiment.report
        metric = "uf1" if experiment.protocol == "cde" else "acc"
        dataset = "all" if experiment.protocol == "cde" else SINGLE_DATABASE[experiment.protocol]
        value = published_value(published, paper=report["paper"], table=report["table"],
                                method=report["method"], dataset=dataset, metric=metric,
                                classes=report.get("classes"))
        assert value is not None, (experiment.name, report)


def test_table5_tells_casme2_5_and_4_classes_apart():
    runs = {e.protocol: e for e in _experiments("fr_single_database")}
    published = read_published(PUBLISHED)
    values = [published_value(published, paper="fr", table="5", method="FR", dataset="casme2",
                              metric="acc", classes=runs[p].report["classes"])
              for p in ("casme2_5class", "casme2_4class")]
    assert values == [0.6285, 0.6838]


def _tiny_cache(path, protocol):
    rows = []
    for i in range(4):
        subject = f"smic/s0{i % 2 + 1}"
        rel = cache.entry_relpath(subject, f"clip{i}")
        cache.write_entry(path / rel, {"flow": np.zeros((8, 8, 3), np.float32)},
                          cache.make_provenance("test", {}, source_sha256=str(i)))
        rows.append({"database": "smic", "subject": subject, "sample": f"clip{i}",
                     "label": "negative", "entry": rel})
    cache.write_index(path, rows)
    cache.write_cache_meta(path, {"kind": "flow", "protocol": protocol,
                                  "classes": ["negative", "positive", "surprise"]})


def test_a_cache_of_another_protocol_is_refused_with_one_line(tmp_path, capsys):
    _tiny_cache(tmp_path / "cache", "smic_3class")
    import experiments.fr_cde as fr_cde
    status = main(fr_cde.get_config, "test", ["--data", str(tmp_path / "cache"),
                                              "--out", str(tmp_path / "runs")])
    assert status == 2
    err = capsys.readouterr().err
    assert "smic_3class" in err and "cde" in err and "Traceback" not in err


def test_overrides_are_typed():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.fr_cde", "--data", "x", "--epochs", "three"],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid int value: 'three'" in result.stderr


def test_main_job_smoke_runs_the_whole_chain(tmp_path):
    env = {**os.environ, "MER_WORK": str(tmp_path / "work")}
    result = subprocess.run(
        ["bash", "experiments/run_fr_cde.sh", "--smoke", "--out", str(tmp_path / "runs")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "fr_cde_synthetic_smoke"
    with open(run_dir / "summary.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["database", "metric", "obtained", "published", "difference"]
    assert {(r["database"], r["metric"]) for r in rows} >= {("all", "uf1"), ("all", "uar")}
    assert [r["published"] for r in rows if (r["database"], r["metric"]) == ("all", "uf1")] \
        == ["0.7838"]
    for name in ("predictions.csv", "metrics.csv", "run.json", "confusion_matrix.png"):
        assert (run_dir / name).is_file(), name
    assert list((tmp_path / "runs" / "tables").glob("fr_table2.*"))
    assert "Traceback" not in result.stderr
