"""Tests of mer_keras.losses: hand-computed values, label shapes, registry and serialisation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mer_keras.losses import (LOSSES, FRProposalLoss, SparseCategoricalCrossentropy, fr_losses,
                              get_loss)


def _proposal_by_hand(labels, probabilities):
    """Eq. 4-5 with a batch mean, written out with math.log."""
    per_sample = []
    for label, row in zip(labels, probabilities):
        terms = [-(math.log(p) if k == label else math.log(1.0 - p)) for k, p in enumerate(row)]
        per_sample.append(sum(terms) / len(terms))
    return sum(per_sample) / len(per_sample)


PROBS = np.array([[0.9, 0.2, 0.3], [0.4, 0.1, 0.7]], dtype="float32")
LABELS = np.array([0, 2])


@pytest.mark.parametrize("labels", [LABELS, LABELS.reshape(2, 1), LABELS.astype("float32")])
def test_proposal_loss_matches_hand_computation(labels):
    # sample 0: -(ln .9 + ln .8 + ln .7)/3 ; sample 1: -(ln .6 + ln .9 + ln .7)/3 ; then the mean
    expected = (-(math.log(0.9) + math.log(0.8) + math.log(0.7)) / 3
                - (math.log(0.6) + math.log(0.9) + math.log(0.7)) / 3) / 2
    assert expected == pytest.approx(_proposal_by_hand(LABELS, PROBS.tolist()))
    value = float(get_loss("fr_proposal")(labels, PROBS))
    assert value == pytest.approx(expected, rel=1e-5)


def test_proposal_loss_from_logits_equals_sigmoid_of_probabilities():
    logits = np.log(PROBS / (1 - PROBS))
    value = float(FRProposalLoss(from_logits=True)(LABELS, logits))
    assert value == pytest.approx(_proposal_by_hand(LABELS, PROBS.tolist()), rel=1e-4)


def test_proposal_loss_is_zero_only_for_perfect_detectors():
    perfect = np.eye(3, dtype="float32")[LABELS]
    assert float(get_loss("fr_proposal")(LABELS, perfect)) == pytest.approx(0.0, abs=1e-5)
    assert float(get_loss("fr_proposal")(LABELS, 1 - perfect)) > 5.0


def test_classification_loss_matches_hand_computation():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 1.5]], dtype="float32")
    expected = []
    for label, row in zip(LABELS, logits):
        log_norm = math.log(sum(math.exp(v) for v in row))
        expected.append(log_norm - row[label])
    for labels in (LABELS, LABELS.reshape(2, 1)):
        value = float(get_loss("sparse_categorical_crossentropy")(labels, logits))
        assert value == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_one_hot_labels_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="sparse integer labels"):
        get_loss("fr_proposal")(np.eye(3)[LABELS], PROBS)


def test_get_loss_unknown_name_lists_known_names():
    with pytest.raises(KeyError, match="fr_proposal"):
        get_loss("focal")


def test_get_loss_passes_kwargs():
    assert get_loss("sparse_categorical_crossentropy", from_logits=False).from_logits is False
    assert get_loss("fr_proposal").from_logits is False


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_serialisation_round_trip(name):
    loss = get_loss(name, from_logits=not get_loss(name).from_logits)
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == config


def test_fr_losses_weights():
    losses, weights = fr_losses()
    assert set(losses) == {"logits", "proposals"} == set(weights)
    assert weights == {"logits": 1.0, "proposals": 0.85}
    assert isinstance(losses["logits"], SparseCategoricalCrossentropy)
    assert isinstance(losses["proposals"], FRProposalLoss)
    losses, weights = fr_losses(0.5, with_proposals=False)
    assert set(losses) == {"logits"} and weights == {"logits": 1.0}


def _balanced_by_hand(labels, probabilities, form="one_vs_all", balanced=True):
    labels, probabilities = list(labels), np.asarray(probabilities, dtype=float)
    batch, classes = len(labels), probabilities.shape[1]
    total = 0.0
    for label, row in zip(labels, probabilities):
        if form == "one_vs_all":
            loss = -sum(math.log(p) if k == label else math.log(1 - p) for k, p in enumerate(row))
        else:
            loss = -math.log(row[label])
        beta = batch / (classes * labels.count(label)) if balanced else 1.0
        total += beta * loss
    return total / batch


@pytest.mark.parametrize("form", ["one_vs_all", "cross_entropy"])
@pytest.mark.parametrize("balanced", [True, False])
def test_balanced_loss_matches_hand_computation(form, balanced):
    labels = np.array([0, 0, 0, 2])
    logits = np.array([[2.0, 0.1, -1.0], [0.3, 0.2, 0.1], [1.0, -2.0, 0.5], [0.0, 1.0, 2.0]],
                      dtype="float32")
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = _balanced_by_hand(labels, probabilities, form, balanced)
    value = float(get_loss("strcn_balanced", form=form, balanced=balanced)(labels, logits))
    assert value == pytest.approx(expected, rel=1e-5)


def test_balanced_loss_weighs_the_rare_class_up():
    # the lone class-2 sample has beta = 4 / (3 * 1); each class-0 sample 4 / (3 * 3)
    labels = np.array([0, 0, 0, 2])
    wrong_rare = np.array([[5, 0, 0]] * 3 + [[5, 0, 0]], dtype="float32")
    wrong_common = np.array([[0, 0, 5]] * 3 + [[0, 0, 5]], dtype="float32")
    loss = get_loss("strcn_balanced", form="cross_entropy")
    plain = get_loss("strcn_balanced", form="cross_entropy", balanced=False)
    # unbalanced, missing the three common samples costs 3x missing the rare one; balanced, the same
    assert float(plain(labels, wrong_common)) == pytest.approx(3 * float(plain(labels, wrong_rare)),
                                                               rel=2e-2)
    assert float(loss(labels, wrong_common)) == pytest.approx(float(loss(labels, wrong_rare)),
                                                              rel=1e-3)


def test_balanced_loss_rejects_unknown_form():
    with pytest.raises(ValueError, match="form"):
        get_loss("strcn_balanced", form="focal")
