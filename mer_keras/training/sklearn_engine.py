"""The ``sklearn`` engine: scikit-learn's logistic regression as a fold engine.

Not a paper's model: the calibration floor of the leaderboard (``experiments/logreg_cde.py``),
trained and scored by the same run folder, resume, metrics and report as every network. The model
is ``config.model == "logreg"``; ``model_options`` are :class:`~sklearn.linear_model.
LogisticRegression` arguments (``C``, ``max_iter``); ``class_weight="balanced"`` passes through.
The flattened inputs are the fold's training rows; the fold seed goes to ``random_state`` (the
default L-BFGS solver draws nothing, so every round gives the same predictions).
"""

from __future__ import annotations

import time

import numpy as np

from mer_keras.training.engines import FoldEngine
from mer_keras.training.folds import FoldResult

#: the models this engine trains
SKLEARN_MODELS = ("logreg",)


class LogisticRegressionEngine(FoldEngine):
    """Fits one :class:`~sklearn.linear_model.LogisticRegression` per fold."""

    name = "sklearn"

    def __init__(self, config, data, inputs, table):
        self.config, self.data, self.inputs = config, data, inputs
        self.table_x, self.table_y = table

    def train(self, plans, *, progress=None, config=None):
        from sklearn.linear_model import LogisticRegression

        config = config or self.config
        num_classes = len(self.data.classes)
        options = {"max_iter": 2000, **config.model_options}
        results = []
        for plan in plans:
            started = time.perf_counter()
            model = LogisticRegression(
                class_weight="balanced" if config.class_weight == "balanced" else None,
                random_state=plan.seed, **options)
            x = self.table_x[plan.fit_rows].reshape(len(plan.fit_rows), -1)
            model.fit(x, self.table_y[plan.fit_rows])
            test = self.inputs[plan.test_idx].reshape(len(plan.test_idx), -1)
            probabilities = np.zeros((len(plan.test_idx), num_classes))
            probabilities[:, model.classes_] = model.predict_proba(test)
            results.append(FoldResult(
                test_subject=plan.name, test_idx=plan.test_idx,
                y_true=self.data.labels[plan.test_idx], y_pred=probabilities.argmax(axis=1),
                probabilities=probabilities, history={"n_iter": [int(model.n_iter_.max())]},
                fold_seed=plan.seed, n_train=len(plan.fit_rows), n_validation=len(plan.val_idx),
                best_epoch=1, seconds=time.perf_counter() - started, engine=self.name))
            if progress is not None:
                progress(f"[{plan.name}] logistic regression: {int(model.n_iter_.max())} "
                         "L-BFGS iterations")
        return results
