"""The loss terms of EIDNet (Eqs. 1-5) and MTMNet (Eqs. 6-12), as functions of tensors.

MTMNet trains several networks with their own optimizers and alternating updates, so its losses
are plain functions its training steps combine (:mod:`mer_keras.transfer.mtmnet`), not Keras
``Loss`` objects. Every term is a batch mean of per-sample values; ``weights`` (0/1 per sample)
switch a term off for anchors whose class has no macro counterpart (PAPER_NOTES 4.6-1).

Norms are the paper's ``||.||_2``, not squared (PAPER_NOTES 4.6-8).
"""

from __future__ import annotations

from keras import ops


def _flat(x):
    return ops.reshape(x, (ops.shape(x)[0], -1))


def _weighted_mean(values, weights=None):
    if weights is None:
        return ops.mean(values)
    weights = ops.cast(weights, values.dtype)
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def l2_distance(a, b):
    """Per-sample Euclidean distance between two batches of any shape (flattened)."""
    return ops.sqrt(ops.sum(ops.square(_flat(a) - _flat(b)), axis=1) + 1e-12)


def similarity_loss(identity_expression, identity_neutral):
    """Eq. (1): ``L_sim = ||f_E^s - f_N^s||_2``, batch mean."""
    return ops.mean(l2_distance(identity_expression, identity_neutral))


def reconstruction_loss(image, reconstruction):
    """Eq. (2): ``L_rec = ||x_E - D_r([f_E^e, f_N^s])||_2``, batch mean."""
    return ops.mean(l2_distance(image, reconstruction))


def cross_entropy(labels, logits, weights=None):
    """Eqs. (3), (4), (10): softmax cross-entropy of integer ``labels``, (weighted) batch mean."""
    values = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return _weighted_mean(values, weights)


def eid_loss(l_c, l_rec, l_sim, l_s, lambdas=(0.1, 0.1, 0.1)):
    """Eq. (5), the encoder's side: ``L_c + l11 L_rec + l12 L_sim - l13 L_s`` (Sec 4.1: all 0.1)."""
    l11, l12, l13 = lambdas
    return l_c + l11 * l_rec + l12 * l_sim - l13 * l_s


def triplet_loss(anchor, positive, negative, *, margin: float = 1.0, normalize: bool = True,
                 weights=None):
    """Eq. (6): ``max(||f_anc - f_pos||_2 - ||f_anc - f_neg||_2 + m, 0)``.

    The paper gives no margin; with ``normalize`` the flattened embeddings are L2-normalised
    first, so distances lie in [0, 2] and ``m = 1`` is a scale-free choice (PAPER_NOTES 4.6-7).
    """
    anchor, positive, negative = _flat(anchor), _flat(positive), _flat(negative)
    if normalize:
        anchor, positive, negative = (x / ops.sqrt(ops.sum(ops.square(x), axis=1, keepdims=True)
                                                   + 1e-12)
                                      for x in (anchor, positive, negative))
    hinge = ops.relu(l2_distance(anchor, positive) - l2_distance(anchor, negative) + margin)
    return _weighted_mean(hinge, weights)


def discriminator_loss(real_logits, fake_logits, weights=None):
    """Eq. (8): ``L_D = -log D(f_pos) - log(1 - D(f_anc))``; macro embeddings are "real".

    ``D`` is the sigmoid of the discriminator's logit; computed from logits for stability.
    """
    real = ops.softplus(-ops.reshape(real_logits, (-1,)))   # -log sigmoid(r)
    fake = ops.softplus(ops.reshape(fake_logits, (-1,)))    # -log(1 - sigmoid(f))
    return _weighted_mean(real + fake, weights)


def adversarial_loss(fake_logits, weights=None):
    """Eq. (9), the generator's non-saturating loss: ``L_adv = -log D(f_anc)``."""
    return _weighted_mean(ops.softplus(-ops.reshape(fake_logits, (-1,))), weights)


def loss_inequality(micro_loss, macro_loss):
    """Eq. (11): ``L_LIR = max(L_cls - L_cls', 0)``, with no gradient through ``L_cls'``.

    ``L_cls'`` is MicroNet's expression classifier on the (frozen) macro embeddings; stopping its
    gradient keeps the hinge from being met by making the macro loss worse (PAPER_NOTES 4.6-6).
    """
    return ops.relu(micro_loss - ops.stop_gradient(macro_loss))


def mtm_loss(l_cls, l_tri, l_adv, l_lir, lambdas=(1e-3, 1e-3, 1e-3)):
    """Eq. (12): ``L_cls + l21 L_tri + l22 L_adv + l23 L_LIR`` (Sec 4.1: all 1e-3)."""
    l21, l22, l23 = lambdas
    return l_cls + l21 * l_tri + l22 * l_adv + l23 * l_lir
