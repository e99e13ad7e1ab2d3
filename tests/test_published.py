"""results/published.csv: the format every report relies on, and the FR numbers the README quotes."""

import csv
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published.csv"
COLUMNS = ["paper", "table", "method", "dataset", "protocol", "splitter", "classes", "metric",
           "value"]


def _rows():
    with open(PUBLISHED, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_columns_and_values_are_well_formed():
    fieldnames, rows = _rows()
    assert fieldnames == COLUMNS
    keys = [tuple(row[c] for c in COLUMNS[:-1]) for row in rows]
    assert len(keys) == len(set(keys)), "a published number is listed twice"
    for row in rows:
        value = float(row["value"])
        if row["metric"] in ("uf1", "uar", "acc", "f1") or row["metric"].startswith("recall_"):
            assert 0.0 <= value <= 1.0, row


def test_fr_headline_numbers():
    _, rows = _rows()
    table2 = {(r["dataset"], r["metric"]): float(r["value"]) for r in rows
              if (r["paper"], r["table"], r["method"]) == ("fr", "2", "FR")}
    assert table2 == {
        ("all", "uf1"): 0.7838, ("all", "uar"): 0.7832,
        ("smic", "uf1"): 0.7011, ("smic", "uar"): 0.7083,
        ("casme2", "uf1"): 0.8915, ("casme2", "uar"): 0.8873,
        ("samm", "uf1"): 0.7372, ("samm", "uar"): 0.7155,
    }


def test_fr_figure3_recalls_are_its_uar():
    _, rows = _rows()
    recalls = [float(r["value"]) for r in rows
               if r["table"] == "fig3" and r["metric"].startswith("recall_")]
    assert len(recalls) == 3
    assert round(sum(recalls) / 3, 4) == 0.7832


def _table(rows, paper, table, method, protocol=None, splitter=None):
    """``{(dataset, metric): value}`` of one method's row group in one paper table."""
    return {(r["dataset"], r["metric"]): float(r["value"]) for r in rows
            if (r["paper"], r["table"], r["method"]) == (paper, table, method)
            and (protocol is None or r["protocol"] == protocol)
            and (splitter is None or r["splitter"] == splitter)}


# Sample counts of OFF-ApexNet's 3-class data (its Table 1: SMIC 164, CASME II 145, SAMM 132; 441).
OFF_APEXNET_COUNTS = {"smic": 164, "casme2": 145, "samm": 132, "all": 441}


def _whole_count(value, n, decimals=4):
    """The number of correct samples behind a printed accuracy, or None when there is none.

    A printed fraction ``value`` with ``decimals`` places stands for some k/n only when
    ``value * n`` lies within the rounding slack (half a unit of the last place, times n) of k.
    """
    k = round(value * n)
    return k if abs(value * n - k) <= n * 0.5 * 10 ** -decimals + 1e-9 else None


def test_off_apexnet_headline_numbers():
    _, rows = _rows()
    assert _table(rows, "off_apexnet", "3", "OFF-ApexNet") == {("all", "acc"): 0.7460,
                                                               ("all", "f1"): 0.7104}
    assert _table(rows, "off_apexnet", "4", "OFF-ApexNet") == {
        ("smic", "acc"): 0.6768, ("smic", "f1"): 0.6709,
        ("casme2", "acc"): 0.8828, ("casme2", "f1"): 0.8697,
        ("samm", "acc"): 0.6818, ("samm", "f1"): 0.5423,
    }
    table3 = [r for r in rows if (r["paper"], r["table"]) == ("off_apexnet", "3")]
    assert {r["method"] for r in table3} == {"OFF-ApexNet"} | {
        f"OFF-ApexNet ({e} epochs)" for e in (1000, 2000, 4000, 5000)}
    assert {(r["dataset"], r["protocol"], r["classes"]) for r in table3} == {("all", "cde", "3")}
    # The 3000-epoch headline is the best of Table 3 in both metrics (Sec 5.1).
    for metric in ("acc", "f1"):
        best = max((float(r["value"]), r["method"]) for r in table3 if r["metric"] == metric)
        assert best[1] == "OFF-ApexNet"


def test_off_apexnet_row14_accuracies_are_whole_sample_counts():
    """PAPER_NOTES 0.1: Table 4 #14 is 111/164, 128/145 and 90/132 correct, 329/441 in all."""
    _, rows = _rows()
    row14 = _table(rows, "off_apexnet", "4", "OFF-ApexNet", protocol="cde")
    counts = {db: _whole_count(row14[(db, "acc")], n)
              for db, n in OFF_APEXNET_COUNTS.items() if db != "all"}
    assert counts == {"smic": 111, "casme2": 128, "samm": 90}
    total = _table(rows, "off_apexnet", "3", "OFF-ApexNet")[("all", "acc")]
    assert _whole_count(total, OFF_APEXNET_COUNTS["all"]) == sum(counts.values()) == 329


def test_off_apexnet_3class_accuracies_are_whole_sample_counts():
    """Every 3-class accuracy of OFF-ApexNet Tables 3 and 4 (#12-#14) is some k / n."""
    _, rows = _rows()
    three_class = {"OFF-ApexNet", "LBP-TOP (3 classes)", "Bi-WOOF (3 classes)"}
    checked = 0
    for r in rows:
        if r["paper"] == "off_apexnet" and r["metric"] == "acc" and (
                r["table"] == "3" or r["method"] in three_class):
            assert r["classes"] == "3", r
            assert _whole_count(float(r["value"]), OFF_APEXNET_COUNTS[r["dataset"]]) is not None, r
            checked += 1
    assert checked == 5 + 9


def test_whole_count_rejects_a_non_count():
    assert _whole_count(0.6768, 164) == 111
    assert _whole_count(0.6800, 164) is None  # 111.52 correct samples is no count


def test_strcn_headline_numbers():
    _, rows = _rows()
    loso = {"STRCN-G": {("smic", "acc"): 0.723, ("smic", "f1"): 0.695,
                        ("casme2", "acc"): 0.803, ("casme2", "f1"): 0.747,
                        ("samm", "acc"): 0.786, ("samm", "f1"): 0.741},
            "STRCN-A": {("smic", "acc"): 0.531, ("smic", "f1"): 0.514,
                        ("casme2", "acc"): 0.560, ("casme2", "f1"): 0.542,
                        ("samm", "acc"): 0.545, ("samm", "f1"): 0.492}}
    lovo = {"STRCN-A": {("smic", "acc"): 0.758, ("smic", "f1"): 0.714,
                        ("casme2", "acc"): 0.841, ("casme2", "f1"): 0.784,
                        ("samm", "acc"): 0.836, ("samm", "f1"): 0.792},
            "STRCN-G": {("smic", "acc"): 0.749, ("smic", "f1"): 0.710,
                        ("casme2", "acc"): 0.833, ("casme2", "f1"): 0.807,
                        ("samm", "acc"): 0.827, ("samm", "f1"): 0.781}}
    for method in ("STRCN-A", "STRCN-G"):
        assert _table(rows, "strcn", "2", method, splitter="loso") == loso[method]
        assert _table(rows, "strcn", "3", method, splitter="lovo") == lovo[method]
    strcn = [r for r in rows if r["paper"] == "strcn"]
    assert {(r["dataset"], r["classes"]) for r in strcn} == {
        ("smic", "3"), ("casme2", "4"), ("samm", "4"), ("casme2+samm", "4")}
    assert {r["splitter"] for r in strcn} == {"loso", "lovo"}
    assert {r["protocol"] for r in strcn} == {"single-database"}


def test_strcn_headline_recurs_in_its_ablation_tables():
    """Tables IV (full model) and V (the [0.05, 0.4] band) repeat Tables II / III's accuracies."""
    _, rows = _rows()
    for method in ("STRCN-A", "STRCN-G"):
        for table, splitter in (("2", "loso"), ("3", "lovo")):
            headline = {k: v for k, v in _table(rows, "strcn", table, method).items()
                        if k[1] == "acc"}
            assert len(headline) == 3
            assert _table(rows, "strcn", "4", method, splitter=splitter) == headline
            if splitter == "loso":
                assert _table(rows, "strcn", "5", method) == headline
    # FR Table 5 cites STRCN-G / STRCN-A without augmentation (STRCN Table IV, LOSO).
    for method in ("STRCN-A", "STRCN-G"):
        cited = {k: v for k, v in _table(rows, "fr", "5", method).items() if k[0] != "average"}
        ours = _table(rows, "strcn", "4", f"{method} w/o augmentation", splitter="loso")
        assert cited == ours
