"""OFF-ApexNet on single databases under LOSO, beside Gan, Liong et al., SPIC 2019, Table 4 #1-#11.

Table 4 compares OFF-ApexNet's composite-trained predictions (#14, ``off_apexnet_cde``) with
methods evaluated on each database alone, with 3 (SMIC), 5 (CASME II) and 5 (SAMM) classes. The
paper gives no single-database OFF-ApexNet number, so these runs show what the network does under
those methods' protocol, beside their rows, with an empty ``published``. Prepare one flow cache
per protocol; the module runs the one that matches the cache::

    python -m data_prep flow --protocol smic_3class --smic /data/SMIC --apex-rule dc-rois \\
        --out work/cache/smic_3
    python -m experiments.off_apexnet_single_database --data work/cache/smic_3

SMIC has no apex in its release; the paper spots it by D&C-RoIs (``--apex-rule dc-rois``,
``data_prep.apex``). SAMM's 5 classes here are the objective classes I-V (``samm_5class``), the
5-class SAMM protocol of the MEGC2018 line of work. Training is ``experiments/off_apexnet_cde.py``'s.
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.off_apexnet_cde import ENGINE, train_config

#: (cache protocol, published dataset, classes)
RUNS = (
    ("smic_3class", "smic", 3),
    ("casme2_5class", "casme2", 5),
    ("samm_5class", "samm", 5),
)


def get_configs(smoke: bool = False) -> list[Experiment]:
    """One run per database; ``main`` runs the one matching the cache."""
    del smoke
    return [
        Experiment(name=f"off_apexnet_{protocol}",
                   train=train_config(name=f"off_apexnet_{protocol}"),
                   protocol=protocol, engine=ENGINE,
                   report={"paper": "off_apexnet", "table": "4", "method": "OFF-ApexNet",
                           "classes": classes, "splitter": "loso"})
        for protocol, _, classes in RUNS
    ]


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
