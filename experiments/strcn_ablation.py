"""STRCN's ablation, Xia et al., IEEE TMM 2020, Table IV: without augmentation, without the
balanced loss, under LOSO and LOVO.

Table IV gives accuracy only. "Without augmentation" trains on the test-time versions alone (alpha =
8, all frames); "without BL" sets every beta of Eq. (10) to 1 (``BalancedLoss(balanced=False)``),
keeping the one-vs-all form. The full model's rows come from ``strcn_loso`` / ``strcn_lovo``.
Everything else is ``experiments/strcn_loso.py``. On one cache this runs 8 models (2 ablations x
STRCN-G/A x LOSO/LOVO)::

    python -m experiments.strcn_ablation --data work/cache/strcn_smic
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.strcn_loso import ENGINE, MODELS, PROTOCOLS, train_config

#: name part -> (published method suffix, TrainConfig changes)
ABLATIONS = {
    "noaug": ("w/o augmentation", {"augment": False}),
    "nobl": ("w/o balanced loss",
             {"loss_kwargs": {"logits": {"form": "one_vs_all", "balanced": False}}}),
}


def get_configs(smoke: bool = False) -> list[Experiment]:
    """Every Table IV ablation run on the single-database caches (Table IV has no composite)."""
    del smoke
    experiments = []
    for protocol, composite, _ in PROTOCOLS:
        if composite:
            continue
        for model, (method, _, _) in MODELS.items():
            for part, (suffix, changes) in ABLATIONS.items():
                for evaluation in ("loso", "lovo"):
                    name = f"{model}_{part}_{protocol}_{evaluation}"
                    experiments.append(Experiment(
                        name=name,
                        train=train_config(model, name=name, splitter=evaluation, **changes),
                        protocol=protocol,
                        report={"paper": "strcn", "table": "4", "method": f"{method} {suffix}",
                                "splitter": evaluation},
                        stage="strcn", engine=ENGINE))
    return experiments


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
