"""FR's ablation on the composite (CDE): Zhou et al., Pattern Recognition 2022, Table 1.

Runs, on one CDE cache, the Table 1 models that the data can serve, each as its own run folder:

====================  ==========================  ========================
run                   model                       published UF1 / UAR
====================  ==========================  ========================
fr_cde_basic          Basic Inception (1a)        0.7360 / 0.7391
fr_cde_fc             FR-fc (1b)                  0.7377 / 0.7443
fr_cde_concat         FR-concatenated (1c)        0.7632 / 0.7727
fr_cde                FR (1b, 1c; = Table 2)      0.7838 / 0.7832
====================  ==========================  ========================

Command::

    python -m experiments.fr_cde_ablation --data CACHE [--out results] [--smoke]

Not run: Dual-Inception (1a, 0.7322 / 0.7278). It differs from Basic Inception only in its input,
the middle frame taken as apex for every database, which needs a cache prepared from the raw
databases with that apex; the imported MEGC2019 flow images fix the apex already.

Every run uses the training settings of ``experiments/fr_cde.py`` (same optimizer, epochs and
seed), so the rows differ only in the model. Run time: about four times that of ``fr_cde``.
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.fr_cde import train_config

RUNS = (
    # (run name, variant, table, method in results/published.csv)
    ("fr_cde_basic", "basic_inception", "1a", "Basic Inception"),
    ("fr_cde_fc", "fr_fc", "1b", "FR-fc"),
    ("fr_cde_concat", "fr_concat", "1c", "FR-concatenated"),
    ("fr_cde", "fr", "1b", "FR"),
)


def get_configs(smoke: bool = False) -> list[Experiment]:
    """One experiment per Table 1 model."""
    del smoke
    return [
        Experiment(name=name, train=train_config(variant=variant, name=name), protocol="cde",
                   report={"paper": "fr", "table": table, "method": method})
        for name, variant, table, method in RUNS
    ]


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
