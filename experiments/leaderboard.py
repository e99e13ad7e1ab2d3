"""The unified table: every model on the same 442 MEGC2019 inputs under CDE, over rounds.

Writes, from the committed run folders (nothing is trained here)::

    python -m experiments.leaderboard [--runs results] [--out results]

* ``leaderboard.csv``: one line per model x database x pooling (pooled MEGC2019 scores, and the
  per-fold means labelled ``per_fold_mean``), mean and sd over rounds (sd empty for one round),
  the published number beside it where the paper has one, the seeds, the selection rule, the
  run folder and the command that regenerates it; a run not trained yet is listed as such;
* ``leaderboard.png``: per database, a bar per model (mean), a dot per round, the published tick;
* ``fr_table1.md``: FR Table 1 regenerated, mean ± sd over rounds beside the published numbers;
* ``leaderboard_differences.csv``: the paired differences this study tests (FR Table 1's claim
  that FR beats Basic Inception, each reading and input against the literal FR), with a 95 %
  interval over rounds and a bootstrap over the 68 test subjects
  (``mer_keras.leaderboard.paired_difference``).

The flow runs are ``experiments/study_cde.py``'s; the apex-crop runs (Micro-Attention, MTMNet)
are the reduced CPU runs of their own configs, with the commands of the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from data_prep.atomic import atomic_write_csv, atomic_write_text
from mer_keras.leaderboard import COLUMNS, Row, leaderboard_rows, paired_difference, \
    plot_leaderboard
from mer_keras.report import read_published

#: the repository (experiments.common's REPO, without importing the training core)
REPO = Path(__file__).resolve().parents[1]
STUDY = "python -m experiments.study_cde --data work/cache/megc442 --rounds {rounds} --only {run}"
FLOWS = "442 MEGC2019 flows (28 x 28; {channels})"
FIXED = "fixed settings, last epoch"
INNER = "inner CV on training subjects (3 groups; grid in study_cde)"


def _study(run: str, rounds: int = 5) -> str:
    """The command that trains (or resumes) ``run``: 5 rounds, or one for an inner-CV run."""
    return STUDY.format(rounds=rounds, run=run)


def _fr_row(run: str, variant: str, inputs: str = "u, v; min-max", published=None,
            selection: str = FIXED) -> Row:
    return Row(run=run, model="FR", variant=variant, inputs=FLOWS.format(channels=inputs),
               selection=selection, command=_study(run), published=published)


def rows() -> list[Row]:
    """The leaderboard's rows, in the order they are shown."""
    fr_table = [("fr_cde_basic_megc442", "Basic Inception (Table 1a)", "1a", "Basic Inception"),
                ("fr_cde_fc_megc442", "FR-fc (Table 1b)", "1b", "FR-fc"),
                ("fr_cde_concat_megc442", "FR-concatenated (Table 1c)", "1c", "FR-concatenated"),
                ("fr_cde_megc442", "FR, literal (Table 2)", "2", "FR")]
    readings = [("fr_cde_scaled_megc442", "FR, attention x width (reading)", "u, v; min-max"),
                ("fr_cde_sigmoid_megc442", "FR, sigmoid gates (reading)", "u, v; min-max"),
                ("fr_cde_median_megc442", "FR, literal, median-centred input",
                 "u, v; per-image median-centred")]
    found = [
        Row(run="logreg_cde_megc442", model="logistic regression", variant="C = 0.01, balanced",
            inputs=FLOWS.format(channels="u, v, strain; raw"),
            command=_study("logreg_cde_megc442")),
        Row(run="off_apexnet_cde_megc442", model="OFF-ApexNet", variant="300 epochs (paper 3000)",
            inputs=FLOWS.format(channels="u, v; min-max"),
            command=_study("off_apexnet_cde_megc442"),
            published={"paper": "fr", "table": "2", "method": "OFF-ApexNet"}),
    ]
    found += [_fr_row(run, variant, published={"paper": "fr", "table": table, "method": method})
              for run, variant, table, method in fr_table]
    found += [_fr_row(run, variant, inputs) for run, variant, inputs in readings]
    # the study's *_innercv runs: OFF-ApexNet and every FR row (found so far but the floor), one
    # round each: a selected run costs about 2.5 fixed-settings rounds
    selected = [dataclasses.replace(row, run=row.run + "_innercv", selection=INNER,
                                    command=_study(row.run + "_innercv", rounds=1))
                for row in found[1:]]
    found.append(Row(run="strcn_g_cde_28px_megc442", model="STRCN-G",
                     variant="adapted to 28 x 28: 8-fold pools, no augmentation (paper: 300 x 245)",
                     inputs=FLOWS.format(channels="u, v; as imported"),
                     command=_study("strcn_g_cde_28px_megc442")))
    found += [
        Row(run="micro_attention_megc2019_megc442_48px_w32_nocrops_12ep", model="Micro-Attention",
            variant="48 px, half width, 12 epochs, random init (reduced for CPU)",
            inputs="442 MEGC2019 apex crops; macro pre-training on CK+48",
            command="README: Micro-Attention and MTMNet on the real apex crops"),
        Row(run="mtmnet_cde_ckplus48_megc442_48px_w8_10ep", model="MTMNet",
            variant="48 px, width 1/8, 10 + 10 epochs, random init (reduced for CPU)",
            inputs="442 MEGC2019 apex crops; macro CK+48",
            command="README: Micro-Attention and MTMNet on the real apex crops",
            published={"paper": "mtmnet", "table": "3", "method": "MTMNet (L_EID; L_MTM; CK+)"}),
    ]
    return found + selected


#: (A, B, what is tested): run folders of the same 68 folds
DIFFERENCES = (
    ("fr_cde_megc442", "fr_cde_basic_megc442",
     "FR Table 1: FR beats Basic Inception (published 0.7838 - 0.7360 = +0.0478 UF1)"),
    ("fr_cde_fc_megc442", "fr_cde_basic_megc442", "FR-fc against Basic Inception (+0.0017)"),
    ("fr_cde_concat_megc442", "fr_cde_basic_megc442",
     "FR-concatenated against Basic Inception (+0.0272)"),
    ("fr_cde_scaled_megc442", "fr_cde_megc442", "attention x width against the literal FR"),
    ("fr_cde_sigmoid_megc442", "fr_cde_megc442", "sigmoid gates against the literal FR"),
    ("fr_cde_median_megc442", "fr_cde_megc442", "median-centred input against min-max"),
    ("fr_cde_megc442", "logreg_cde_megc442", "FR against the logistic-regression floor"),
    ("fr_cde_megc442_innercv", "fr_cde_megc442",
     "FR's epochs chosen per fold by inner CV on its training subjects against the fixed 40"),
    ("fr_cde_basic_megc442_innercv", "fr_cde_basic_megc442",
     "Basic Inception's epochs chosen per fold by inner CV against the fixed 40"),
    ("fr_cde_fc_megc442_innercv", "fr_cde_fc_megc442",
     "FR-fc's epochs chosen per fold by inner CV against the fixed 40"),
    ("fr_cde_concat_megc442_innercv", "fr_cde_concat_megc442",
     "FR-concatenated's epochs chosen per fold by inner CV against the fixed 40"),
    ("fr_cde_megc442_innercv", "fr_cde_basic_megc442_innercv",
     "FR Table 1 (+0.0478) with both models' epochs chosen per fold by inner CV"),
    ("fr_cde_fc_megc442_innercv", "fr_cde_basic_megc442_innercv",
     "FR-fc against Basic Inception (+0.0017), both models' epochs chosen by inner CV"),
    ("fr_cde_concat_megc442_innercv", "fr_cde_basic_megc442_innercv",
     "FR-concatenated against Basic Inception (+0.0272), both models' epochs chosen by inner CV"),
)
DIFFERENCE_COLUMNS = ("tested", "a", "b", "metric", "a_mean", "b_mean", "difference",
                      "rounds_a", "rounds_b", "paired_rounds", "paired_mean", "paired_ci_low",
                      "paired_ci_high", "bootstrap_ci_low", "bootstrap_ci_high",
                      "bootstrap_p_not_greater", "n_boot")


def differences(runs: Path) -> list[dict]:
    """Every pair of :data:`DIFFERENCES` whose two runs have finished, in UF1 and UAR."""
    found = []
    for a, b, tested in DIFFERENCES:
        if not all((runs / r / "predictions.csv").is_file() for r in (a, b)):
            continue
        for metric in ("uf1", "uar"):
            result = paired_difference(runs / a, runs / b, metric=metric)
            found.append({"tested": tested, **result, "a": a, "b": b,
                          **{k: f"{v:.4f}" for k, v in result.items()
                             if isinstance(v, float)}})
    return found


def _cell(line: dict, metric: str) -> str:
    mean, sd = line.get(f"{metric}_mean", ""), line.get(f"{metric}_sd", "")
    return f"{mean} ± {sd}" if sd else mean


def markdown(lines: list[dict]) -> str:
    """The composite's pooled rows as a Markdown table (the README's), per-fold means beside."""
    per_fold = {(x["run"]): x for x in lines
                if x.get("pooling") == "per_fold_mean" and x["database"] == "all"}
    out = ["| model | variant | selection | rounds | UF1 | UAR | published UF1 / UAR | "
           "per-fold mean UF1 | min / round | run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for line in lines:
        if line["database"] != "all" or line.get("pooling") != "pooled":
            continue
        selection = "fixed" if line["selection"].startswith("fixed") else "inner CV"
        if line["status"] != "finished":
            out.append(f"| {line['model']} | {line['variant']} | {selection} | 0 | "
                       f"{line['status']} | | | | | `{line['run']}` |")
            continue
        published = " / ".join(v for v in (line.get("published_uf1"), line.get("published_uar"))
                               if v)
        out.append(f"| {line['model']} | {line['variant']} | {selection} | {line['n_rounds']} | "
                   f"{_cell(line, 'uf1')} | {_cell(line, 'uar')} | {published or '-'} | "
                   f"{_cell(per_fold.get(line['run'], {}), 'uf1')} | "
                   f"{line.get('minutes_per_round', '')} | `{line['run']}` |")
    return "\n".join(out) + "\n"


#: FR Table 1's models: (leaderboard variant, published method)
TABLE1 = (("Basic Inception (Table 1a)", "Basic Inception"), ("FR-fc (Table 1b)", "FR-fc"),
          ("FR-concatenated (Table 1c)", "FR-concatenated"), ("FR, literal (Table 2)", "FR"))


def table1(lines: list[dict]) -> str:
    """FR Table 1 regenerated: published UF1 / UAR beside the mean ± sd over rounds, at fixed
    settings and with inner-CV selection (Markdown)."""
    out = ["| Table 1 model | published UF1 | published UAR | UF1 (fixed) | UAR (fixed) | rounds | "
           "UF1 (inner CV) | UAR (inner CV) | rounds |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, method in TABLE1:
        found = {("fixed" if x["selection"].startswith("fixed") else "inner"): x for x in lines
                 if x["model"] == "FR" and x["variant"] == variant and x["database"] == "all"
                 and x.get("pooling") == "pooled"}
        fixed, inner = found.get("fixed", {}), found.get("inner", {})
        published = fixed.get("published_uf1", ""), fixed.get("published_uar", "")
        out.append(f"| {method} | {published[0] or '-'} | {published[1] or '-'} | "
                   f"{_cell(fixed, 'uf1') or '-'} | {_cell(fixed, 'uar') or '-'} | "
                   f"{fixed.get('n_rounds', 0)} | {_cell(inner, 'uf1') or '-'} | "
                   f"{_cell(inner, 'uar') or '-'} | {inner.get('n_rounds', 0)} |")
    return "## FR Table 1 on the 442 MEGC2019 flows (pooled, mean ± sd over rounds)\n\n" + \
        "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=REPO / "results",
                        help="where the run folders are (results)")
    parser.add_argument("--out", type=Path, default=REPO / "results",
                        help="where leaderboard.csv/.png go (results)")
    parser.add_argument("--published", type=Path, default=REPO / "results" / "published.csv")
    args = parser.parse_args(argv)
    lines = leaderboard_rows(rows(), args.runs, read_published(args.published))
    atomic_write_csv(args.out / "leaderboard.csv", lines, COLUMNS)
    plot_leaderboard(args.out / "leaderboard.png", lines, args.runs)
    atomic_write_text(args.out / "fr_table1.md", table1(lines))
    found = differences(args.runs)
    atomic_write_csv(args.out / "leaderboard_differences.csv", found, DIFFERENCE_COLUMNS)
    print(markdown(lines), end="")
    for row in found:
        print(f"{row['tested']} [{row['metric']}]: {row['difference']} "
              f"(subjects bootstrap 95 % {row['bootstrap_ci_low']}..{row['bootstrap_ci_high']})")
    print(f"written: {args.out / 'leaderboard.csv'}, leaderboard.png, leaderboard_differences.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
