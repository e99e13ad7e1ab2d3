"""What FR's proposal module does to its feature, measured on a batch: the numbers behind the
attention-collapse diagnosis (issue "one honest table", FR Sec 3.2).

For the expression-shared feature z (the ``shared_fc`` output) and each branch k:

* ``attention_perplexity_<k>``: ``exp(H(p))`` with ``p = a_k / sum(a_k)``, the number of features
  the branch effectively attends to: ``d`` (1024) for a uniform softmax, 1 when it has collapsed
  onto one feature. The median over the samples.
* ``attention_max_<k>``: the largest weight of ``p``, median over the samples.
* ``fused_to_shared_norm``: ``||z'|| / ||z||``, z' the fusion (sum, or concatenation for
  FR-concatenated) of the expression-specific features; median over the samples whose z is not 0.
* ``shared_dead_fraction``: the share of z's units that are 0 for every sample of the batch.

Basic Inception gets only ``shared_dead_fraction``; FR-fc gets the last two (it has no attention).
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np

from mer_keras.layers import ExpressionAttention

SHARED_LAYER = "shared_fc"


class FRProbe:
    """Measures one FR model (any Table 1 variant) on a batch, with its current weights.

    Args:
        model: a model of :func:`mer_keras.models.fr.build_fr` with a ``shared_fc`` layer.
    """

    def __init__(self, model: keras.Model):
        self.shared = keras.Model(model.input, model.get_layer(SHARED_LAYER).output,
                                  name=f"{model.name}_shared")
        self.attention = [layer for layer in model.layers
                          if isinstance(layer, ExpressionAttention)]
        self.proposal_fc = [layer for layer in model.layers
                            if layer.name.startswith("proposal") and layer.name.endswith("_fc")]
        self.concatenated = any(layer.name == "fusion_concat" for layer in model.layers)
        import tensorflow as tf
        # traced once: an eager call of the two Inception streams costs ~4x the traced one
        self._shared_fn = tf.function(lambda x: self.shared(x, training=False))

    @classmethod
    def for_model(cls, model: keras.Model) -> Optional["FRProbe"]:
        """A probe for ``model``, or None where it has no ``shared_fc`` (the literal 6272-d z)."""
        names = {layer.name for layer in model.layers}
        return cls(model) if SHARED_LAYER in names else None

    def _branches(self, z: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(attention weights a_k, expression-specific features z*_k)`` of every branch."""
        weights, specific = [], []
        for layer in self.attention:
            a = keras.ops.convert_to_numpy(layer.attention_weights(z))
            weights.append(a)
            specific.append(a * z)
        for layer in self.proposal_fc:  # FR-fc: z*_k = FC_k(z), no attention
            specific.append(keras.ops.convert_to_numpy(layer(z)))
        return weights, specific

    def measure(self, x: np.ndarray) -> dict[str, float]:
        """The probe's numbers on the inputs ``x`` (inference mode)."""
        z = keras.ops.convert_to_numpy(self._shared_fn(np.asarray(x, np.float32)))
        values = {"shared_dead_fraction": float(np.mean(np.all(z == 0, axis=0)))}
        weights, specific = self._branches(z)
        for k, a in enumerate(weights):
            # float64: in float32 the 1e-300 floor rounds to 0 and log warns on collapsed rows
            a = np.asarray(a, np.float64)
            p = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-30)
            entropy = -np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0.0), axis=1)
            values[f"attention_perplexity_{k}"] = float(np.median(np.exp(entropy)))
            values[f"attention_max_{k}"] = float(np.median(p.max(axis=1)))
        if specific:
            fused = np.concatenate(specific, axis=1) if self.concatenated else np.sum(specific, 0)
            norm = np.linalg.norm(z, axis=1)
            live = norm > 0
            values["fused_to_shared_norm"] = (
                float(np.median(np.linalg.norm(fused[live], axis=1) / norm[live]))
                if live.any() else float("nan"))
        return values
