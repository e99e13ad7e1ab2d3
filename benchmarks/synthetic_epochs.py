"""How many epochs a model needs to learn the synthetic set: pooled scores at snapshot epochs.

Trains 16 LOSO folds (drawn with a fixed seed) of a synthetic CDE cache with the experiment's own
config, predicting the test subjects after each snapshot epoch (never choosing anything on them),
and prints the pooled UF1 / UAR / accuracy at each. This is what the ``SYNTHETIC`` epochs of
``experiments/fr_cde.py`` and ``experiments/off_apexnet_cde.py`` were chosen from.

Usage::

    python -m data_prep synth --out work/synthetic
    python -m data_prep flow --protocol cde --casme2 work/synthetic/CASME2 \\
        --samm work/synthetic/SAMM --smic work/synthetic/SMIC --out work/cache/synthetic_cde \\
        [--apex-rule dc-rois]   # OFF-ApexNet's default uses its own SMIC apex spotting
    python benchmarks/synthetic_epochs.py --model fr --data work/cache/synthetic_cde
    python benchmarks/synthetic_epochs.py --model off_apexnet --data work/cache/synthetic_cde_dcrois
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: model -> (epochs, snapshot epochs, engine)
PROBES = {"fr": (24, (6, 9, 12, 15, 18, 21), "fold_parallel"),
          "off_apexnet": (300, (30, 60, 100, 150, 200, 250), "compile_once")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(PROBES), required=True)
    parser.add_argument("--data", type=Path, required=True, help="a synthetic CDE cache")
    parser.add_argument("--folds", type=int, default=16)
    args = parser.parse_args(argv)

    from data_prep.cache import load_cache
    from mer_keras import metrics
    from mer_keras.training.config import fold_seed
    from mer_keras.training.run import protocol_folds
    from mer_keras.training.workers import FoldSession
    if args.model == "fr":
        from experiments.fr_cde import train_config
    else:
        from experiments.off_apexnet_cde import train_config

    epochs, snapshots, engine = PROBES[args.model]
    config = train_config(epochs=epochs, snapshot_epochs=snapshots)
    data = load_cache(args.data)
    folds = protocol_folds(config, data)
    chosen = sorted(np.random.default_rng(0).choice(len(folds), args.folds, replace=False))
    jobs = [(0, name, train, test, fold_seed(0, 0, name))
            for name, (train, test) in (folds[i] for i in chosen)]
    started = time.perf_counter()
    results = FoldSession(config, data, engine, 8).train(jobs)
    print(f"{args.model}: {len(results)} folds, {time.perf_counter() - started:.0f} s ({engine})")
    y_true = np.concatenate([r.y_true for r in results])
    for epoch in snapshots + (epochs,):
        y_pred = np.concatenate([r.snapshots[epoch] if epoch in r.snapshots else r.y_pred
                                 for r in results])
        scores = metrics.compute_metrics(y_true, y_pred, [0, 1, 2])
        print(f"epoch {epoch:4d}: UF1 {scores['uf1']:.4f}  UAR {scores['uar']:.4f}  "
              f"acc {scores['acc']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
