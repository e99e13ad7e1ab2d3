"""The run-folder format: fold files, resume, stale runs.

A run folder (``out_dir``) holds::

    run.json                 resolved config and its hash, seeds, versions, cache fingerprint,
                             engine, timings
    folds/<subject>.csv      one finished fold (round 0): sample, subject, database, y_true, y_pred,
                             prob_<class>..., fold_seed, config_hash, cache_fingerprint
    folds/<subject>.json     that fold's training history, engine and timing
    round_<r>/folds/...      the same for round r >= 1 (``config.rounds`` > 1)
    predictions.csv          every fold of every round, pooled
    metrics_per_fold.csv     uf1/uar/acc of each fold (for the per-fold mean; not the MEGC figure)
    metrics_per_round.csv    pooled scores of each round (all and per database)
    metrics_by_epoch.csv     with ``config.snapshot_epochs``: the pooled scores (mean and std over
                             rounds) of the predictions each fold also made after those epochs
                             (fixed before training, never chosen on a test subject): an epoch
                             study from one run
    metrics_by_epoch_per_round.csv  the same, per round (no mean)
    metrics.csv              the run's scores: mean and std over rounds of the pooled scores
                             (all and per database), and the per-fold means, labelled
                             ``per_fold_mean_*``
    confusion_matrix.png     pooled confusion matrices (all databases, then each)
    summary.csv              the experiment command's comparison with the published numbers
    pretrained/              a transfer chain's cached macro pre-training (``mer_keras.transfer``)
    stale/<time>/            the outputs of earlier configs or caches, moved aside
    .lock                    held while a run writes here (:mod:`~mer_keras.training.run_lock`)

Each fold file is written atomically as soon as the fold ends, so a killed run loses no finished
fold; rerunning skips every fold whose file records the same config hash and cache fingerprint,
and the scores are read only from such files (:func:`fold_problem`). A run folder whose fold files,
side files or ``run.json`` record another config or cache is stale: everything a run writes there
(:func:`run_outputs`) is moved aside together (``stale/<time>``), with a message, and the run
starts over. The move takes the files that record no hash first, so a run killed in the middle
leaves a folder that is still seen as stale, and ``.stale_move.json`` names the folder that the next
run finishes the move into. One run at a time writes into a run folder
(:mod:`mer_keras.training.run_lock`).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Optional, Sequence

from data_prep.cache import CacheData, atomic_write_csv, atomic_write_text
from mer_keras.training.folds import FoldResult
from mer_keras.training.run_lock import LOCK_NAME, RunFolderError

#: what a run writes at the top of its folder (``summary.csv`` is the experiment command's); a
#: stale move takes these and every other file there, whatever its name.
RESULT_FILES = ("predictions.csv", "metrics_per_fold.csv", "metrics_per_round.csv", "metrics.csv",
                "metrics_by_epoch.csv", "metrics_by_epoch_per_round.csv", "run.json",
                "confusion_matrix.png", "summary.csv", "selection.csv", "probes_by_epoch.png")
#: the folders a run (or the report) writes inside its folder. A transfer chain's
#: ``pretrained/`` stays: its files are named by the settings and data they were trained on (a
#: cache, not a result), and macro pre-training can take hours.
RUN_DIRS = ("folds", "round_*", "tables", "selection")
STALE_DIR = "stale"
#: names the folder a half-done stale move goes on into.
MOVE_JOURNAL = ".stale_move.json"


def _safe_subject(subject: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-/" else "_" for c in subject)
    return "/".join(part if part not in ("", ".", "..") else "_" for part in safe.split("/"))


def round_dir(out_dir, round_index: int) -> Path:
    """Round 0 lives in ``out_dir`` itself; round r >= 1 in ``out_dir/round_<r>``."""
    out_dir = Path(out_dir)
    return out_dir if round_index == 0 else out_dir / f"round_{round_index:02d}"


def fold_path(out_dir, round_index: int, subject: str) -> Path:
    """``<round dir>/folds/<subject>.csv`` (a prefixed subject id makes a database sub-folder)."""
    return round_dir(out_dir, round_index) / "folds" / f"{_safe_subject(subject)}.csv"


def prob_columns(classes: Sequence[str]) -> list[str]:
    return [f"prob_{name}" for name in classes]


FOLD_COLUMNS = ("sample", "subject", "database", "y_true", "y_pred")


def write_fold(path: Path, result: FoldResult, data: CacheData, *, round_index: int,
                config_hash: str) -> None:
    rows = []
    for i, index in enumerate(result.test_idx):
        row = {
            "sample": data.index[index]["sample"], "subject": data.subjects[index],
            "database": data.databases[index], "y_true": int(result.y_true[i]),
            "y_pred": int(result.y_pred[i]),
        }
        row.update({col: repr(float(p)) for col, p in
                    zip(prob_columns(data.classes), result.probabilities[i])})
        row.update({"round": round_index, "fold_seed": result.fold_seed,
                    "config_hash": config_hash, "cache_fingerprint": data.fingerprint})
        rows.append(row)
    side = {"test_subject": result.test_subject, "fold_seed": result.fold_seed,
            "round": round_index, "n_train": result.n_train, "n_validation": result.n_validation,
            "best_epoch": result.best_epoch, "seconds": result.seconds, "history": result.history,
            "engine": result.engine,
            "config_hash": config_hash, "cache_fingerprint": data.fingerprint,
            "snapshots": {str(epoch): pred for epoch, pred in sorted(result.snapshots.items())}}
    if result.probes:
        side["probes"] = result.probes
    if result.selection:
        side["selection"] = result.selection
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=1))
    # the CSV is the fold's commit mark: written last, atomically
    atomic_write_csv(path, rows, FOLD_COLUMNS + tuple(prob_columns(data.classes)))


def read_fold(path) -> list[dict]:
    """The rows of a fold file; ``[]`` when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _read_json(path) -> dict:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_side(path) -> dict:
    """The side file (``.json``) of the fold file ``path``; ``{}`` when missing or unreadable."""
    return _read_json(Path(path).with_suffix(".json"))


def _made_by(config_hash, fingerprint) -> str:
    return f"config {str(config_hash)[:12]} on cache {str(fingerprint)[:12]}"


def fold_problem(path: Path, expected_samples: Sequence[str], config_hash: str,
                 fingerprint: str) -> Optional[str]:
    """Why the fold file ``path`` is not a finished fold of this run, or None when it is.

    A finished fold lists exactly ``expected_samples`` and records ``config_hash`` and the cache
    ``fingerprint`` in every row and in its side file (where that records them)."""
    rows = read_fold(path)
    if not rows:
        return "is missing" if not Path(path).exists() else "is empty or unreadable"
    ours = _made_by(config_hash, fingerprint)
    for row in rows:
        made = (row.get("config_hash"), row.get("cache_fingerprint"))
        if made != (config_hash, fingerprint):
            return f"was made with {_made_by(*made)}, not this run's {ours}"
    if [r.get("sample") for r in rows] != list(expected_samples):
        return "holds other samples than the fold's test samples"
    side = read_side(path)
    made = (side.get("config_hash", config_hash), side.get("cache_fingerprint", fingerprint))
    if made != (config_hash, fingerprint):
        return (f"has a side file {Path(path).with_suffix('.json').name} made with "
                f"{_made_by(*made)}, not this run's {ours}")
    return None


def fold_is_current(path: Path, expected_samples: Sequence[str], config_hash: str,
                    fingerprint: str) -> bool:
    return fold_problem(path, expected_samples, config_hash, fingerprint) is None


def read_current_fold(path: Path, expected_samples: Sequence[str], config_hash: str,
                      fingerprint: str, *, what: str) -> tuple[list[dict], dict]:
    """The rows and side record of a finished fold of this run (``what`` names it).

    Raises:
        RunFolderError: the file is missing, holds other samples, or was made by another config
            or cache (something else wrote into the run folder during the run).
    """
    problem = fold_problem(path, expected_samples, config_hash, fingerprint)
    if problem is not None:
        raise RunFolderError(
            f"{path}: {what} {problem}, though this run finished it: something else changed "
            "the run folder during the run; nothing was scored. Rerun to train it again")
    return read_fold(path), read_side(path)


def _fold_files(base: Path) -> list[Path]:
    folds = base / "folds"
    return sorted(p for p in folds.rglob("*") if p.suffix in (".csv", ".json")) \
        if folds.is_dir() else []


def _marks(out_dir: Path) -> list[tuple[Path, str, str]]:
    """``(file, config hash, cache fingerprint)`` of every file in ``out_dir`` that records
    them: the fold files and their side files of every round, and ``run.json``."""
    marks = []
    run = _read_json(out_dir / "run.json")
    if run.get("config_hash"):
        marks.append((out_dir / "run.json", run["config_hash"],
                      (run.get("cache") or {}).get("fingerprint")))
    for base in [out_dir] + sorted(out_dir.glob("round_*")):
        for path in _fold_files(base):
            if path.suffix == ".csv":
                made = {(r.get("config_hash"), r.get("cache_fingerprint")) for r in read_fold(path)}
            else:
                side = _read_json(path)
                made = {(side["config_hash"], side.get("cache_fingerprint"))} \
                    if "config_hash" in side else set()
            marks += [(path, *m) for m in sorted(made, key=str)]
    return marks


def run_outputs(out_dir: Path) -> list[Path]:
    """Everything a run wrote in ``out_dir``, in the order a stale move takes it: the files that
    record no config hash and the folders of :data:`RUN_DIRS` without fold files first, then
    ``run.json``, the ``round_*`` folders, and ``folds/`` last. Every file at the top of the folder
    counts; other folders (not a run's) and ``stale/`` stay."""
    out_dir = Path(out_dir)
    kept = {STALE_DIR, LOCK_NAME, MOVE_JOURNAL}
    entries = sorted(p for p in out_dir.iterdir() if p.name not in kept) \
        if out_dir.is_dir() else []
    folders = [p for p in entries if p.is_dir() and any(p.match(g) for g in RUN_DIRS)]
    files = [p for p in entries if not p.is_dir()]
    last = ([p for p in files if p.name == "run.json"]
            + [p for p in folders if p.name.startswith("round_")]
            + [p for p in folders if p.name == "folds"])
    return [p for p in files + folders if p not in last] + last


def _new_target(out_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = out_dir / STALE_DIR / stamp, 1
    while target.exists():
        n += 1
        target = out_dir / STALE_DIR / f"{stamp}-{n}"
    return target


def _journal_target(out_dir: Path) -> Optional[Path]:
    """The folder of a stale move that a killed run left half done, if there is one."""
    name = _read_json(out_dir / MOVE_JOURNAL).get("target")
    if not isinstance(name, str) or not name.startswith(f"{STALE_DIR}/") or ".." in name:
        return None
    return out_dir / name


def move_stale(out_dir: Path, config_hash: str, fingerprint: str, write) -> Optional[Path]:
    """Move a run folder's outputs made by another config or cache to ``out_dir/stale/<time>``,
    all of them (:func:`run_outputs`), and say so; finish a move that a killed run left half done.

    Returns:
        the folder they were moved to, or None when nothing was stale.
    """
    out_dir = Path(out_dir)
    journal = out_dir / MOVE_JOURNAL
    stale = [m for m in _marks(out_dir) if m[1:] != (config_hash, fingerprint)]
    if not stale:
        journal.unlink(missing_ok=True)
        return None
    old = next((m for m in stale if m[0].name == "run.json"), stale[0])
    target = _journal_target(out_dir)
    outputs = run_outputs(out_dir)
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in outputs)
    n_folds = len({p for p, *_ in stale if p.suffix == ".csv"})
    if target is not None:
        write(f"{out_dir}: a run was killed while moving the outputs of {_made_by(*old[1:])} "
              f"to {target}; moving the rest ({names}) there and starting over")
    else:
        target = _new_target(out_dir)
        atomic_write_text(journal, json.dumps({"target": target.relative_to(out_dir).as_posix()}))
        write(f"{out_dir}: {n_folds} finished fold(s) and the results in this folder were made "
              f"with {_made_by(*old[1:])}, not {_made_by(config_hash, fingerprint)}; moving them "
              f"all ({names}) to {target} and starting over")
    target.mkdir(parents=True, exist_ok=True)
    for path in outputs:
        destination, n = target / path.name, 1
        while destination.exists():  # never into an existing folder of the same name
            n += 1
            destination = target / f"{path.name}.{n}"
        path.rename(destination)
    journal.unlink(missing_ok=True)
    return target
