"""Calibration baseline: logistic regression on the flows under the CDE protocol.

Not a paper's method. It checks the data, the protocol and the metrics end to end in a few minutes on CPU: on
the 442 real MEGC2019 flow inputs a plain logistic regression (C = 0.01, balanced class weights, raw
28 x 28 x 3 u/v/strain) reaches UF1 about 0.70 and UAR about 0.73 under 68-fold LOSO
(../shared/data/wangzhifengharrison_HTNet/PROVENANCE.md), so a deep model should do better::

    python -m experiments.logreg_cde --data work/cache/megc442

It prints pooled UF1/UAR/accuracy for the composite and each database, and the per-fold mean,
labelled as such. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from data_prep.cache import load_cache
from mer_keras.metrics import evaluate
from mer_keras.protocols import CompositeLOSO


def run(cache_dir, *, c: float = 0.01, channels=(0, 1, 2)) -> dict:
    """Pooled (and per-fold mean) scores of a logistic regression under LOSO on ``cache_dir``."""
    data = load_cache(cache_dir)
    x = data.arrays["flow"][..., list(channels)].reshape(len(data), -1)
    y_pred = np.empty_like(data.labels)
    folds = np.empty(len(data), dtype=object)
    for train, test in CompositeLOSO().split(x, data.labels, data.subjects):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x[train], data.labels[train])
        y_pred[test] = model.predict(x[test])
        folds[test] = data.subjects[test][0]
    return evaluate(data.labels, y_pred, list(range(len(data.classes))),
                    databases=data.databases, folds=folds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a CDE cache")
    parser.add_argument("--c", type=float, default=0.01, help="inverse regularisation (0.01)")
    args = parser.parse_args(argv)
    scores = run(args.data, c=args.c)
    for database, values in scores.items():
        print(database.ljust(8), "  ".join(f"{k}={v:.4f}" for k, v in sorted(values.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
