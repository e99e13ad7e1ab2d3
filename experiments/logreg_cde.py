"""Calibration baseline: logistic regression on the flows under the CDE protocol.

Not a paper's method. It checks the data, the protocol and the metrics end to end in a few minutes
on CPU: on the 442 real MEGC2019 flow inputs a plain logistic regression (C = 0.01, balanced class
weights, raw 28 x 28 x 3 u/v/strain) reaches UF1 0.7020 and UAR 0.7322 under 68-fold LOSO
(../shared/data/wangzhifengharrison_HTNet/PROVENANCE.md), so a deep model should do better::

    python -m experiments.logreg_cde --data work/cache/megc442

It trains through the training core's ``sklearn`` engine (``mer_keras.training.sklearn_engine``):
same folds, run folder, pooled and per-fold-mean scores and report as every network. The L-BFGS
solver draws nothing, so every round gives the same predictions. The leaderboard's floor is this
config (``experiments/study_cde.py``, run ``logreg_cde_megc442``).
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from mer_keras.training import TrainConfig

C = 0.01


def train_config(*, name: str = "logreg_cde", **changes) -> TrainConfig:
    """The logistic regression's config: scikit-learn's model on the raw flow tensor."""
    config = TrainConfig(experiment=name, model="logreg", model_options={"C": C},
                         input_channels=("u", "v", "strain"), normalization="none",
                         class_weight="balanced", epochs=1, seed=0)
    return config.replace(**changes) if changes else config


def get_config(smoke: bool = False) -> Experiment:
    del smoke
    return Experiment(name="logreg_cde", train=train_config(), protocol="cde", report=(),
                      engine="sklearn")


if __name__ == "__main__":
    sys.exit(main(get_config, __doc__.splitlines()[0]))
