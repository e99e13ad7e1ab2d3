"""results/published.csv: the format every report relies on, and the FR numbers the README quotes."""

import csv
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published.csv"
COLUMNS = ["paper", "table", "method", "dataset", "protocol", "classes", "metric", "value"]


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
        if row["metric"] in ("uf1", "uar", "acc") or row["metric"].startswith("recall_"):
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
