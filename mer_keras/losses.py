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


BALANCED_FORMS = ("one_vs_all", "cross_entropy")


@keras.saving.register_keras_serializable(package="mer_keras")
class BalancedLoss(keras.losses.Loss):
    """STRCN's multi-class balanced loss (Sec III-E, Eqs. 9-10), per-batch class weights.

    Eq. (9): ``p_t = p_c^y (1 - p_c)^(1 - y)``; Eq. (10): ``L = sum_i -beta_i log p_t^i``, where
    "beta_i is ... inversely proportional to the ratio of the class of sample i in the current
    batch". Read (PAPER_NOTES 5.4) as ``beta_i = B / (C * n_c(i))`` with B the batch size, C the
    number of classes and ``n_c(i)`` the count of sample i's class in the batch (so a balanced
    batch has every beta = 1), and, with ``form="one_vs_all"`` (default, the literal vector
    reading), ``-log p_t`` summed over the C softmax outputs, each a binary cross-entropy against
    the one-hot label. ``form="cross_entropy"`` keeps only the true class (``-log p_y``), the
    simpler reading offered as an ablation. ``balanced=False`` sets every beta to 1 (Table IV's
    "without BL").

    Args:
        form: ``"one_vs_all"`` or ``"cross_entropy"``.
        balanced: use the per-batch betas (True) or beta = 1.
        from_logits: whether ``y_pred`` are pre-softmax scores (every mer_keras model's
            ``"logits"``).
        name, reduction, dtype: as ``keras.losses.Loss``.
    """

    def __init__(self, form: str = "one_vs_all", balanced: bool = True, from_logits: bool = True,
                 name: str = "strcn_balanced", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if form not in BALANCED_FORMS:
            raise ValueError(f"BalancedLoss form must be one of {BALANCED_FORMS}, got {form!r}")
        self.form, self.balanced, self.from_logits = form, bool(balanced), bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        num_classes = y_pred.shape[-1]
        labels = _sparse_labels(y_true)
        onehot = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        probs = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        probs = ops.clip(probs, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        if self.form == "one_vs_all":
            per_sample = -ops.sum(onehot * ops.log(probs) + (1 - onehot) * ops.log(1 - probs),
                                  axis=-1)
        else:
            per_sample = -ops.sum(onehot * ops.log(probs), axis=-1)
        if not self.balanced:
            return per_sample
        counts = ops.sum(onehot, axis=0)                       # n_c in this batch
        batch = ops.cast(ops.shape(onehot)[0], y_pred.dtype)
        beta = batch / (num_classes * ops.take(counts, labels))
        return ops.stop_gradient(beta) * per_sample

    def get_config(self):
        config = super().get_config()
        config.update({"form": self.form, "balanced": self.balanced,
                       "from_logits": self.from_logits})
        return config


#: name -> loss class; ``get_loss`` instantiates them.
LOSSES: dict[str, Callable[..., keras.losses.Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "fr_proposal": FRProposalLoss,
    "strcn_balanced": BalancedLoss,
}


def get_loss(name: str, **kwargs) -> keras.losses.Loss:
    """Instantiate the loss registered under ``name`` with ``kwargs``.

    Names: ``"sparse_categorical_crossentropy"`` (``from_logits=True`` by default),
    ``"fr_proposal"`` (FR Eqs. 4-5) and ``"strcn_balanced"`` (STRCN Eqs. 9-10).

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
