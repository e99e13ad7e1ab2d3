"""The experiment configs and the main job, end to end on a few synthetic subjects."""

import csv
import importlib
import json
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
CONFIG_MODULES = ("fr_cde", "fr_cde_ablation", "fr_single_database", "off_apexnet_cde",
                  "off_apexnet_epochs", "off_apexnet_inputs", "off_apexnet_single_database",
                  "strcn_loso", "strcn_lovo", "strcn_ablation")
#: the database a single-database protocol's runs are reported on
PROTOCOL_DATASET = {"smic_3class": "smic", "casme2_5class": "casme2", "casme2_4class": "casme2",
                    "samm_4class": "samm", "samm_5class": "samm", "casme2_samm_4class": "all"}
#: tables that are missing from the paper's text extraction (results/README.md): no row to find
UNPUBLISHED = {("off_apexnet", "10"), ("off_apexnet", "4", "loso")}  # (paper, table[, splitter])


def _experiments(module_name):
    module = importlib.import_module(f"experiments.{module_name}")
    made = (module.get_config if hasattr(module, "get_config") else module.get_configs)()
    return [made] if isinstance(made, Experiment) else list(made)


@pytest.mark.parametrize("module_name", CONFIG_MODULES)
def test_every_config_names_a_model_its_losses_and_a_published_row(module_name):
    published = read_published(PUBLISHED)
    names = [experiment.name for experiment in _experiments(module_name)]
    assert len(names) == len(set(names)), "two runs would share a folder"
    for experiment in _experiments(module_name):
        get_builder(experiment.train.model)
        for loss in experiment.train.losses.values():
            get_loss(loss, **experiment.train.loss_kwargs.get("logits", {}))
        targets = [experiment.report] if isinstance(experiment.report, dict) else experiment.report
        for report in targets:
            key = (report["paper"], str(report["table"]))
            if key in UNPUBLISHED or (*key, report.get("splitter")) in UNPUBLISHED:
                continue
            metric = "uf1" if report["paper"] == "fr" and experiment.protocol == "cde" else "acc"
            # a composite run is also reported per database (OFF-ApexNet Table 4 #14)
            datasets = ("all", "smic", "casme2", "samm") if experiment.protocol == "cde" \
                else (PROTOCOL_DATASET[experiment.protocol],)
            dataset_map = report.get("dataset_map") or {}
            values = {d: published_value(published, paper=report["paper"], table=report["table"],
                                         method=report["method"], dataset=dataset_map.get(d, d),
                                         metric=metric, classes=report.get("classes"),
                                         splitter=report.get("splitter")) for d in datasets}
            assert {d for d, v in values.items() if v is not None}, (experiment.name, report)
            dataset = dataset_map.get(datasets[0], datasets[0])
            for method in (report.get("snapshots") or {}).values():
                assert published_value(published, paper=report["paper"], table=report["table"],
                                       method=method, dataset=dataset, metric=metric) is not None


def test_strcn_configs_follow_sec_iv_a():
    for module_name in ("strcn_loso", "strcn_lovo", "strcn_ablation"):
        for experiment in _experiments(module_name):
            train = experiment.train
            assert experiment.stage == "strcn"
            assert (train.optimizer, train.learning_rate, train.momentum, train.weight_decay,
                    train.lr_decay_per_epoch, train.batch_size, train.stop_loss_delta) \
                == ("sgd", 1e-3, 0.9, 5e-4, 0.8, 20, 1e-3)
            assert train.input_array == {"strcn_g": "geometry", "strcn_a": "appearance"}[train.model]
            assert train.splitter == ("lovo" if experiment.name.endswith("lovo") else "loso")
            if "_noaug_" in experiment.name:
                assert not train.augment
            elif "_nobl_" in experiment.name:
                assert train.loss_kwargs["logits"]["balanced"] is False
            else:
                assert train.augment and train.loss_kwargs["logits"]["balanced"] is True


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


def _run_script(script, tmp_path):
    env = {**os.environ, "MER_WORK": str(tmp_path / "work")}
    result = subprocess.run(["bash", f"experiments/{script}", "--smoke", "--out",
                             str(tmp_path / "runs")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result


def _summary(run_dir):
    with open(run_dir / "summary.csv", newline="") as handle:
        return {(r["database"], r["metric"]): r for r in csv.DictReader(handle)}


@pytest.mark.slow  # the main job's smoke stays in the default run
def test_off_apexnet_script_smoke_runs_the_whole_chain(tmp_path):
    _run_script("run_off_apexnet_cde.sh", tmp_path)
    run_dir = tmp_path / "runs" / "off_apexnet_cde_synthetic_smoke"
    rows = _summary(run_dir)
    assert rows[("all", "acc")]["published"] == "0.7460"   # Table 3
    assert rows[("all", "f1")]["published"] == "0.7104"
    assert rows[("all", "uf1")]["published"] == "0.7196"   # FR Table 2's MEGC2019 re-evaluation
    assert rows[("casme2", "acc")]["published"] == "0.8828"  # Table 4 #14
    cache_json = (tmp_path / "work" / "cache" / "synthetic_smoke_cde_dcrois" / "cache.json")
    assert '"dc-rois"' in cache_json.read_text()  # SMIC's apex was spotted by D&C-RoIs
    index = (tmp_path / "work" / "cache" / "synthetic_smoke_cde_dcrois" / "index.csv").read_text()
    assert "dc-rois" in index
    assert (run_dir / "metrics_by_epoch.csv").is_file()
    assert list((tmp_path / "runs" / "tables").glob("off_apexnet_table3.*"))


@pytest.mark.slow  # the main job's smoke stays in the default run
def test_strcn_script_smoke_runs_the_whole_chain(tmp_path):
    _run_script("run_strcn_loso.sh", tmp_path)
    for model, published in (("strcn_g", "0.7230"), ("strcn_a", "0.5310")):
        run_dir = tmp_path / "runs" / f"{model}_smic_3class_synthetic_smoke"
        assert _summary(run_dir)[("smic", "acc")]["published"] == published  # Table II
        run = json.loads((run_dir / "run.json").read_text())
        assert run["config"]["model_options"] == {"feature_maps": 16}  # the reduced default
        assert run["config"]["augment"] is True
    table = {(r["method"], r["dataset"], r["splitter"], r["metric"]): r for r in
             csv.DictReader(open(tmp_path / "runs" / "tables" / "strcn_table4.csv", newline=""))}
    assert table[("STRCN-G", "smic", "loso", "acc")]["obtained"] != ""
    assert table[("STRCN-G", "smic", "lovo", "acc")]["obtained"] == ""


def test_set_overrides_any_field_with_json_and_refuses_the_rest(capsys):
    from experiments.common import _overridden, build_parser
    from experiments import strcn_loso
    parser = build_parser("test")
    args = parser.parse_args(["--data", "x", "--set", 'model_options={"feature_maps": 16}',
                              "--set", "epochs=4", "--suffix", "_synthetic"])
    experiment = _overridden(strcn_loso.get_configs()[0], args)
    assert experiment.train.model_options == {"feature_maps": 16}
    assert experiment.train.epochs == 4 and experiment.name == "strcn_g_smic_3class_synthetic"
    for bad, message in ((["--set", "feature_maps=16"], "FIELD one of"),
                         (["--set", "optimizer=adam"], "not JSON")):
        with pytest.raises(SystemExit):
            parser.parse_args(["--data", "x", *bad])
        assert message in capsys.readouterr().err


def test_synthetic_applies_the_config_s_own_reduced_settings_and_engine_chooses_the_engine():
    from experiments import fr_cde, off_apexnet_epochs, strcn_loso
    from experiments.common import _overridden, build_parser
    parser = build_parser("test")
    fr = _overridden(fr_cde.get_config(), parser.parse_args(["--data", "x", "--synthetic"]))
    assert fr.train.epochs == fr_cde.SYNTHETIC["epochs"] < fr_cde.EPOCHS
    assert fr.train.replace(epochs=fr_cde.EPOCHS, probes=True) == fr_cde.get_config().train
    assert not fr.train.probes  # the main job runs without the per-epoch probes
    assert fr.engine == "fold_parallel"
    plain = _overridden(fr_cde.get_config(), parser.parse_args(["--data", "x"]))
    assert plain.train == fr_cde.get_config().train
    strcn = _overridden(strcn_loso.get_configs()[0],
                        parser.parse_args(["--data", "x", "--synthetic", "--engine",
                                           "per_fold_fit"]))
    base = strcn_loso.get_configs()[0]
    assert strcn.train.model_options == {**base.train.model_options, "feature_maps": 16}
    assert strcn.train.epochs == 4 and strcn.engine == "per_fold_fit"
    assert base.engine == "compile_once"
    # an epoch study's snapshots keep their proportions under a reduced epoch count
    study = off_apexnet_epochs.get_config()
    reduced = _overridden(study, parser.parse_args(["--data", "x", "--epochs", "500"]))
    assert reduced.train.snapshot_epochs == tuple(e // 10 for e in study.train.snapshot_epochs)


def test_each_config_owns_its_smoke_settings_and_they_are_valid():
    from experiments.common import SMOKE
    for module_name in ("fr_cde", "off_apexnet_cde", "off_apexnet_epochs", "strcn_loso"):
        for experiment in _experiments(module_name):
            smoke = experiment.train.replace(**experiment.smoke)  # a valid TrainConfig
            assert smoke.epochs <= 2 and smoke.rounds == 1
            if experiment.train.snapshot_epochs:
                assert smoke.snapshot_epochs == (1,)
            else:
                assert experiment.smoke == SMOKE


def test_transfer_configs_target_published_rows():
    published = read_published(PUBLISHED)
    from experiments import micro_attention_cde, mtmnet_cde
    paper_cde, megc2019 = micro_attention_cde.get_configs()
    assert (paper_cde.protocol, megc2019.protocol) == ("megc2018_objective", "cde")
    report = paper_cde.report
    assert published_value(published, paper="micro_attention", table="4",
                           method=report["method"], dataset="all", metric="acc",
                           classes=5) == 0.763
    # the paper has no MEGC2019 number: that run's published column stays empty
    assert published_value(published, paper="micro_attention", table="4",
                           method=report["method"], dataset="all", metric="acc",
                           classes=3) is None
    mtm = mtmnet_cde.get_config()
    table3, table5 = mtm.report
    assert published_value(published, paper="mtmnet", table="3",
                           method=table3["method"].format(macro_label="CK+"), dataset="all",
                           metric="uf1") == 0.870
    assert published_value(published, paper="mtmnet", table="5", method=table5["method"],
                           dataset="all", metric="uar") == 0.857
    for experiment in (paper_cde, megc2019, mtm):
        assert experiment.engine == "transfer" and experiment.macro
        experiment.train.replace(**experiment.smoke)       # valid TrainConfigs
        assert experiment.train.epochs == (30 if experiment is not mtm else 20)


def test_transfer_config_without_macro_cache_is_refused_with_one_line(tmp_path, capsys):
    from experiments import mtmnet_cde
    data = tmp_path / "frames"
    cache.write_index(data, [])
    cache.write_cache_meta(data, {"kind": "frames", "protocol": "cde", "classes": ["a"]})
    assert main(mtmnet_cde.get_config, "x", ["--data", str(data)]) == 2
    assert "--macro" in capsys.readouterr().err


@pytest.mark.slow
def test_micro_attention_script_smoke_runs_the_whole_chain(tmp_path):
    _run_script("run_micro_attention_cde.sh", tmp_path)
    run_dir = tmp_path / "runs" / "micro_attention_megc2019_synthetic_smoke"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["engine"]["name"] == "transfer"
    assert run["transfer_sources"]["macro_cache"]["protocol"] == "cde"
    assert list((run_dir / "pretrained").glob("resnet10_macro_*.weights.h5"))
    assert _summary(run_dir)[("all", "uf1")]["obtained"] != ""


@pytest.mark.slow
def test_mtmnet_script_smoke_runs_the_whole_chain(tmp_path):
    _run_script("run_mtmnet_cde.sh", tmp_path)
    run_dir = tmp_path / "runs" / "mtmnet_cde_ckplus_synthetic_smoke"
    rows = _summary(run_dir)
    assert rows[("all", "uf1")]["published"] == "0.8700"    # Table 3, CK+
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["transfer"]["neutral"] == "onset"  # the synthetic clips have onsets
    assert list((run_dir / "pretrained").glob("macronet_*_encoder.weights.h5"))


def test_transfer_tables_configs_find_their_published_rows():
    from experiments import (micro_attention_hde, micro_attention_single_database,
                             mtmnet_ablation, mtmnet_single_database)
    published = read_published(PUBLISHED)
    ablation = mtmnet_ablation.get_configs()
    assert len(ablation) == 33 and len({e.name for e in ablation}) == 33
    dataset = {"cde": "all", "casme2_5class": "casme2", "smic_3class": "smic"}
    for experiment in ablation:
        metric = "uf1" if experiment.protocol == "cde" else "acc"
        assert published_value(published, paper="mtmnet", table=experiment.report["table"],
                               method=experiment.report["method"].format(macro_label="MMI"),
                               dataset=dataset[experiment.protocol], metric=metric) is not None
    hde = micro_attention_hde.get_config()
    assert hde.train.splitter == "lodo"
    assert published_value(published, paper="micro_attention", table="2",
                           method=hde.report["method"],
                           dataset=hde.report["dataset_map"]["samm"], metric="uar",
                           classes=5) == 0.427
    for experiment in micro_attention_single_database.get_configs():
        assert experiment.train.transfer["corner_crops"]
    assert {e.protocol for e in mtmnet_single_database.get_configs()} == {"casme2_5class",
                                                                         "smic_3class"}
