"""FR's parameter counts: Zhou et al., Pattern Recognition 2022, Table 7, beside our models'.

Table 7 gives the learnable parameters of Basic Inception and FR on each database (SMIC-HS with 3
classes, CASME II and SAMM with 4, all on 28 x 28 u/v flows). This module builds both models at
those settings, counts their weights and writes one folder per model that the report reads like a
run's (``run.json`` + ``metrics.csv``, metric ``params``)::

    python -m experiments.fr_parameters [--out results]
    python -m mer_keras.report --runs results --published results/published.csv --out results/tables

No training, no data: a few seconds. The gaps (Basic Inception 0.47 % below, FR within 0.11 %) are
discussed in ``mer_keras.models.fr.build_fr``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.atomic import atomic_write_csv, atomic_write_text
from experiments.common import REPO

#: (folder, FR variant, Table 7 method)
MODELS = (("fr_table7_params_basic_inception", "basic_inception", "Basic Inception"),
          ("fr_table7_params_fr", "fr", "FR"))
#: Table 7's databases and their number of classes (Sec 6.1.4)
DATABASES = (("smic", 3), ("casme2", 4), ("samm", 4))
INPUT_SHAPE = (28, 28, 2)


def parameter_counts(variant: str) -> dict[str, int]:
    """``{database: learnable parameters}`` of one FR variant at Table 7's class counts."""
    import keras

    from mer_keras.models.fr import build_fr

    counts = {}
    for database, classes in DATABASES:
        model = build_fr(input_shape=INPUT_SHAPE, num_classes=classes, variant=variant)
        counts[database] = int(sum(keras.ops.size(v) for v in model.trainable_weights))
        keras.backend.clear_session()
    return counts


def write_folders(out: Path) -> list[Path]:
    """One report-readable folder per model under ``out``; returns them."""
    import mer_keras

    folders = []
    for folder, variant, method in MODELS:
        path = Path(out) / folder
        counts = parameter_counts(variant)
        rows = [{"database": db, "metric": "params", "pooling": "", "value": n, "std": "",
                 "n_rounds": ""} for db, n in counts.items()]
        atomic_write_csv(path / "metrics.csv", rows,
                         ("database", "metric", "pooling", "value", "std", "n_rounds"))
        record = {"experiment": folder, "kind": "parameter count (no training)",
                  "model": "fr", "model_options": {"variant": variant},
                  "input_shape": list(INPUT_SHAPE), "classes": dict(DATABASES),
                  "versions": {"mer_keras": mer_keras.__version__},
                  "report": {"paper": "fr", "table": "7", "method": method}}
        atomic_write_text(path / "run.json", json.dumps(record, indent=2, sort_keys=True))
        folders.append(path)
    return folders


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results",
                        help="where the two folders go (results)")
    args = parser.parse_args(argv)
    for path in write_folders(args.out):
        print(path, (path / "metrics.csv").read_text().strip().replace("\n", "; "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
