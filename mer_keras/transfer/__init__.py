"""Transfer-learning chains: papers that pre-train on macro-expression faces, then fine-tune per fold.

Micro-Attention (:mod:`~mer_keras.transfer.micro_attention`) and MTMNet
(:mod:`~mer_keras.transfer.mtmnet`) train several stages and networks with their own optimizers,
which the one-model fold engines of :mod:`mer_keras.training` do not express. A chain plugs into
the training core as its ``transfer`` engine (:class:`~mer_keras.transfer.engine.TransferEngine`):
the run folder, resume, scoring and reports are the same as every other model's.
"""

from mer_keras.transfer.sources import TransferSources

#: model name -> (module, chain class) of the models that train through a transfer chain.
CHAINS = {"micro_attention": ("mer_keras.transfer.micro_attention", "MicroAttentionChain"),
          "mtmnet": ("mer_keras.transfer.mtmnet", "MTMNetChain")}

__all__ = ["CHAINS", "TransferSources"]
