"""Report: summary.csv columns and values, and regenerating the tables from run folders."""

import csv
import json

import numpy as np
import pytest

from data_prep import cache
from mer_keras import report

PUBLISHED = """paper,table,method,dataset,protocol,splitter,classes,metric,value
fr,1b,FR,all,cde,loso,3,uf1,0.7838
fr,1b,FR,all,cde,loso,3,uar,0.7832
fr,1b,FR-fc,all,cde,loso,3,uf1,0.7377
fr,2,FR,casme2,cde,loso,3,uf1,0.8798
fr,2,OFF-ApexNet,smic,cde,loso,3,uf1,0.6817
strcn,4,STRCN-G,smic,single-database,lovo,3,acc,0.749
strcn,4,STRCN-G,smic,single-database,loso,3,acc,0.723
strcn,6,STRCN-G,casme2+samm,single-database,loso,4,acc,0.629
"""


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _fake_run(path, values, *, report_as=None, experiment="fr_cde", smoke=False):
    """A run folder as run_protocol writes it, with the given pooled scores."""
    path.mkdir(parents=True)
    rows = [{"database": db, "metric": m, "pooling": "pooled", "value": v, "std": 0.01,
             "n_rounds": 10} for (db, m), v in values.items()]
    rows.append({"database": "all", "metric": "per_fold_mean_uf1", "pooling": "per_fold_mean",
                 "value": 0.1, "std": 0.0, "n_rounds": 10})
    cache.atomic_write_csv(path / "metrics.csv", rows,
                           ("database", "metric", "pooling", "value", "std", "n_rounds"))
    record = {"experiment": experiment, "smoke": smoke}
    if report_as is not None:
        record["report"] = report_as
    (path / "run.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def published(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text(PUBLISHED)
    return path


VALUES = {("all", "uf1"): 0.75, ("all", "uar"): 0.8, ("all", "acc"): 0.7,
          ("casme2", "uf1"): 0.9, ("casme2", "uar"): 0.85, ("casme2", "acc"): 0.8,
          ("smic_hs", "uf1"): 0.6, ("smic_hs", "uar"): 0.65, ("smic_hs", "acc"): 0.6}


def test_summarize_run_writes_exactly_the_specified_columns(tmp_path, published):
    run = _fake_run(tmp_path / "runs" / "fr", VALUES)
    rows = report.summarize_run(run, published, paper="fr", table="1b", method="FR",
                                dataset_map={"smic_hs": "smic"})
    with open(run / "summary.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["database", "metric", "obtained", "published", "difference"]
    written = _read(run / "summary.csv")
    assert written == rows
    assert [(r["database"], r["metric"]) for r in rows] == [
        (db, m) for db in ("all", "smic", "casme2") for m in ("uf1", "uar", "acc")]
    by_key = {(r["database"], r["metric"]): r for r in rows}
    assert by_key[("all", "uf1")] == {"database": "all", "metric": "uf1", "obtained": "0.7500",
                                      "published": "0.7838", "difference": "-0.0338"}
    assert by_key[("all", "uar")]["difference"] == "0.0168"
    # table 1b has no casme2 number and no accuracy: published stays empty
    assert by_key[("casme2", "uf1")]["published"] == ""
    assert by_key[("casme2", "uf1")]["difference"] == ""
    assert by_key[("all", "acc")]["published"] == ""


def test_summarize_run_can_write_elsewhere_and_names_an_unfinished_run(tmp_path, published):
    run = _fake_run(tmp_path / "fr", VALUES)
    report.summarize_run(run, published, paper="fr", table="2", method="FR",
                         out=tmp_path / "s.csv")
    assert not (run / "summary.csv").exists()
    assert _read(tmp_path / "s.csv")[3]["published"] == "0.8798"  # casme2 uf1 (no smic map)
    (run / "metrics.csv").unlink()
    with pytest.raises(FileNotFoundError, match="no metrics.csv"):
        report.summarize_run(run, published, paper="fr", table="2", method="FR")


def test_report_command_regenerates_tables_without_touching_runs(tmp_path, published):
    runs = tmp_path / "runs"
    _fake_run(runs / "fr_cde", VALUES, report_as=[
        {"paper": "fr", "table": "1b", "method": "FR", "dataset_map": {"smic_hs": "smic"}},
        {"paper": "fr", "table": "2", "method": "FR", "dataset_map": {"smic_hs": "smic"}}])
    _fake_run(runs / "by_name", {("all", "uf1"): 0.7}, experiment="FR-fc", smoke=True)
    _fake_run(runs / "orphan", {("all", "uf1"): 0.5}, experiment="mystery")
    _fake_run(runs / "fr_cde" / "stale" / "old", {("all", "uf1"): 0.1}, experiment="FR")
    before = sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*"))

    out = tmp_path / "tables"
    assert report.main(["--runs", str(runs), "--published", str(published), "--out", str(out)]) == 0
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*")) == before

    table = {(r["method"], r["dataset"], r["metric"]): r for r in _read(out / "fr_table1b.csv")}
    assert table[("FR", "all", "uf1")]["obtained"] == "0.7500"
    assert table[("FR", "all", "uf1")]["published"] == "0.7838"
    assert table[("FR", "all", "uf1")]["run"] == "fr_cde"
    assert table[("FR-fc", "all", "uf1")]["run"] == "by_name (smoke)"
    # obtained numbers of cells the table never publishes stay in the run's summaries/ file only
    assert ("FR", "smic", "uar") not in table
    assert ("FR", "all", "acc") not in table
    assert list(_read(out / "fr_table2.csv")[0]) == list(report.TABLE_COLUMNS)
    table2 = {(r["method"], r["dataset"], r["metric"]): r for r in _read(out / "fr_table2.csv")}
    assert table2[("FR", "smic", "uf1")]["obtained"] == "0.6000"  # a cell Table 2 has, for another
    assert table2[("FR", "smic", "uf1")]["published"] == ""       # method: kept, unpublished
    assert "| FR | casme2 | cde | loso | uf1 | 0.8798 | 0.9000 |" in (out / "fr_table2.md").read_text()
    assert _read(out / "unmatched_runs.csv")[0]["method"] == "mystery"
    assert "fr Table 1b" in (out / "README.md").read_text()
    assert [r["database"] for r in _read(out / "summaries" / "fr_cde.csv")][:3] == ["all"] * 3
    assert report.find_runs(runs) == [runs / "by_name", runs / "fr_cde", runs / "orphan"]


def test_report_reads_a_real_run(tmp_path, published):
    from mer_keras import training

    rows = []
    rng = np.random.default_rng(0)
    for subject in ("casme2/s1", "casme2/s2", "samm/s3"):
        for i in range(3):
            rel = cache.entry_relpath(subject, f"c{i}")
            cache.write_entry(tmp_path / "cache" / rel,
                              {"flow": rng.normal(i, 0.2, (4, 4, 3)).astype(np.float32)},
                              cache.make_provenance("fake", {}, f"{subject}{i}"))
            rows.append({"database": subject.split("/")[0], "subject": subject, "sample": f"c{i}",
                         "label": ["negative", "positive", "surprise"][i], "entry": rel})
    cache.write_index(tmp_path / "cache", rows)
    cache.write_cache_meta(tmp_path / "cache",
                           {"kind": "flow", "classes": ["negative", "positive", "surprise"]})
    config = training.TrainConfig(experiment="FR", epochs=1, batch_size=4)
    result = training.run_protocol(config, tmp_path / "cache", tmp_path / "runs" / "r",
                                   progress=False, report={"paper": "fr", "table": "1b",
                                                           "method": "FR"})
    assert report.main(["--runs", str(tmp_path / "runs"), "--published", str(published),
                        "--out", str(tmp_path / "t")]) == 0
    table = {(r["method"], r["dataset"], r["metric"]): r
             for r in _read(tmp_path / "t" / "fr_table1b.csv")}
    assert table[("FR", "all", "uar")]["obtained"] == f"{result.scores['all']['uar']:.4f}"


def test_report_command_fails_cleanly_without_published_file(tmp_path, capsys):
    assert report.main(["--runs", str(tmp_path), "--published", str(tmp_path / "no.csv"),
                        "--out", str(tmp_path / "o")]) == 2
    assert "published numbers file not found" in capsys.readouterr().err


def test_splitter_tells_apart_a_tables_loso_and_lovo_rows(tmp_path, published):
    runs = tmp_path / "runs"
    _fake_run(runs / "loso", {("smic", "acc"): 0.5, ("all", "acc"): 0.5},
              report_as={"paper": "strcn", "table": "4", "method": "STRCN-G", "splitter": "loso"})
    _fake_run(runs / "composite", {("all", "acc"): 0.6, ("casme2", "acc"): 0.7},
              report_as={"paper": "strcn", "table": "6", "method": "STRCN-G", "splitter": "loso",
                         "dataset_map": {"all": "casme2+samm"}})
    rows = report.summary_rows(runs / "loso", report.read_published(published), paper="strcn",
                               table="4", method="STRCN-G", splitter="loso")
    # a single-database run: its "all" would repeat the smic rows
    assert [(r["database"], r["published"]) for r in rows] == [("smic", "0.7230")]
    assert report.published_value(report.read_published(published), paper="strcn", table="4",
                                  method="STRCN-G", dataset="smic", metric="acc",
                                  splitter="lovo") == 0.749

    out = tmp_path / "tables"
    assert report.main(["--runs", str(runs), "--published", str(published), "--out", str(out)]) == 0
    table4 = {(r["splitter"], r["dataset"]): r for r in _read(out / "strcn_table4.csv")}
    assert table4[("loso", "smic")]["obtained"] == "0.5000"
    assert table4[("lovo", "smic")]["obtained"] == ""  # the LOVO half had no run
    table6 = {r["dataset"]: r for r in _read(out / "strcn_table6.csv")}
    assert table6["casme2+samm"]["obtained"] == "0.6000"
    assert table6["casme2+samm"]["difference"] == "-0.0290"


def test_an_epoch_studys_snapshots_fill_their_own_rows(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text("paper,table,method,dataset,protocol,splitter,classes,metric,value\n"
                         "off_apexnet,3,OFF-ApexNet (1000 epochs),all,cde,loso,3,acc,0.7256\n"
                         "off_apexnet,3,OFF-ApexNet (1000 epochs),all,cde,loso,3,f1,0.7000\n"
                         "off_apexnet,3,OFF-ApexNet,all,cde,loso,3,acc,0.7460\n"
                         "off_apexnet,3,OFF-ApexNet,all,cde,loso,3,f1,0.7104\n")
    runs = tmp_path / "runs"
    run = _fake_run(runs / "off", {("all", "acc"): 0.7, ("all", "uf1"): 0.69}, report_as={
        "paper": "off_apexnet", "table": "3", "method": "OFF-ApexNet",
        "snapshots": {"1000": "OFF-ApexNet (1000 epochs)"}})
    # a run shortened to 300 epochs: its snapshot at 100 stands for the paper's 1000
    cache.atomic_write_csv(run / "metrics_by_epoch.csv", [
        {"epoch": e, "database": "all", "metric": m, "pooling": "pooled", "value": v,
         "std": 0.02, "n_rounds": 3}
        for e, v in ((100, 0.6), (300, 0.7)) for m in ("acc", "uf1")],
        ("epoch", "database", "metric", "pooling", "value", "std", "n_rounds"))
    assert report.snapshot_methods(run, {"1000": "OFF-ApexNet (1000 epochs)"}) \
        == [(100, "OFF-ApexNet (1000 epochs)")]
    assert report.snapshot_methods(run, {"1000": "a", "2000": "b"}) == []  # no pairing guessed

    out = tmp_path / "tables"
    assert report.main(["--runs", str(runs), "--published", str(published), "--out", str(out)]) == 0
    table = {r["method"]: r for r in _read(out / "off_apexnet_table3.csv") if r["metric"] == "acc"}
    assert table["OFF-ApexNet (1000 epochs)"]["obtained"] == "0.6000"
    assert table["OFF-ApexNet (1000 epochs)"]["run"] == "off @100 epochs"
    assert table["OFF-ApexNet (1000 epochs)"]["difference"] == "-0.1256"
    # a snapshot's spread over rounds, and the F-measure row beside our UF1, keep std and rounds
    assert (table["OFF-ApexNet (1000 epochs)"]["std"],
            table["OFF-ApexNet (1000 epochs)"]["n_rounds"]) == ("0.0200", "3")
    assert table["OFF-ApexNet"]["obtained"] == "0.7000"
    f_rows = {r["method"]: r for r in _read(out / "off_apexnet_table3.csv") if r["metric"] == "f1"}
    assert (f_rows["OFF-ApexNet"]["obtained"], f_rows["OFF-ApexNet"]["std"],
            f_rows["OFF-ApexNet"]["n_rounds"]) == ("0.6900", "0.0100", "10")
    assert f_rows["OFF-ApexNet (1000 epochs)"]["std"] == "0.0200"


def test_parameter_counts_sit_beside_table_7_as_integers(tmp_path, monkeypatch):
    from experiments import fr_parameters

    # the counts themselves are tests/test_models.py's; here, the path to the table
    monkeypatch.setattr(fr_parameters, "parameter_counts",
                        lambda variant: {"smic": 10252750, "casme2": 11433936, "samm": 11433936})

    published = tmp_path / "published.csv"
    published.write_text("paper,table,method,dataset,protocol,splitter,classes,metric,value\n"
                         "fr,7,FR,smic,single-database,loso,3,params,10241800\n"
                         "fr,7,FR,smic,single-database,loso,3,acc,0.5790\n")
    fr_parameters.write_folders(tmp_path / "runs")
    tables = report.build_tables(tmp_path / "runs", published, tmp_path / "tables")
    row = next(r for r in tables[("fr", "7")] if r["metric"] == "params")
    assert row["published"] == "10241800" and row["obtained"] == "10252750"
    assert row["difference"] == "10950" and row["std"] == ""
    one_round = _fake_run(tmp_path / "one", {("all", "uf1"): 0.7})
    rows = {(r["database"], r["metric"]): r for r in _read(one_round / "metrics.csv")}
    rows[("all", "uf1")].update(std="0.0", n_rounds="1")  # a run written before: 0.0 for one round
    assert report._std_cell(rows[("all", "uf1")]) == ""


def test_a_run_on_other_classes_never_fills_a_published_row(tmp_path):
    # Micro-Attention's Table 4 is 5 classes on CASME II + SAMM; the MEGC2019 run is 3 classes
    published = tmp_path / "published.csv"
    published.write_text("paper,table,method,dataset,protocol,splitter,classes,metric,value\n"
                         "micro_attention,4,ResNet-MA,all,cde,loso,5,acc,0.7630\n")
    runs = tmp_path / "runs"
    _fake_run(runs / "megc2019", {("all", "acc"): 0.47}, report_as={
        "paper": "micro_attention", "table": "4", "method": "ResNet-MA", "classes": 3})
    out = tmp_path / "tables"
    assert report.main(["--runs", str(runs), "--published", str(published), "--out", str(out)]) == 0
    rows = {r["method"]: r for r in _read(out / "micro_attention_table4.csv")}
    assert (rows["ResNet-MA"]["published"], rows["ResNet-MA"]["obtained"]) == ("0.7630", "")
    assert (rows["ResNet-MA (3 classes)"]["published"],
            rows["ResNet-MA (3 classes)"]["obtained"]) == ("", "0.4700")

    _fake_run(runs / "objective", {("all", "acc"): 0.6}, report_as={
        "paper": "micro_attention", "table": "4", "method": "ResNet-MA", "classes": 5})
    assert report.main(["--runs", str(runs), "--published", str(published), "--out", str(out)]) == 0
    rows = {r["method"]: r for r in _read(out / "micro_attention_table4.csv")}
    assert (rows["ResNet-MA"]["obtained"], rows["ResNet-MA"]["difference"]) == ("0.6000", "-0.1630")
