"""STRCN-G and STRCN-A under leave-one-video-out: Xia et al., IEEE TMM 2020, Tables III and VI.

"Each evaluation holds out 5 % of the videos" (Sec IV-B); the number of repetitions is not given,
so the videos are split into 20 disjoint, label-stratified folds of 5 % (PAPER_NOTES 5.7-8,
``mer_keras.protocols.LeaveVideosOut``), every video tested once. A subject's other videos may
train the model that tests one of its videos: that is the protocol, and why its numbers are higher
than LOSO's. Everything else is ``experiments/strcn_loso.py``::

    python -m experiments.strcn_lovo --data work/cache/strcn_smic

Published Acc / F1 (STRCN-G; STRCN-A), run names ``strcn_{g,a}_<protocol>_lovo``:

* ``smic_3class``: .749 / .710; .758 / .714 (Table III)
* ``casme2_4class``: .833 / .807; .841 / .784 (Table III)
* ``samm_4class``: .827 / .781; .836 / .792 (Table III)
* ``casme2_samm_4class``: .693; .698 (Table VI, Acc only)
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.strcn_loso import ENGINE, MODELS, PROTOCOLS, report_rows, train_config

LOVO_TABLE = {"2": "3", "6": "6"}  # the LOSO table of a column -> its LOVO table


def get_configs(smoke: bool = False) -> list[Experiment]:
    """STRCN-G and STRCN-A for every LOVO column of Tables III and VI."""
    del smoke
    experiments = []
    for protocol, composite, table in PROTOCOLS:
        for model, (method, _, _) in MODELS.items():
            name = f"{model}_{protocol}_lovo"
            experiments.append(Experiment(
                name=name, train=train_config(model, name=name, splitter="lovo", lovo_folds=20),
                protocol=protocol,
                report=report_rows(method, composite, LOVO_TABLE[table], "lovo"), stage="strcn",
                engine=ENGINE))
    return experiments


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
