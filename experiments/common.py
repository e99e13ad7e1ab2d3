"""What every experiment config shares: the ``Experiment`` record and the command line that runs it.

A config module defines ``get_config(smoke=False) -> Experiment`` (or ``get_configs`` for a table of
several runs) and ends with ``main(get_config)``. The command line is typed: ``--epochs 3`` arrives
as an int and a bad value is refused by argparse, never silently taken as a string.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

from data_prep.cache import read_cache_meta
from mer_keras.report import summarize_targets
from mer_keras.training import DEFAULT_ENGINE, ENGINES, TrainConfig, run_protocol
from mer_keras.training.run_lock import RunFolderError, run_folder_lock

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "results" / "published.csv"


#: ``--smoke``: a seconds-long check of the whole chain, whatever the config's budget.
SMOKE = {"epochs": 1, "rounds": 1}
#: ``--smoke`` of a config with snapshot epochs: it keeps one, so the snapshot path is checked too.
EPOCH_STUDY_SMOKE = {"epochs": 2, "rounds": 1, "snapshot_epochs": (1,)}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproduced run: its training config, the cache protocol it needs, what it reproduces.

    Attributes:
        name: the run folder's name under ``--out``.
        train: the training config (``mer_keras.training.TrainConfig``).
        protocol: the ``data_prep`` protocol the cache must have been prepared for.
        report: the published row this run is compared with: ``paper``, ``table``, ``method`` and
            optionally ``dataset_map``, ``classes``, ``protocol`` (see
            ``mer_keras.report.summarize_run``) and, for an epoch study, ``snapshots`` (paper
            epochs -> published method, ``mer_keras.report.snapshot_methods``); or a list of them
            for a run that several tables report (``mer_keras.report.summarize_targets``).
        stage: the ``python -m data_prep`` command that makes its cache: ``"flow"`` (onset->apex
            flow, also imported flow images), ``"strcn"`` (STRCN's sequences) or ``"frames"``
            (apex face frames, also the imported MEGC2019 apex crops).
        engine: the fold engine (``mer_keras.training.engines``): ``"fold_parallel"`` (default,
            the fastest where a model stacks), ``"compile_once"`` or ``"per_fold_fit"``.
        synthetic: the config's reduced settings for the embedded synthetic default
            (``--synthetic``; the run scripts' no-argument job): TrainConfig changes, with
            ``model_options`` merged into the config's. Each config says why its own are enough.
        smoke: the TrainConfig changes of ``--smoke`` (default :data:`SMOKE`; an epoch study keeps
            one snapshot); a smoke run also trains only the training core's first folds.
        macro: the run pre-trains on macro-expression faces (``engine="transfer"``): it needs
            ``--macro CACHE``, a ``python -m data_prep macro`` cache of the same protocol.
    """

    name: str
    train: TrainConfig
    protocol: str
    report: Union[Mapping, Sequence[Mapping]]
    stage: str = "flow"
    engine: str = DEFAULT_ENGINE
    synthetic: Mapping = dataclasses.field(default_factory=dict)
    smoke: Mapping = dataclasses.field(default_factory=lambda: dict(SMOKE))
    macro: bool = False


#: macro database (``python -m data_prep macro``) -> its name in the papers' tables; a config's
#: run name and published method may hold ``{macro}`` (the databases) and ``{macro_label}``.
MACRO_LABELS = {"ckplus": "CK+", "ckplus48": "CK+", "mmi": "MMI", "oulu": "Oulu-CASIA"}

#: the ``cache.json`` kinds each data stage writes.
STAGE_KINDS = {"flow": ("flow", "imported-flow-images"), "strcn": ("strcn",),
               "frames": ("frames", "imported-apex-images")}


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="a prepared cache (python -m data_prep flow / import-flow-images)")
    parser.add_argument("--out", type=Path, default=REPO / "results",
                        help="runs are written to OUT/<experiment>/ (default: results/)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long check: 1 epoch, 1 round, the first 3 subjects")
    parser.add_argument("--name", type=str, default=None,
                        help="run folder name (default: the experiment's name)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the config's epochs (an epoch study's snapshot epochs are "
                             "scaled with them)")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--seed", type=int, default=None, help="override the base seed")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=JSON",
                        type=_field_change,
                        help="override any TrainConfig field with a JSON value, e.g. "
                             "--set 'model_options={\"feature_maps\": 16}' (repeatable)")
    parser.add_argument("--suffix", type=str, default="",
                        help="append this to every run folder's name (for a config of several "
                             "runs, where --name cannot be used)")
    parser.add_argument("--synthetic", action="store_true",
                        help="the config's reduced settings for the embedded synthetic default "
                             "(what the run scripts use with no --data)")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="fold engine (default: the config's, fold_parallel for the flow "
                             "models); results agree within seed noise, not bit for bit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--wait", action="store_true",
                        help="if another run is writing into the run folder, wait for it to end "
                             "(default: stop at once, naming it)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="of a config with several runs, run only these (by run name; "
                             "repeatable)")
    parser.add_argument("--macro", type=Path, default=None,
                        help="macro-expression faces to pre-train on (python -m data_prep "
                             "macro), for Micro-Attention and MTMNet")
    parser.add_argument("--init-weights", type=Path, default=None,
                        help="initial backbone weights (e.g. your ImageNet ResNet, .keras or "
                             ".weights.h5 with this project's layer names); nothing is "
                             "downloaded, without it the backbone starts from random weights")
    return parser


def _field_change(text: str) -> tuple[str, object]:
    """``"FIELD=JSON"`` -> ``(FIELD, value)``, for ``--set``; refuses unknown fields and bad JSON."""
    field, sep, value = text.partition("=")
    fields = sorted(f.name for f in dataclasses.fields(TrainConfig))
    if not sep or field not in fields:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIELD=JSON with FIELD one of {', '.join(fields)}")
    try:
        return field, json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not JSON ({error}); a string "
                                         "needs quotes, e.g. optimizer='\"adam\"'") from None


def _with_changes(train: TrainConfig, changes: Mapping, *, merge_options: bool = False
                  ) -> TrainConfig:
    """``train`` with ``changes``: an epoch study's snapshot epochs kept in proportion to a new
    ``epochs`` (1000..4000 of 5000 become 100..400 of 500); ``merge_options``: ``model_options``
    and ``transfer`` merged into the config's rather than replacing them."""
    changes = dict(changes)
    for key in ("model_options", "transfer"):
        if merge_options and key in changes:
            changes[key] = {**getattr(train, key), **changes[key]}
    epochs = changes.get("epochs")
    if epochs is not None and train.snapshot_epochs and "snapshot_epochs" not in changes:
        scale = epochs / train.epochs
        changes["snapshot_epochs"] = sorted({max(1, round(e * scale))
                                             for e in train.snapshot_epochs} - {epochs})
    return train.replace(**changes) if changes else train


def _overridden(experiment: Experiment, args) -> Experiment:
    train = experiment.train
    if getattr(args, "synthetic", False):
        train = _with_changes(train, experiment.synthetic, merge_options=True)
    changes = {key: value for key, value in args.changes}
    changes.update({key: value for key, value in
                    (("epochs", args.epochs), ("rounds", args.rounds), ("seed", args.seed))
                    if value is not None})
    train = _with_changes(train, changes)
    name = (args.name or experiment.name) + args.suffix
    engine = getattr(args, "engine", None) or experiment.engine
    return dataclasses.replace(experiment, train=train, name=name, engine=engine)


def run(experiment: Experiment, data: Path, out: Path, *, smoke: bool = False,
        progress: bool = True, macro: Optional[Path] = None,
        init_weights: Optional[Path] = None, wait: bool = False) -> list[dict]:
    """Train every fold of ``experiment`` on the cache ``data``; write and return ``summary.csv``.

    ``macro`` and ``init_weights`` are the transfer chains' (``Experiment.macro``). The run folder's
    lock is held from the training to ``summary.csv`` (``wait``: see ``run_protocol``)."""
    meta = read_cache_meta(data)
    how = f"prepare it with `python -m data_prep {experiment.stage} --protocol " \
          f"{experiment.protocol} ...`"
    if meta.get("kind") not in STAGE_KINDS[experiment.stage]:
        raise ValueError(f"{data}: a {meta.get('kind')!r} cache, but {experiment.name} reads "
                         f"the {experiment.stage!r} stage's ({how})")
    if meta.get("protocol") != experiment.protocol:
        raise ValueError(
            f"{data}: the cache was prepared for protocol {meta.get('protocol')!r}, but "
            f"{experiment.name} needs {experiment.protocol!r} ({how})")
    sources = None
    if experiment.macro:
        experiment, sources = _with_sources(experiment, meta, macro, init_weights)
    run_dir = Path(out) / experiment.name
    targets = [experiment.report] if isinstance(experiment.report, Mapping) else \
        list(experiment.report)
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda m: None)
    with run_folder_lock(run_dir, wait=wait, say=say):
        # a run with no published counterpart (the logistic-regression floor) records none
        run_protocol(experiment.train, data, run_dir, smoke=smoke, progress=progress,
                     engine=experiment.engine, smoke_changes=experiment.smoke, sources=sources,
                     report=[dict(t) for t in targets] if len(targets) > 1
                     else dict(targets[0]) if targets else None)
        # summary.csv is the final epoch's; an epoch study's snapshots go to the regenerated tables
        rows = summarize_targets(run_dir, PUBLISHED,
                                 [{k: v for k, v in t.items() if k != "snapshots"}
                                  for t in targets])
    print(format_summary(experiment.name, rows, run_dir))
    return rows


def _with_sources(experiment: Experiment, meta: Mapping, macro: Optional[Path],
                  init_weights: Optional[Path]):
    """The transfer sources of ``experiment``, checked against its caches; without onset frames
    in the micro cache, MTMNet's neutral frame becomes another image of the subject (said)."""
    from mer_keras.transfer import TransferSources

    if macro is None:
        raise ValueError(f"{experiment.name} pre-trains on macro-expression faces: give --macro "
                         f"CACHE (python -m data_prep macro --protocol {experiment.protocol} ...)")
    macro_meta = read_cache_meta(macro)
    if macro_meta.get("kind") != "macro" or macro_meta.get("protocol") != experiment.protocol:
        raise ValueError(f"{macro}: a {macro_meta.get('kind')!r} cache of protocol "
                         f"{macro_meta.get('protocol')!r}; {experiment.name} needs a macro cache "
                         f"of protocol {experiment.protocol!r} (python -m data_prep macro "
                         f"--protocol {experiment.protocol} ...)")
    from data_prep.cache import read_index

    databases = sorted({row["database"] for row in read_index(macro)})
    named = {"macro": "+".join(databases),
             "macro_label": "+".join(dict.fromkeys(MACRO_LABELS.get(d, d) for d in databases))}
    targets = [experiment.report] if isinstance(experiment.report, Mapping) else experiment.report
    targets = [{k: v.format(**named) if isinstance(v, str) else v for k, v in t.items()}
               for t in targets]
    experiment = dataclasses.replace(
        experiment, name=experiment.name.format(**named),
        report=targets[0] if isinstance(experiment.report, Mapping) else targets)
    train = experiment.train.replace(experiment=experiment.train.experiment.format(**named))
    if train.transfer.get("neutral") == "onset" and not meta.get("params", {}).get(
            "has_neutral", meta.get("has_neutral", False)):
        print(f"{experiment.name}: the cache has no onset frames; each image's neutral frame is "
              "another image of the same subject (neutral='same-subject', a deviation from "
              "MTMNet's pairs of one video)", file=sys.stderr)
        train = train.replace(transfer={**train.transfer, "neutral": "same-subject"})
    sources = TransferSources(macro_cache=str(macro),
                              init_weights=str(init_weights) if init_weights else None)
    return dataclasses.replace(experiment, train=train), sources


def format_summary(name: str, rows: Sequence[Mapping], run_dir: Path) -> str:
    lines = [f"\n{name}: obtained (pooled over all folds) against published",
             f"{'database':<9} {'metric':<6} {'obtained':>9} {'published':>10} {'difference':>11}"]
    for row in rows:
        lines.append(f"{row['database']:<9} {row['metric']:<6} {row['obtained']:>9} "
                     f"{row['published'] or '-':>10} {row['difference'] or '-':>11}")
    lines.append(f"written to {run_dir} (summary.csv, predictions.csv, metrics.csv, run.json, "
                 "confusion_matrix.png)")
    return "\n".join(lines)


def _matching(experiments: Sequence[Experiment], data: Path) -> list[Experiment]:
    """A table with one run per protocol runs the one that matches the cache; else all of them."""
    protocols = {experiment.protocol for experiment in experiments}
    if len(protocols) == 1:
        return list(experiments)
    protocol = read_cache_meta(data).get("protocol")
    chosen = [e for e in experiments if e.protocol == protocol]
    if not chosen:
        raise ValueError(f"{data}: the cache's protocol {protocol!r} is none of this table's "
                         f"{sorted(protocols)}")
    return chosen


def main(get_configs: Callable[..., Union[Experiment, Sequence[Experiment]]], description: str,
         argv=None) -> int:
    """Command line of a config module: run its experiment(s) on ``--data``."""
    args = build_parser(description).parse_args(argv)
    experiments = get_configs(smoke=args.smoke)
    if isinstance(experiments, Experiment):
        experiments = [experiments]
    if args.name and len(experiments) > 1:
        print("error: --name names one run; this config has several", file=sys.stderr)
        return 2
    if args.only:
        from fnmatch import fnmatchcase

        def chosen(experiment, name):  # "{macro}" in a run name stands for any macro database
            return name == experiment.name or fnmatchcase(
                name, experiment.name.replace("{macro}", "*").replace("{macro_label}", "*"))

        unknown = sorted(n for n in args.only if not any(chosen(e, n) for e in experiments))
        if unknown:
            print(f"error: --only {unknown}: not among this config's runs "
                  f"{[e.name for e in experiments]}", file=sys.stderr)
            return 2
        experiments = [e for e in experiments if any(chosen(e, n) for n in args.only)]
    try:
        experiments = _matching(experiments, args.data)
        for experiment in experiments:
            run(_overridden(experiment, args), args.data, args.out, smoke=args.smoke,
                progress=not args.quiet, macro=args.macro, init_weights=args.init_weights,
                wait=args.wait)
    except (ValueError, FileNotFoundError, KeyError, RunFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
