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
    metrics_by_epoch.csv     with ``config.snapshot_epochs``: the pooled scores of the predictions
                             each fold also made after those epochs (fixed before training, never
                             chosen on a test subject): an epoch study from one run
    metrics.csv              the run's scores: mean and std over rounds of the pooled scores
                             (all and per database), and the per-fold means, labelled
                             ``per_fold_mean_*``
    confusion_matrix.png     pooled confusion matrices (all databases, then each)

Each fold file is written atomically as soon as the fold ends, so a killed run loses no finished
fold; rerunning skips every fold whose file records the same config hash and cache fingerprint.
A run folder whose folds were made by another config or cache is moved aside (``stale/``) with a
message, and the run starts over.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from data_prep.cache import CacheData, atomic_write_csv, atomic_write_text
from mer_keras.training.folds import FoldResult

RESULT_FILES = ("predictions.csv", "metrics_per_fold.csv", "metrics_per_round.csv", "metrics.csv",
                "metrics_by_epoch.csv", "run.json", "confusion_matrix.png", "summary.csv")


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


def fold_is_current(path: Path, expected_samples: Sequence[str], config_hash: str,
                     fingerprint: str) -> bool:
    rows = read_fold(path)
    return (bool(rows) and [r.get("sample") for r in rows] == list(expected_samples)
            and all(r.get("config_hash") == config_hash
                    and r.get("cache_fingerprint") == fingerprint for r in rows))


def _existing_fold_files(out_dir: Path) -> list[Path]:
    found = []
    for base in [out_dir] + sorted(out_dir.glob("round_*")):
        if (base / "folds").is_dir():
            found += sorted((base / "folds").rglob("*.csv"))
    return found


def move_stale(out_dir: Path, config_hash: str, fingerprint: str, write) -> None:
    """Move the outputs of another config or cache to ``out_dir/stale/<time>`` and say so."""
    files = _existing_fold_files(out_dir)
    stale = [p for p in files if any(r.get("config_hash") != config_hash
                                     or r.get("cache_fingerprint") != fingerprint
                                     for r in read_fold(p)[:1])]
    if not stale:
        return
    old = read_fold(stale[0])[0]
    target = out_dir / "stale" / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    write(f"{out_dir}: {len(stale)} finished fold(s) were made with config "
          f"{old['config_hash'][:12]} on cache {old['cache_fingerprint'][:12]}, not config "
          f"{config_hash[:12]} on cache {fingerprint[:12]}; moving them and the old "
          f"results to {target} and starting over")
    movable = [out_dir / "folds"] + sorted(out_dir.glob("round_*")) + [out_dir / n for n in
                                                                       RESULT_FILES]
    for path in movable:
        if path.exists():
            shutil.move(str(path), str(target / path.name))
