"""Run folders -> one table of every model on the same data: mean and sd over rounds (seeds).

A :class:`Row` names a run folder and what it is (model, variant, inputs, protocol, selection
rule, the command that regenerates it, the published row beside it). :func:`leaderboard_rows`
reads each folder's ``metrics_per_round.csv`` (the pooled MEGC2019 scores of every round, and the
per-fold means, labelled as such) and gives one line per row, database and pooling, with the
mean and the sample sd over rounds (empty for one round) and the published number where the paper
has one. :func:`paired_difference` tests a claimed gap between two runs of the same folds: the
mean difference over rounds paired by round, and a bootstrap over test subjects. Read-only on
runs, like :mod:`mer_keras.report`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from mer_keras.figures import save_png
from mer_keras.metrics import per_class_f1, per_class_recall
from mer_keras.report import published_value

DATABASES = ("all", "casme2", "samm", "smic")
METRICS = ("uf1", "uar", "acc")
POOLINGS = ("pooled", "per_fold_mean")
COLUMNS = ("model", "variant", "inputs", "protocol", "selection", "seeds", "n_rounds",
           "minutes_per_round",
           "database", "pooling", *(f"{m}_{s}" for m in METRICS for s in ("mean", "sd")),
           *(f"published_{m}" for m in METRICS), "published_as", "status", "run", "command")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the leaderboard (per database and pooling).

    Attributes:
        run: the run folder, relative to the runs root.
        model, variant, inputs: what was trained, on what.
        protocol: the evaluation (``cde``).
        selection: how its settings were fixed (``"fixed settings, last epoch"`` or the inner
            cross-validation rule).
        command: the command that (re)generates the run folder.
        published: ``{"paper", "table", "method"}`` of ``results/published.csv``, or None.
    """

    run: str
    model: str
    variant: str
    inputs: str
    protocol: str = "cde"
    selection: str = "fixed settings, last epoch"
    command: str = ""
    published: Optional[Mapping] = None


def _read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def round_scores(run_dir) -> dict[int, dict[tuple[str, str], float]]:
    """``{round: {(database, metric): value}}`` of a finished run (empty if unfinished)."""
    path = Path(run_dir) / "metrics_per_round.csv"
    found: dict[int, dict] = {}
    if path.is_file():
        for row in _read_csv(path):
            found.setdefault(int(row["round"]), {})[(row["database"], row["metric"])] = \
                float(row["value"])
    return found


def _seeds(run_dir, n_rounds: int) -> str:
    try:
        record = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return ""
    seed = record.get("seed", record.get("config", {}).get("seed"))
    rounds = "round 0" if n_rounds == 1 else f"rounds 0-{n_rounds - 1}"
    return f"base seed {seed}, {rounds} (fold seeds in run.json)"


def minutes_per_round(run_dir, n_rounds: int) -> str:
    """The folds' training time per round (``metrics_per_fold.csv``; a fold-parallel group's time
    is shared among its folds), in minutes; empty where unknown."""
    path = Path(run_dir) / "metrics_per_fold.csv"
    if not path.is_file() or not n_rounds:
        return ""
    seconds = [float(r["seconds"]) for r in _read_csv(path) if r.get("seconds")]
    return f"{sum(seconds) / n_rounds / 60:.1f}" if seconds else ""


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def _published(row: Row, published: Sequence[Mapping], database: str, pooling: str) -> dict:
    """The paper's pooled numbers beside a pooled line (a per-fold mean gets none)."""
    if not row.published or pooling != "pooled":
        return {}
    found = {f"published_{metric}": _fmt(published_value(published, **row.published,
                                                          dataset=database, metric=metric))
             for metric in METRICS}
    found["published_as"] = (f"{row.published['paper']} Table {row.published['table']}, "
                             f"{row.published['method']}")
    return found


def leaderboard_rows(rows: Sequence[Row], runs_root, published: Sequence[Mapping]
                     ) -> list[dict]:
    """The leaderboard's lines: every row x database x pooling (a missing run: one line)."""
    lines = []
    for row in rows:
        run_dir = Path(runs_root) / row.run
        scores = round_scores(run_dir)
        base = {"model": row.model, "variant": row.variant, "inputs": row.inputs,
                "protocol": row.protocol, "selection": row.selection, "run": row.run,
                "command": row.command}
        if not scores:
            lines.append({**base, "n_rounds": 0, "database": "all", "pooling": "pooled",
                          **_published(row, published, "all", "pooled"),
                          "status": "not run yet" if not run_dir.exists() else "unfinished"})
            continue
        n_rounds = len(scores)
        databases = [d for d in DATABASES if any((d, "uf1") in s for s in scores.values())]
        for database in databases:
            for pooling in POOLINGS:
                line = {**base, "seeds": _seeds(run_dir, n_rounds), "n_rounds": n_rounds,
                        "minutes_per_round": minutes_per_round(run_dir, n_rounds),
                        "database": database, "pooling": pooling, "status": "finished"}
                for metric in METRICS:
                    key = metric if pooling == "pooled" else f"per_fold_mean_{metric}"
                    values = [s[(database, key)] for s in scores.values() if (database, key) in s]
                    line[f"{metric}_mean"] = _fmt(float(np.mean(values))) if values else ""
                    line[f"{metric}_sd"] = _fmt(float(np.std(values, ddof=1))) \
                        if len(values) > 1 else ""
                line.update(_published(row, published, database, pooling))
                lines.append(line)
    return lines


# -- a claimed difference --------------------------------------------------------------------------

def _subject_matrices(run_dir, classes: int) -> tuple[list[str], np.ndarray]:
    """Subjects and ``rounds x subjects x K x K`` confusion counts of a run's predictions."""
    rows = _read_csv(Path(run_dir) / "predictions.csv")
    subjects = sorted({r["subject"] for r in rows})
    rounds = sorted({int(r["round"]) for r in rows})
    where = {s: i for i, s in enumerate(subjects)}
    counts = np.zeros((len(rounds), len(subjects), classes, classes))
    for r in rows:
        counts[rounds.index(int(r["round"])), where[r["subject"]], int(r["y_true"]),
               int(r["y_pred"])] += 1
    return subjects, counts


def uf1_of(matrices: np.ndarray) -> np.ndarray:
    """UF1 (mean per-class F1, classes fixed) of ``... x K x K`` confusion counts."""
    return per_class_f1(matrices).mean(axis=-1)


def uar_of(matrices: np.ndarray) -> np.ndarray:
    """UAR (mean per-class recall) of ``... x K x K`` confusion counts."""
    return per_class_recall(matrices).mean(axis=-1)


def paired_difference(run_a, run_b, *, classes: int = 3, metric: str = "uf1",
                      n_boot: int = 10000, seed: int = 0) -> dict:
    """Is run A better than run B on the same folds, and by how much?

    * Over rounds: the per-round pooled scores paired by round index (round r of both runs is
      the r-th repetition), mean difference and its 95 % t-interval (needs 2 rounds).
    * Over subjects: the test subjects resampled with replacement ``n_boot`` times (the same
      draw for both runs), the pooled score of each run averaged over its rounds, the 95 %
      percentile interval of A - B. This carries the uncertainty of a 68-subject test set, which
      more seeds cannot remove.

    Returns:
        ``{"metric", "a", "b", "difference", "rounds_a", "rounds_b", "paired_rounds",
        "paired_mean", "paired_ci_low", "paired_ci_high", "bootstrap_ci_low",
        "bootstrap_ci_high", "bootstrap_p_not_greater"}`` (None where not computable).
    """
    from scipy import stats

    score = {"uf1": uf1_of, "uar": uar_of}[metric]
    subjects_a, counts_a = _subject_matrices(run_a, classes)
    subjects_b, counts_b = _subject_matrices(run_b, classes)
    if subjects_a != subjects_b:
        raise ValueError(f"{run_a} and {run_b} test different subjects")
    per_round_a = score(counts_a.sum(axis=1))
    per_round_b = score(counts_b.sum(axis=1))
    result = {"metric": metric, "a": str(run_a), "b": str(run_b),
              "a_mean": float(per_round_a.mean()), "b_mean": float(per_round_b.mean()),
              "difference": float(per_round_a.mean() - per_round_b.mean()),
              "rounds_a": len(per_round_a), "rounds_b": len(per_round_b)}
    paired = min(len(per_round_a), len(per_round_b))
    diffs = per_round_a[:paired] - per_round_b[:paired]
    result.update(paired_rounds=paired, paired_mean=float(diffs.mean()),
                  paired_ci_low=None, paired_ci_high=None)
    if paired > 1:
        half = stats.t.ppf(0.975, paired - 1) * diffs.std(ddof=1) / np.sqrt(paired)
        result.update(paired_ci_low=float(diffs.mean() - half),
                      paired_ci_high=float(diffs.mean() + half))
    rng = np.random.default_rng(seed)
    # each draw as how often it takes each subject: rounds x draws x K x K without the copies
    taken = rng.multinomial(len(subjects_a), np.full(len(subjects_a), 1 / len(subjects_a)),
                            size=n_boot).astype(float)
    boot_a = score(np.einsum("bs,rskl->rbkl", taken, counts_a)).mean(axis=0)
    boot_b = score(np.einsum("bs,rskl->rbkl", taken, counts_b)).mean(axis=0)
    delta = boot_a - boot_b
    result.update(bootstrap_ci_low=float(np.percentile(delta, 2.5)),
                  bootstrap_ci_high=float(np.percentile(delta, 97.5)),
                  bootstrap_p_not_greater=float(np.mean(delta <= 0)), n_boot=n_boot)
    return result


# -- the picture -----------------------------------------------------------------------------------

def _label(line: Mapping) -> str:
    name = line["variant"] if line["model"] == "FR" else line["model"]
    return name + ("" if line["selection"].startswith("fixed") else ", inner CV")


def plot_leaderboard(path, lines: Sequence[Mapping], runs_root, metric: str = "uf1") -> Path:
    """Per database, one bar per row: the mean pooled ``metric`` over rounds, each round a dot,
    the published number a black tick (``path``, PNG; Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pooled = [line for line in lines if line.get("pooling") == "pooled"
              and line.get("status") == "finished"]
    labels = list(dict.fromkeys(_label(line) for line in pooled))
    databases = [d for d in DATABASES if any(line["database"] == d for line in pooled)]
    figure = Figure(figsize=(3.4 * len(databases) + 2.6, 0.3 * len(labels) + 1.4),
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(databases), squeeze=False, sharey=True)[0]
    for ax, database in zip(axes, databases):
        for position, label in enumerate(labels):
            line = next((x for x in pooled if x["database"] == database and _label(x) == label),
                        None)
            if line is None:
                continue
            ax.barh(position, float(line[f"{metric}_mean"]), color="#8fb3d9")
            per_round = [s[(database, metric)] for s in
                         round_scores(Path(runs_root) / line["run"]).values()
                         if (database, metric) in s]
            ax.plot(per_round, [position] * len(per_round), "o", color="#1f4e79", ms=3)
            if line.get(f"published_{metric}"):
                ax.plot([float(line[f"published_{metric}"])], [position], "|", color="black",
                        ms=12, mew=2)
        ax.set_xlim(0, 1)
        ax.set_title("composite" if database == "all" else database)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()  # shared: once
    figure.suptitle(f"pooled {metric.upper()} over all folds; bar: mean over rounds, dots: each "
                    "round, |: published", fontsize=10)
    return save_png(figure, path)
