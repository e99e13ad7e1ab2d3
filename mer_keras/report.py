"""Run folders -> the papers' tables, obtained beside published. Read-only on runs.

A run folder is any folder holding a ``run.json`` (written by
:func:`mer_keras.training.run_protocol`) and its ``metrics.csv``; folders under a ``stale/``
directory (superseded runs) are ignored. The published numbers come from
``results/published.csv`` (columns ``paper, table, method, dataset, protocol, splitter, classes,
metric, value``: ``protocol`` the evaluation (``cde``, ``cdmer``, ``single-database``), ``splitter``
how its folds are split (``loso``, ``lovo``; empty for a cross-database hold-out)).

Which published row a run is compared with is recorded in its ``run.json`` under ``"report"``
(``{"paper", "table", "method", "dataset_map"}``, or a list of them), as the experiment passed it to
``run_protocol(..., report=...)``. A run without that record is matched by its experiment name
against the published methods (case-insensitive); failing that it is listed with no published value.

Command::

    python -m mer_keras.report --runs results --published results/published.csv --out results/tables

writes ``<out>/<paper>_table<table>.csv`` and ``.md`` for every table that has a run, ``<out>/
summaries/<run>.csv`` (the :func:`summarize_run` rows of each run) and ``<out>/README.md`` (all
tables, in one page). Nothing is written into the run folders.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

from data_prep.atomic import atomic_write_csv, atomic_write_text

SUMMARY_COLUMNS = ("database", "metric", "obtained", "published", "difference")
#: the published ``dataset`` names a run's databases are compared with; ``casme2+samm`` is STRCN
#: Table VI's composite (a run's ``all``, through ``dataset_map``).
DATABASES = ("all", "smic", "casme2", "samm", "casme2+samm")
REPORT_METRICS = ("uf1", "uar", "acc")
#: counts a table publishes beside its scores (FR Table 7): compared as integers, from a folder
#: whose ``metrics.csv`` holds them (``python -m experiments.fr_parameters``).
COUNT_METRICS = ("params",)
#: a paper's metric compared with one of ours: OFF-ApexNet's "F-measure" and STRCN's "F1" give no
#: averaging we can use (PAPER_NOTES 0.1), so they sit beside our pooled macro-F1 (= UF1), and only
#: where the paper prints one.
PUBLISHED_AS = {"f1": "uf1"}
TABLE_COLUMNS = ("method", "dataset", "protocol", "splitter", "metric", "published", "obtained",
                 "std", "n_rounds", "difference", "run")


def _read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _std_cell(row: Mapping) -> str:
    """The std over rounds of a metrics.csv row, or "" for one round (older runs wrote 0.0)."""
    if not row.get("std") or int(row.get("n_rounds") or 0) < 2:
        return ""
    return _fmt(float(row["std"]))


def _rounds(cell: Mapping) -> int:
    return int(cell.get("n_rounds") or 0)


def _fmt(value: Optional[float], metric: str = "") -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if metric in COUNT_METRICS else f"{value:.4f}"


def read_published(published_csv) -> list[dict]:
    """The rows of ``published.csv``; raises a clear error when a column is missing."""
    path = Path(published_csv)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: published numbers file not found")
    rows = _read_csv(path)
    needed = {"paper", "table", "method", "dataset", "metric", "value"}
    if rows and not needed <= set(rows[0]):
        raise ValueError(f"{path}: missing columns {sorted(needed - set(rows[0]))}")
    return rows


def published_value(published: Sequence[Mapping], *, paper: str, table: Optional[str],
                    method: str, dataset: str, metric: str,
                    classes: Optional[int] = None,
                    splitter: Optional[str] = None) -> Optional[float]:
    """The published number of one (paper, table, method, dataset, metric), or None.

    ``classes`` tells apart the columns of a table that reports one database under two class
    groupings (FR Table 5: CASME II with 5 and with 4 classes), and ``splitter`` the halves of a
    table that reports both LOSO and LOVO (STRCN Tables IV and VI); None matches any.
    """
    for row in published:
        if (row["paper"] == paper and (table is None or str(row["table"]) == str(table))
                and row["method"] == method and row["dataset"] == dataset
                and (classes is None or str(row.get("classes")) == str(classes))
                and (splitter is None or row.get("splitter") == splitter)
                and row["metric"] == metric and row["value"] not in ("", None)):
            return float(row["value"])
    return None


def read_run_metrics(run_dir) -> dict[tuple[str, str], dict]:
    """``{(database, metric): row}`` of a run's ``metrics.csv`` (pooled and per-fold means)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run has no metrics.csv (unfinished? rerun it to "
                                "resume)")
    return {(row["database"], row["metric"]): row for row in _read_csv(path)}


def summary_rows(run_dir, published: Sequence[Mapping], *, paper: str, table: Optional[str],
                 method: str, dataset_map: Optional[Mapping[str, str]] = None,
                 classes: Optional[int] = None, splitter: Optional[str] = None,
                 scores: Optional[Mapping] = None) -> list[dict]:
    """The summary rows of one run, without writing anything (see :func:`summarize_run`);
    ``scores``: ``{(database, metric): row}`` to use instead of the run's ``metrics.csv``."""
    dataset_map = {"all": "all", **(dataset_map or {})}
    scores = read_run_metrics(run_dir) if scores is None else scores
    run_databases = {database for database, _ in scores}
    by_dataset = {dataset_map.get(db, db): db for db in run_databases}
    if len(run_databases - {"all"}) == 1 and dataset_map["all"] == "all":
        by_dataset.pop("all", None)  # a single-database run: "all" repeats that database's rows
    rows = []
    # the mapped names too (a cross-database run's "casme2->samm"), after the known databases
    for dataset in DATABASES + tuple(d for d in by_dataset if d not in DATABASES):
        if dataset not in by_dataset:
            continue
        for metric in REPORT_METRICS + COUNT_METRICS + tuple(PUBLISHED_AS):
            row = scores.get((by_dataset[dataset], PUBLISHED_AS.get(metric, metric)))
            if row is None:
                continue
            obtained = float(row["value"])
            number = published_value(published, paper=paper, table=table, method=method,
                                     dataset=dataset, metric=metric, classes=classes,
                                     splitter=splitter)
            if number is None and metric in PUBLISHED_AS:
                continue
            rows.append({
                "database": dataset, "metric": metric, "obtained": _fmt(obtained, metric),
                "published": _fmt(number, metric),
                "difference": "" if number is None else _fmt(obtained - number, metric),
            })
    return rows


def summarize_run(run_dir, published_csv, *, paper: str, table: Optional[str], method: str,
                  dataset_map: Optional[Mapping[str, str]] = None,
                  classes: Optional[int] = None, splitter: Optional[str] = None,
                  out=None) -> list[dict]:
    """Compare one run's pooled scores with a paper's published numbers; write ``summary.csv``.

    Args:
        run_dir: a run folder (``metrics.csv``).
        published_csv: ``results/published.csv``.
        paper, table, method: the published row to compare with (``table`` None: the first table
            of that paper that has the method).
        dataset_map: run database name -> published ``dataset`` name where they differ
            (``{"smic_hs": "smic"}``); ``"all"`` maps to ``"all"``.
        classes: the published column's number of classes, where a table has one database under
            two groupings (see :func:`published_value`).
        splitter: the published ``splitter`` (``"loso"`` / ``"lovo"``), where a table has both.
        out: where to write the CSV; default ``<run_dir>/summary.csv``.

    Returns:
        Rows with exactly the columns ``database, metric, obtained, published, difference``
        (``database`` in all/smic/casme2/samm, ``metric`` in uf1/uar/acc; ``published`` and
        ``difference`` empty where the paper gives no number). ``obtained`` is the pooled score
        (mean over rounds).
    """
    rows = summary_rows(run_dir, read_published(published_csv), paper=paper, table=table,
                        method=method, dataset_map=dataset_map, classes=classes,
                        splitter=splitter)
    atomic_write_csv(Path(out) if out is not None else Path(run_dir) / "summary.csv", rows,
                     SUMMARY_COLUMNS)
    return rows


def summarize_targets(run_dir, published_csv, targets: Sequence[Mapping], out=None) -> list[dict]:
    """:func:`summarize_run` for a run that reproduces several published rows at once.

    OFF-ApexNet's CDE run is its Table 3 (all: acc, F-measure), its Table 4 row 14 (each database)
    and FR Table 2's MEGC2019 re-evaluation (UF1 / UAR). Each ``(database, metric)`` appears once,
    beside the first target that publishes it (targets in the given order); the others keep an
    empty ``published``.
    """
    published = read_published(published_csv)
    merged: dict[tuple[str, str], dict] = {}
    for target in targets:
        for row in summary_rows(run_dir, published, **target):
            key = (row["database"], row["metric"])
            if key not in merged or (not merged[key]["published"] and row["published"]):
                merged[key] = row
    order = {name: i for i, name in enumerate(DATABASES)}
    rows = sorted(merged.values(), key=lambda r: order.get(r["database"], len(order)))
    atomic_write_csv(Path(out) if out is not None else Path(run_dir) / "summary.csv", rows,
                     SUMMARY_COLUMNS)
    return rows


# --------------------------------------------------------------------------------------------------
# Regenerating the tables

def find_runs(root) -> list[Path]:
    """Every folder under ``root`` (itself included) with a ``run.json``, skipping ``stale/``."""
    root = Path(root)
    found = [p.parent for p in sorted(root.rglob("run.json"))]
    return [p for p in found if "stale" not in p.relative_to(root).parts]


def read_epoch_metrics(run_dir) -> dict[int, dict[tuple[str, str], dict]]:
    """``{epoch: {(database, metric): row}}`` of an epoch study's ``metrics_by_epoch.csv`` (empty
    for a run without snapshots); the rows of the per-epoch probes (``training_probe``) are not
    scores, and are left out."""
    path = Path(run_dir) / "metrics_by_epoch.csv"
    found: dict[int, dict] = {}
    if path.is_file():
        for row in _read_csv(path):
            if row["pooling"] == "training_probe":
                continue
            found.setdefault(int(row["epoch"]), {})[(row["database"], row["metric"])] = row
    return found


def snapshot_methods(run_dir, snapshots: Mapping) -> list[tuple[int, str]]:
    """``(run epoch, published method)`` of an epoch study's snapshots.

    ``snapshots`` maps the paper's epoch counts to their published methods (OFF-ApexNet Table 3:
    ``{"1000": "OFF-ApexNet (1000 epochs)", ...}``). The run's snapshot epochs (all but its last)
    are paired with them in order, so a run shortened by ``--epochs`` keeps the proportions and its
    rows say which epoch they are; a run with another number of snapshots pairs none.
    """
    epochs = sorted(read_epoch_metrics(run_dir))[:-1]
    paper = sorted(snapshots, key=int)
    if len(epochs) != len(paper):
        return []
    return [(epoch, snapshots[key]) for epoch, key in zip(epochs, paper)]


def _targets(run_json: Mapping, published: Sequence[Mapping]) -> list[dict]:
    declared = run_json.get("report")
    if declared:
        declared = [declared] if isinstance(declared, Mapping) else list(declared)
        return [{"paper": d["paper"], "table": d.get("table"), "method": d["method"],
                 "dataset_map": d.get("dataset_map") or {}, "classes": d.get("classes"),
                 # "protocol": the key's name in run.json files written before the rename
                 "splitter": d.get("splitter", d.get("protocol")),
                 "snapshots": d.get("snapshots") or {}}
                for d in declared]
    name = str(run_json.get("experiment", "")).lower()
    matches = {(r["paper"], r["table"], r["method"]) for r in published
               if r["method"].lower() == name}
    return [{"paper": p, "table": t, "method": m, "dataset_map": {}, "snapshots": {}}
            for p, t, m in sorted(matches)]


def _classes(row: Mapping) -> Optional[str]:
    """A target's or published row's class count as the tables compare it (None: not given)."""
    classes = row.get("classes")
    return None if classes in (None, "") else str(classes)


def _markdown(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def build_tables(runs_root, published_csv, out_dir) -> dict[tuple[str, str], list[dict]]:
    """Write every paper table that has a run, as CSV and Markdown, into ``out_dir``.

    Each table lists all of the paper's published rows of that table; ``obtained`` is filled where a
    run reports that method (a smoke run is marked as such). An obtained number without a published
    one is added where the table publishes that dataset and metric for some other method (the
    table's own cells; the per-run files under ``summaries/`` keep every number); a run on another
    class count than the table's (Micro-Attention's 3-class MEGC2019 run in its 5-class Table 4)
    gets such a row, named "(3 classes)", never the published one. Runs without a published
    counterpart go to an ``unmatched`` table. Returns ``{(paper, table): rows}``.
    """
    out_dir = Path(out_dir)
    published = read_published(published_csv)
    obtained: dict[tuple, dict] = {}
    unmatched, notes = [], []
    for run_dir in find_runs(runs_root):
        run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        name = run_dir.relative_to(runs_root).as_posix() or run_dir.name
        try:
            scores = read_run_metrics(run_dir)
        except FileNotFoundError as error:
            notes.append(str(error))
            continue
        label = name + (" (smoke)" if run_json.get("smoke") else "")
        targets = _targets(run_json, published)
        by_epoch = read_epoch_metrics(run_dir)
        for target in targets:
            snapshots = target.pop("snapshots", {})
            rows = summary_rows(run_dir, published, **target)
            atomic_write_csv(out_dir / "summaries" / f"{name.replace('/', '__')}.csv", rows,
                             SUMMARY_COLUMNS)
            versions = [(target["method"], rows, scores, label)]
            for epoch, method in snapshot_methods(run_dir, snapshots):
                versions.append((method, summary_rows(run_dir, published,
                                                      **{**target, "method": method},
                                                      scores=by_epoch[epoch]),
                                 by_epoch[epoch], f"{label} @{epoch} epochs"))
            for method, rows, found, run_label in versions:
                for row in rows:
                    extra = found.get((_unmap(target["dataset_map"], row["database"]),
                                       PUBLISHED_AS.get(row["metric"], row["metric"])), {})
                    key = (target["paper"], str(target["table"]), method, row["database"],
                           row["metric"], target.get("splitter"), _classes(target))
                    cell = {**row, "std": _std_cell(extra),
                            "n_rounds": extra.get("n_rounds", ""), "run": run_label}
                    # two runs of one cell: the one with more rounds (the first of equals)
                    if key not in obtained or _rounds(cell) > _rounds(obtained[key]):
                        obtained[key] = cell
        if not targets:
            for (database, metric), row in scores.items():
                if metric in REPORT_METRICS:
                    unmatched.append({"method": run_json.get("experiment", name),
                                      "dataset": database, "metric": metric, "published": "",
                                      "obtained": _fmt(float(row["value"])),
                                      "std": _std_cell(row),
                                      "n_rounds": row.get("n_rounds", ""), "difference": "",
                                      "run": label})

    tables: dict[tuple[str, str], list[dict]] = {}
    with_runs = {(p, t) for p, t, *_ in obtained}
    for row in published:
        key = (row["paper"], str(row["table"]))
        if key not in with_runs:
            continue
        found = (*key, row["method"], row["dataset"], row["metric"])
        # a run that declares no splitter or class count fills any; one on other classes never
        # fills a published row (it gets a row of its own below)
        got = next((obtained.pop((*found, splitter, classes))
                    for splitter in (row.get("splitter"), None)
                    for classes in (_classes(row), None)
                    if (*found, splitter, classes) in obtained), None)
        tables.setdefault(key, []).append({
            "method": row["method"], "dataset": row["dataset"],
            "protocol": row.get("protocol", ""), "splitter": row.get("splitter", ""),
            "metric": row["metric"],
            "published": _fmt(float(row["value"]), row["metric"])
            if row["value"] not in ("", None) else "",
            "obtained": got["obtained"] if got else "", "std": got["std"] if got else "",
            "n_rounds": got["n_rounds"] if got else "",
            "difference": got["difference"] if got else "", "run": got["run"] if got else ""})
    # an obtained number the paper does not publish is listed only where that table publishes the
    # same (dataset, metric) for some method (each run's summaries/ file keeps all of them)
    published_cells = {}
    for row in published:
        published_cells.setdefault((row["paper"], str(row["table"])), set()).add(
            (row["dataset"], row["metric"]))
    for (paper, table, method, dataset, metric, splitter, classes), got in obtained.items():
        cells = published_cells.get((paper, table))  # the unpublished cells from here on
        if cells and (dataset, metric) not in cells:
            continue
        tables.setdefault((paper, table), []).append({
            "method": method if classes is None else f"{method} ({classes} classes)",
            "dataset": dataset, "protocol": "", "splitter": splitter or "",
            "metric": metric, "published": "",
            "obtained": got["obtained"], "std": got["std"], "n_rounds": got["n_rounds"],
            "difference": "", "run": got["run"]})
    if unmatched:
        tables[("unmatched", "runs")] = unmatched

    page = ["# Obtained beside published\n",
            "Obtained = pooled over all folds (LOSO or LOVO; MEGC2019), mean over rounds; "
            "std over rounds.\n"]
    for (paper, table), rows in sorted(tables.items()):
        stem = f"{paper}_table{table}" if paper != "unmatched" else "unmatched_runs"
        atomic_write_csv(out_dir / f"{stem}.csv", rows, TABLE_COLUMNS)
        markdown = _markdown(rows, TABLE_COLUMNS)
        title = f"## {paper} Table {table}\n\n" if paper != "unmatched" else \
            "## Runs with no published counterpart\n\n"
        atomic_write_text(out_dir / f"{stem}.md", title + markdown)
        page.append(title + markdown)
    if notes:
        page.append("## Skipped run folders\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    atomic_write_text(out_dir / "README.md", "\n".join(page))
    return tables


def _unmap(dataset_map: Mapping[str, str], dataset: str) -> str:
    for run_name, published_name in dataset_map.items():
        if published_name == dataset:
            return run_name
    return dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mer_keras.report",
                                     description="regenerate the papers' tables from run folders")
    parser.add_argument("--runs", type=Path, required=True,
                        help="folder searched (recursively) for run folders (with run.json)")
    parser.add_argument("--published", type=Path, required=True, help="results/published.csv")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the tables into")
    args = parser.parse_args(argv)
    try:
        tables = build_tables(args.runs, args.published, args.out)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(tables)} table(s) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
