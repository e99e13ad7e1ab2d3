"""MTMNet's ablations: Xia et al., Tables 2 (single database, Acc / F1) and 3 (CDE, UF1 / UAR).

Eleven settings: with or without EIDNet pre-training (``eid``; without it the encoder starts from
the initial weights and MacroNet is trained with L_c only, PAPER_NOTES 4.6-11), times the loss of
the fine-tuning: L_cls, + L_tri, + L_adv, + L_tri + L_adv, + L_LIR, L_MTM (the paper has no
"L_EID, L_cls" row). Each is a run named ``mtmnet_<protocol>_<macro>_<setting>`` and is chosen by
name with ``--only``::

    python -m experiments.mtmnet_ablation --data FRAMES --macro MACRO \
        --only mtmnet_cde_ckplus48_eid_cls_tri

(the runs of the cache's protocol: ``cde`` for Table 3, ``casme2_5class`` / ``smic_3class`` for
Table 2; the macro database in the name is the ``--macro`` cache's, filled in when the run
starts; ``--only`` takes the name with it, or with ``{macro}``). Every other
setting is ``experiments.mtmnet_cde``'s.
"""

from __future__ import annotations

import sys

from experiments.common import Experiment, main
from experiments.mtmnet_cde import SMOKE, SYNTHETIC, TRANSFER, train_config

#: (suffix, eid, losses, the tables' names of the two) of every setting of Tables 2-3.
SETTINGS = tuple(
    (("eid_" if eid else "") + "_".join(losses), eid, losses,
     "L_EID" if eid else "no L_EID",
     "L_MTM" if len(losses) == 4 else "+".join("L_" + (t.upper() if t == "lir" else t)
                                               for t in losses))
    for eid in (False, True)
    for losses in (("cls",), ("cls", "tri"), ("cls", "adv"), ("cls", "tri", "adv"),
                   ("cls", "lir"), ("cls", "tri", "adv", "lir"))
    if not (eid and losses == ("cls",)))
#: protocol -> the table its runs are reported in (Table 2's classes: CASME II 5, SMIC 3).
PROTOCOLS = {"cde": "3", "casme2_5class": "2", "smic_3class": "2"}


def get_configs(smoke: bool = False) -> list[Experiment]:
    """The 11 settings under each protocol (33 runs); ``--only`` picks them by name."""
    del smoke
    experiments = []
    for protocol, table in PROTOCOLS.items():
        for suffix, eid, losses, pre, loss in SETTINGS:
            name = f"mtmnet_{protocol}_{{macro}}_{suffix}"
            experiments.append(Experiment(
                name=name, protocol=protocol, stage="frames", engine="transfer", macro=True,
                synthetic=SYNTHETIC, smoke=SMOKE,
                train=train_config(name=name, transfer={**TRANSFER, "eid": eid,
                                                        "losses": list(losses)}),
                report={"paper": "mtmnet", "table": table,
                        "method": f"MTMNet ({pre}; {loss}; {{macro_label}})"}))
    return experiments


if __name__ == "__main__":
    sys.exit(main(get_configs, __doc__.splitlines()[0]))
