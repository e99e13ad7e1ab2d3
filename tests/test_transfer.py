"""The transfer chains (Micro-Attention, MTMNet): loss terms by hand, sampling, augmentations,
the networks' files, and a tiny run of each chain through the training core."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from data_prep import cache
from mer_keras.models.mtmnet import build_discriminator, build_eidnet
from mer_keras.training import TrainConfig, run_protocol
from mer_keras.transfer import TransferSources
from mer_keras.transfer import mtmnet_losses as L
from mer_keras.transfer.chain import cached_weights
from mer_keras.transfer.images import (augment, corner_crops, face_inputs, oversample,
                                       same_subject_partners)

CLASSES = ("negative", "positive", "surprise")


def _np(x):
    return float(keras.ops.convert_to_numpy(x))


# --------------------------------------------------------------------------------------------------
# Loss terms against hand computations

def test_triplet_loss_by_hand():
    anchor = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    positive = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    negative = np.array([[1.0, 0.0], [3.0, 0.0]], np.float32)
    # raw distances: sample 0: d(a,p)=sqrt2, d(a,n)=0 -> max(sqrt2 - 0 + 0.5, 0); sample 1:
    # d(a,p)=1, d(a,n)=sqrt13 -> max(1 - sqrt13 + 0.5, 0) = 0
    raw = _np(L.triplet_loss(anchor, positive, negative, margin=0.5, normalize=False))
    assert raw == pytest.approx((np.sqrt(2) + 0.5 + 0.0) / 2, abs=1e-5)
    # normalised: sample 1 becomes a=(0,1), p=(0,1), n=(1,0): max(0 - sqrt2 + 0.5, 0) = 0
    normed = _np(L.triplet_loss(anchor, positive, negative, margin=0.5))
    assert normed == pytest.approx((np.sqrt(2) + 0.5) / 2, abs=1e-5)
    # weights switch samples off (an anchor class with no macro counterpart)
    weighted = _np(L.triplet_loss(anchor, positive, negative, margin=0.5,
                                  weights=np.array([0.0, 1.0])))
    assert weighted == pytest.approx(0.0, abs=1e-6)


def test_adversarial_and_discriminator_losses_by_hand():
    real, fake = np.array([[2.0], [-1.0]], np.float32), np.array([[0.5], [0.0]], np.float32)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected_d = np.mean(-np.log(sig(real[:, 0])) - np.log(1 - sig(fake[:, 0])))
    assert _np(L.discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-5)
    assert _np(L.adversarial_loss(fake)) == pytest.approx(np.mean(-np.log(sig(fake[:, 0]))),
                                                          rel=1e-5)


def test_loss_inequality_hinge_and_its_gradient():
    import tensorflow as tf
    micro, macro = tf.Variable(1.5), tf.Variable(0.5)
    with tf.GradientTape() as tape:
        value = L.loss_inequality(micro, macro)
    grads = tape.gradient(value, [micro, macro])
    assert _np(value) == pytest.approx(1.0)
    assert _np(grads[0]) == pytest.approx(1.0)
    assert grads[1] is None or _np(grads[1]) == 0.0      # no gradient through L_cls'
    assert _np(L.loss_inequality(tf.constant(0.2), tf.constant(0.5))) == 0.0


def test_eid_terms_and_totals_by_hand():
    a = np.zeros((2, 2, 2, 1), np.float32)
    b = np.ones((2, 2, 2, 1), np.float32)          # each sample differs by 1 in 4 values: norm 2
    assert _np(L.similarity_loss(a, b)) == pytest.approx(2.0, rel=1e-5)
    assert _np(L.reconstruction_loss(a, b * 0.5)) == pytest.approx(1.0, rel=1e-5)
    assert _np(L.eid_loss(1.0, 2.0, 3.0, 4.0)) == pytest.approx(1.0 + 0.2 + 0.3 - 0.4)
    assert _np(L.mtm_loss(1.0, 10.0, 20.0, 30.0)) == pytest.approx(1.0 + 0.06)


# --------------------------------------------------------------------------------------------------
# Sampling and augmentations

def test_oversample_matches_the_largest_class():
    rows = np.arange(10)
    labels = np.array([0] * 6 + [1] * 3 + [2])
    picked = oversample(rows, labels, np.random.default_rng(0))
    counts = np.bincount(labels[picked], minlength=3)
    assert counts.tolist() == [6, 6, 6]
    assert set(picked[labels[picked] == 0].tolist()) == set(range(6))   # every row kept


def test_corner_crops_take_the_four_corners():
    image = np.arange(14 * 14 * 3, dtype=np.float32).reshape(1, 14, 14, 3) / 1000
    crops = corner_crops(image, enlarged=16, crop=14)            # 14 -> 16, crops of 14
    assert crops.shape == (1, 4, 14, 14, 3)
    assert not np.allclose(crops[0, 0], crops[0, 3])
    assert np.allclose(corner_crops(image, enlarged=14, crop=14)[0, 0], image[0])


def test_augment_changes_only_with_probability():
    rng = np.random.default_rng(0)
    images = np.full((4, 8, 8, 3), 0.5, np.float32)
    same = augment(images, rng, color_shift=20, rotation=8, smoothing=6, probability=0.0)
    assert np.array_equal(same, images)
    shifted = augment(images, rng, color_shift=20, probability=1.0)
    assert not np.allclose(shifted, images) and shifted.min() >= 0 and shifted.max() <= 1


def test_face_inputs_scale_and_resize():
    images = np.full((2, 3, 16, 16, 3), 255, np.uint8)
    out = face_inputs(images, (8, 8))
    assert out.shape == (2, 3, 8, 8, 3) and out.dtype == np.float32 and out.max() == 1.0


def test_same_subject_partners_prefer_another_clip():
    subjects = np.array(["a", "a", "a", "b"])
    clips = np.array(["1", "1", "2", "3"])
    partners = same_subject_partners(subjects, np.random.default_rng(0), clips)
    assert partners[0] == 2 and partners[1] == 2      # the only image of another clip
    assert clips[partners[2]] == "1"
    assert partners[3] == 3                           # alone: itself


# --------------------------------------------------------------------------------------------------
# MTMNet networks

def test_eidnet_parts_round_trip_keras_files(tmp_path):
    net = build_eidnet(input_shape=(32, 32, 3), num_classes=3, num_identities=4, base_width=2)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    features = net.encoder(x)
    assert features["expression"].shape == features["identity"].shape == (2, 1, 1, 16)
    reconstruction = net.decoder([features["expression"], features["identity"]])
    assert reconstruction.shape == (2, 32, 32, 3)
    disc = build_discriminator(feature_shape=(1, 1, 16), base_width=2)
    for model, inputs in ((net.encoder, x), (net.decoder, [features["expression"],
                                                           features["identity"]]),
                          (disc, features["expression"]), (net.classifier(), x)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        before, after = model(inputs), loaded(inputs)
        before = before if isinstance(before, dict) else {"out": before}
        after = after if isinstance(after, dict) else {"out": after}
        for key in before:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(before[key]),
                                       keras.ops.convert_to_numpy(after[key]), atol=1e-6)


# --------------------------------------------------------------------------------------------------
# Cached pre-training

def _tiny_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_cached_weights_reuses_and_keeps_earlier_records(tmp_path):
    calls = []

    def train():
        calls.append(1)
        return {"history": {"loss": [float(len(calls))]}}

    first = cached_weights(tmp_path, "net", "k", {"encoder": _tiny_model()}, train, print)
    again = cached_weights(tmp_path, "net", "k", {"encoder": _tiny_model()}, train, print)
    assert len(calls) == 1 and again == first and "earlier" not in first
    # the weights are gitignored: a resume on a fresh machine trains again, keeping the old record
    (tmp_path / "pretrained" / "net_k_encoder.weights.h5").unlink()
    second = cached_weights(tmp_path, "net", "k", {"encoder": _tiny_model()}, train, print)
    (tmp_path / "pretrained" / "net_k_encoder.weights.h5").unlink()
    third = cached_weights(tmp_path, "net", "k", {"encoder": _tiny_model()}, train, print)
    assert len(calls) == 3
    assert [r["history"]["loss"] for r in third["earlier"]] == [[2.0], [1.0]]
    assert third["earlier"][0] == {k: v for k, v in second.items() if k != "earlier"}
    saved = json.loads((tmp_path / "pretrained" / "net_k.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(third))


# --------------------------------------------------------------------------------------------------
# A tiny run of each chain

def _write_cache(out, kind, subjects, per_subject, *, frames=2, neutral=True, macro=False,
                 size=16):
    rng = np.random.default_rng(len(str(out)))
    rows = []
    for s in range(subjects):
        for i in range(per_subject):
            label = i % 3
            database = "ckplus" if macro else "casme2"
            subject, sample = f"{database}/S{s:02d}", f"c{s}_{i}"
            images = (rng.random((frames, size, size, 3)) * 60).astype(np.uint8)
            images[..., label] += 150     # the class is the brightest channel
            arrays = {"expression": images[0]} if macro else {"frames": images}
            if neutral:
                arrays["neutral"] = (rng.random((size, size, 3)) * 60).astype(np.uint8)
            relpath = cache.entry_relpath(subject, sample)
            cache.write_entry(out / relpath, arrays, cache.make_provenance("test", {}, "x"))
            row = {"database": database, "subject": subject, "sample": sample,
                   "label": CLASSES[label], "emotion": CLASSES[label], "entry": relpath}
            if macro:
                row.update(sequence=str(s * 10 + i), split="validation" if s == 0 else "train")
            rows.append(row)
    cache.write_index(out, rows)
    cache.write_cache_meta(out, {"kind": kind, "protocol": "cde", "classes": list(CLASSES),
                                 "has_neutral": neutral})
    return out


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    return (_write_cache(root / "micro", "frames", 2, 3),
            _write_cache(root / "macro", "macro", 2, 3, frames=1, neutral=False, macro=True))


def test_micro_attention_chain_runs_and_resumes(caches, tmp_path):
    micro, macro = caches
    config = TrainConfig(experiment="ma", model="micro_attention", input_array="frames",
                         momentum=0.9, batch_size=4, epochs=1,
                         model_options={"widths": [2, 2, 4, 4]},
                         transfer={"pretrain_epochs": 1, "corner_crops": True})
    sources = TransferSources(macro_cache=str(macro))
    result = run_protocol(config, micro, tmp_path, engine="transfer", folds_per_process=0,
                          sources=sources, progress=False)
    assert len(result.trained) == 2
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["engine"]["name"] == "transfer"
    assert record["transfer_sources"]["initialisation"].startswith("random")
    assert len(list((tmp_path / "pretrained").glob("resnet10_macro_*.weights.h5"))) == 1
    again = run_protocol(config, micro, tmp_path, engine="transfer", folds_per_process=0,
                         sources=sources, progress=False)
    assert again.trained == [] and len(again.resumed) == 2
    with pytest.raises(ValueError, match="transfer"):
        run_protocol(config, micro, tmp_path / "other", engine="compile_once",
                     folds_per_process=0, sources=sources, progress=False)


def test_mtmnet_trainers_take_one_step_of_every_term():
    """One eager step of EIDNet's Eq. (5) and of MTMNet's Eq. (12) + Eq. (8) moves every network
    they train and leaves the frozen MacroNet alone (the traced chain: the slow test below)."""
    from mer_keras.transfer.mtmnet import DEFAULTS, EIDTrainer, MTMTrainer

    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3)).astype(np.float32)
    y, s = np.array([0, 1, 2, 0], np.int32), np.array([0, 1, 0, 1], np.int32)
    micro = build_eidnet(input_shape=(32, 32, 3), num_identities=2, base_width=2)
    macro = build_eidnet(input_shape=(32, 32, 3), num_identities=2, base_width=2)
    disc = build_discriminator(feature_shape=(1, 1, 16), base_width=2)
    snapshot = lambda model: [v.numpy().copy() for v in model.trainable_variables]  # noqa: E731
    before = {name: snapshot(m) for name, m in (("decoder", micro.decoder),
                                                 ("identity", micro.identity_classifier))}
    out = EIDTrainer(micro, DEFAULTS["pretrain_learning_rates"], (0.1, 0.1, 0.1))._step(
        x, x[::-1], y, s)
    assert {"l_c", "l_s", "l_rec", "l_sim"} <= set(out)
    for name, model in (("decoder", micro.decoder), ("identity", micro.identity_classifier)):
        assert any(not np.allclose(a, b) for a, b in zip(before[name], snapshot(model)))
    frozen, d_before = snapshot(macro.encoder), snapshot(disc)
    out = MTMTrainer(micro, macro.encoder, disc, dict(DEFAULTS))._step(
        x, x[::-1], np.roll(x, 1, 0), y, np.array([True, True, False, True]))
    assert all(float(out[k]) > 0 for k in ("l_cls", "l_tri", "l_adv", "l_d"))
    assert all(np.array_equal(a, b) for a, b in zip(frozen, snapshot(macro.encoder)))
    assert any(not np.allclose(a, b) for a, b in zip(d_before, snapshot(disc)))


@pytest.mark.slow
def test_mtmnet_chain_runs_with_every_loss_term(caches, tmp_path):
    micro, macro = caches
    config = TrainConfig(experiment="mtm", model="mtmnet", input_array="frames",
                         optimizer="adam", batch_size=4, epochs=1,
                         model_options={"base_width": 2},
                         transfer={"neutral": "onset", "pretrain_epochs": 1,
                                   "macro_pretrain_epochs": 1})
    result = run_protocol(config, micro, tmp_path, engine="transfer", folds_per_process=0,
                          sources=TransferSources(macro_cache=str(macro)), progress=False)
    assert len(result.trained) == 2
    fold = json.loads(next((tmp_path / "folds").rglob("*.json")).read_text())
    history = fold["history"]
    assert {"mtm_l_cls", "mtm_l_tri", "mtm_l_adv", "mtm_l_lir", "mtm_l_d"} <= set(history)
    assert "micronet_l_rec" in history and "micronet_l_s" in history
    assert history["mtm_l_tri"][0] > 0 and history["mtm_l_d"][0] > 0


def test_mtmnet_fold_reset_redraws_weights_and_keeps_learning_rates():
    """Each fold starts from its own seed's weights and zeroed optimizer moments, at the
    configured learning rates (a reset that zeroed every optimizer variable froze training)."""
    from types import SimpleNamespace

    from mer_keras.transfer.mtmnet import DEFAULTS, MTMNetChain

    chain = object.__new__(MTMNetChain)
    chain._networks, chain._classifier = None, None
    chain.input_shape, chain.num_classes, chain.base_width = (32, 32, 3), 3, 2
    chain.settings = dict(DEFAULTS)
    chain.data = SimpleNamespace(subjects=np.array(["a", "b", "c"]))
    chain.macronet = build_eidnet(input_shape=(32, 32, 3), base_width=2, prefix="macro_")
    micro, eid_trainer, trainer = chain._fold_networks(2, seed=1)
    first = [v.numpy().copy() for v in micro.encoder.trainable_variables]
    for optimizer in eid_trainer.optimizers.values():   # pretend a fold trained
        optimizer.iterations.assign(7)
    micro.encoder.trainable_variables[0].assign(micro.encoder.trainable_variables[0] + 1.0)
    again, eid_trainer, trainer = chain._fold_networks(2, seed=1)
    assert again is micro                                  # built once, redrawn
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(first, micro.encoder.trainable_variables))
    rates = DEFAULTS["pretrain_learning_rates"]
    for key, optimizer in eid_trainer.optimizers.items():
        assert float(optimizer.learning_rate) == pytest.approx(rates[key])
        assert int(optimizer.iterations) == 0
    for key, optimizer in trainer.optimizers.items():
        assert float(optimizer.learning_rate) == pytest.approx(DEFAULTS["learning_rates"][key])
    other, _, _ = chain._fold_networks(2, seed=2)
    assert not np.array_equal(first[0], other.encoder.trainable_variables[0].numpy())


def test_caffe_sgd_adds_weight_decay_to_the_gradient():
    from mer_keras.transfer.micro_attention import CaffeSGD
    variable = keras.Variable(np.array([2.0], np.float32))
    optimizer = CaffeSGD(l2=0.5, learning_rate=0.1, momentum=0.9)
    optimizer.apply([keras.ops.convert_to_tensor(np.array([1.0], np.float32))], [variable])
    # v = -lr (g + l2 w) = -0.1 (1 + 1) = -0.2; w = 2 - 0.2
    assert float(variable.numpy()[0]) == pytest.approx(1.8)
    optimizer.apply([keras.ops.convert_to_tensor(np.array([0.0], np.float32))], [variable])
    # v = 0.9 (-0.2) - 0.1 (0 + 0.9) = -0.27
    assert float(variable.numpy()[0]) == pytest.approx(1.53)
    assert CaffeSGD.from_config(optimizer.get_config()).l2 == 0.5
