"""OFF-ApexNet's input ablation under CDE: Gan, Liong et al., SPIC 2019, Table 10 (u / v / u+v).

"u is simply taking account only the horizontal optical flow features, while v considers the
vertical optical flow features. u+v refers to the proposed OFF-ApexNet" (Sec 5). A one-channel
run is OFF-ApexNet with a single stream (``mer_keras.models.off_apexnet`` builds one stream per
input channel); everything else is ``experiments/off_apexnet_cde.py``, including the 3000 epochs
and the snapshots at 1000 and 2000 (Table 10 varies the epochs too). Table 10 is missing from the
paper's text extraction (PAPER_NOTES 3.6-8), so these runs have no published number to sit
beside; the u+v run is ``off_apexnet_cde`` itself::

    python -m experiments.off_apexnet_inputs --data work/cache/megc442
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.off_apexnet_cde import ENGINE, train_config

#: run name part -> flow channels
INPUTS = {"u": ("u",), "v": ("v",)}


def get_configs(smoke: bool = False) -> list[Experiment]:
    """One run per single flow component."""
    del smoke
    return [
        Experiment(name=f"off_apexnet_cde_{part}",
                   train=train_config(name=f"off_apexnet_cde_{part}", input_channels=channels),
                   protocol="cde", engine=ENGINE,
                   report={"paper": "off_apexnet", "table": "10", "method": f"OFF-ApexNet ({part})"})
        for part, channels in INPUTS.items()
    ]


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
