"""Paper losses, each a registered ``keras.losses.Loss`` that takes SPARSE integer labels.

Every loss here receives ``y_true`` as integer class labels of shape ``(batch,)`` or ``(batch, 1)``,
whatever the output it is attached to, so that one label array can feed every output of a model.
Reduction is the batch mean (Keras' ``"sum_over_batch_size"``); the papers' sums over N (FR Eqs. 4
and 7) become means, which keeps lambda's meaning (PAPER_NOTES 1.6 item 4).

Usage::

    losses, loss_weights = fr_losses(lambda_=0.85)
    model.compile(optimizer="sgd", loss=losses, loss_weights=loss_weights)
    model.fit(x, {"logits": y, "proposals": y})
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import ops


def _sparse_labels(y_true):
    """Flatten ``(batch,)`` or ``(batch, 1)`` labels to an int32 ``(batch,)`` tensor."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif len(y_true.shape) != 1:
        raise ValueError(
            f"expected sparse integer labels of shape (batch,) or (batch, 1), got shape "
            f"{tuple(y_true.shape)}; one-hot labels are not accepted here")
    return ops.cast(y_true, "int32")


@keras.saving.register_keras_serializable(package="mer_keras")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against class scores (FR Eq. 7, batch mean).

    Args:
        from_logits: whether ``y_pred`` are pre-softmax scores (default, as every mer_keras model
            outputs ``"logits"``) or probabilities.
        name, reduction, dtype: as ``keras.losses.Loss``.
    """

    def __init__(self, from_logits: bool = True, name: str = "sparse_categorical_crossentropy",
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return ops.sparse_categorical_crossentropy(
            _sparse_labels(y_true), y_pred, from_logits=self.from_logits)

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config


@keras.saving.register_keras_serializable(package="mer_keras")
class FRProposalLoss(keras.losses.Loss):
    """FR's proposal loss (Eqs. 4-5): the mean over K of the detectors' binary cross-entropies.

    ``y_pred`` is ``(batch, K)``, the sigmoid output ``p_k`` of detector k; detector k's target is
    ``1[y == k]``. Per sample the loss is ``-(1/K) sum_k [t_k log p_k + (1 - t_k) log(1 - p_k)]``
    (Eq. 5 averages the K detection losses of Eq. 4); the reduction then averages over the batch
    where Eq. 4 sums over the N training samples.

    Args:
        from_logits: whether ``y_pred`` are the detectors' pre-sigmoid scores; default False, as
            FR's ``"proposals"`` output is already a probability.
        name, reduction, dtype: as ``keras.losses.Loss``.
    """

    def __init__(self, from_logits: bool = False, name: str = "fr_proposal",
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        num_classes = y_pred.shape[-1]
        targets = ops.one_hot(_sparse_labels(y_true), num_classes, dtype=y_pred.dtype)
        per_detector = ops.binary_crossentropy(targets, y_pred, from_logits=self.from_logits)
        return ops.mean(per_detector, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config


#: name -> loss class; ``get_loss`` instantiates them.
LOSSES: dict[str, Callable[..., keras.losses.Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "fr_proposal": FRProposalLoss,
}


def get_loss(name: str, **kwargs) -> keras.losses.Loss:
    """Instantiate the loss registered under ``name`` with ``kwargs``.

    Names: ``"sparse_categorical_crossentropy"`` (``from_logits=True`` by default) and
    ``"fr_proposal"`` (FR Eqs. 4-5).

    Raises:
        KeyError: naming ``name`` and listing the known names.
    """
    try:
        loss_class = LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(LOSSES))
        raise KeyError(f"unknown loss {name!r}; known losses: {known}") from None
    return loss_class(**kwargs)


def fr_loss_names(lambda_: float = 0.85, *, with_proposals: bool = True
                  ) -> tuple[dict[str, str], dict[str, float]]:
    """FR's ``L = lambda L_prop + L_cls`` as registered loss names and weights, per output.

    Eq. (8) with lambda = 0.85 (Sec 6.1.1, 6.1.3). The keys are the output names of
    ``mer_keras.models.fr.build_fr``; the values are ``get_loss`` names, which is what a
    ``mer_keras.training.TrainConfig`` holds.

    Args:
        lambda_: weight of the proposal loss.
        with_proposals: False for the variants without a proposal module (``"basic_inception"``,
            ``"dual_inception"``), whose only output is ``"logits"``; then only ``L_cls`` is
            returned.
    """
    names = {"logits": "sparse_categorical_crossentropy"}
    loss_weights = {"logits": 1.0}
    if with_proposals:
        names["proposals"] = "fr_proposal"
        loss_weights["proposals"] = float(lambda_)
    return names, loss_weights


def fr_losses(lambda_: float = 0.85, *, with_proposals: bool = True
              ) -> tuple[dict[str, keras.losses.Loss], dict[str, float]]:
    """:func:`fr_loss_names` instantiated for ``model.compile``: ``(losses, loss_weights)``."""
    names, loss_weights = fr_loss_names(lambda_, with_proposals=with_proposals)
    return {output: get_loss(name) for output, name in names.items()}, loss_weights
