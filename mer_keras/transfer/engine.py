"""The ``transfer`` fold engine: a paper's transfer chain behind the training core's interface."""

from __future__ import annotations

import importlib

from mer_keras.training.engines import FoldEngine
from mer_keras.transfer import CHAINS, TransferSources


def chain_class(model: str):
    """The chain class that trains ``model``, or a ValueError naming those that exist."""
    if model not in CHAINS:
        raise ValueError(f"model {model!r} has no transfer chain; the transfer engine trains "
                         f"{', '.join(CHAINS)}")
    module, name = CHAINS[model]
    return getattr(importlib.import_module(module), name)


class TransferEngine(FoldEngine):
    """Builds the chain (its once-per-run pre-training included) and trains fold plans with it."""

    name = "transfer"

    def __init__(self, config, data, inputs, *, sources: TransferSources, work_dir, say):
        self.chain = chain_class(config.model)(config, data, inputs, sources, work_dir, say)

    def train(self, plans, *, progress=None, config=None):
        if config is not None:  # TrainConfig refuses selection with a transfer chain
            raise ValueError("a transfer chain trains with its own config only")
        return [self.chain.fit_fold(plan) for plan in plans]
