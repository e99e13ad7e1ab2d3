"""MTMNet's training chain (Xia et al., ACM MM 2020; Sec 3, 4.1; PAPER_NOTES 4.2-4.6).

1. MacroNet: an EIDNet pre-trained on the macro faces with Eq. (5), once per run (macro subjects
   are never micro test subjects), then frozen (4.6-5).
2. In each fold, MicroNet: an EIDNet pre-trained with Eq. (5) on the fold's training subjects only
   (4.6-10), its identity classifier over those subjects (4.6-4).
3. MicroNet fine-tuned with Eq. (12) on triplets (4.6-7): the anchor a micro training image, the
   positive a random macro image of its class (through the frozen MacroNet), the negative a
   random micro training image of another class; the discriminator D learns macro = real.
   Anchors whose class has no macro image get only L_cls (4.6-1).
4. The test subject's clips are predicted from the softmax averaged over their K frames (4.6-3).

Each of a clip's K frames is a training sample paired with its neutral frame: the onset
(``neutral="onset"``, PAPER_NOTES 4.1), or, where a cache has none (the public MEGC2019 apex
crops, CK+48), another image of the same subject (``"same-subject"``, a deviation).

The min-max of Eq. (5) (and of Eqs. 8-9) updates the adversary and the encoder from ONE forward
pass: each optimizer applies the gradient of its own loss (D_s minimises L_s, the encoder side
minimises L_EID with ``-l13 L_s``), which is what a gradient-reversal layer with separate
learning rates does. Optimizer: Adam (4.6-9), the paper's learning rates per network (Sec 4.1).
Ablations (Tables 2-3): ``losses`` (any of cls, tri, adv, lir; cls always) and ``eid`` (False:
no EIDNet pre-training of MicroNet, which fine-tunes from the initial weights, and MacroNet
trained with L_c only: the "-" rows, 4.6-11).

Readings to know: L_LIR hinges the two batch losses, as Eq. (11) is written (a per-sample hinge
is the alternative); the encoder's ``-l13 L_s`` is literal Eq. (5) and unbounded below (the
logged ``l_s`` shows whether it runs away); inputs are RGB in [0, 1], not ImageNet-normalised.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from mer_keras.models.mtmnet import EIDNet, build_discriminator, build_eidnet
from mer_keras.training.folds import FoldPlan
from mer_keras.transfer import mtmnet_losses as L
from mer_keras.transfer.chain import (MacroFaces, cached_weights, chain_settings, fold_result,
                                      predict_clips, settings_key)
from mer_keras.transfer.images import same_subject_partners

LOSS_TERMS = ("cls", "tri", "adv", "lir")
NEUTRALS = ("onset", "same-subject")

DEFAULTS = {
    "eid": True,
    "losses": list(LOSS_TERMS),
    "neutral": "onset",
    "pretrain_epochs": 20,            # MicroNet's EIDNet, per fold (4.6-9)
    "macro_pretrain_epochs": 20,      # MacroNet's EIDNet, once per run
    "pretrain_learning_rates": {"encoder": 1e-4, "classifier": 1e-4, "decoder": 1e-5,
                                "identity": 1e-4},
    "learning_rates": {"encoder": 1e-5, "classifier": 1e-5, "discriminator": 1e-5},
    "eid_lambdas": [0.1, 0.1, 0.1],
    "mtm_lambdas": [1e-3, 1e-3, 1e-3],
    "margin": 1.0,
}


def check_settings(settings: dict) -> dict:
    unknown = sorted(set(settings["losses"]) - set(LOSS_TERMS))
    if unknown or "cls" not in settings["losses"]:
        raise ValueError(f"mtmnet losses {settings['losses']} must include 'cls' and be among "
                         f"{LOSS_TERMS}")
    if settings["neutral"] not in NEUTRALS:
        raise ValueError(f"mtmnet neutral {settings['neutral']!r} not in {NEUTRALS}")
    return settings


def _signature(image_shape, *, images: int, labels: int) -> list:
    """A step's input signature, any batch size: one trace per trainer, the last partial batch
    included."""
    image = tf.TensorSpec([None, *image_shape], tf.float32)
    return [image] * images + [tf.TensorSpec([None], tf.int32)] * labels


def apply_updates(tape, optimizers, parts) -> None:
    """Each ``(optimizer key, model, loss)``: the optimizer steps the model on its loss's gradient.

    Variables the loss does not reach (an unused branch) are left alone."""
    for key, model, loss in parts:
        pairs = [(g, v) for g, v in zip(tape.gradient(loss, model.trainable_variables),
                                        model.trainable_variables) if g is not None]
        optimizers[key].apply_gradients(pairs)


class EIDTrainer:
    """Eq. (5) on (expression, neutral, label, identity) batches; ``cls_only``: L_c alone."""

    def __init__(self, net: EIDNet, rates: dict, lambdas, *, cls_only: bool = False):
        self.net, self.lambdas, self.cls_only = net, tuple(lambdas), cls_only
        adam = keras.optimizers.Adam
        self.optimizers = {"encoder": adam(rates["encoder"]), "classifier": adam(rates["classifier"]),
                           "decoder": adam(rates["decoder"]), "identity": adam(rates["identity"])}
        self.step = tf.function(self._step, input_signature=_signature(
            net.encoder.input_shape[1:], images=2, labels=2))

    def _step(self, x_e, x_n, y, s):
        net = self.net
        with tf.GradientTape(persistent=True) as tape:
            if self.cls_only:
                f_e = net.encoder(x_e, training=True)
                l_c = L.cross_entropy(y, net.expression_classifier(f_e["expression"],
                                                                    training=True))
                total, terms = l_c, {"l_c": l_c}
            else:
                both = net.encoder(tf.concat([x_e, x_n], 0), training=True)
                half = tf.shape(x_e)[0]
                f_ee, f_es = both["expression"][:half], both["identity"][:half]
                f_ns = both["identity"][half:]
                l_c = L.cross_entropy(y, net.expression_classifier(f_ee, training=True))
                l_s = L.cross_entropy(s, net.identity_classifier(f_ee, training=True))
                l_rec = L.reconstruction_loss(x_e, net.decoder([f_ee, f_ns], training=True))
                l_sim = L.similarity_loss(f_es, f_ns)
                total = L.eid_loss(l_c, l_rec, l_sim, l_s, self.lambdas)
                terms = {"l_c": l_c, "l_s": l_s, "l_rec": l_rec, "l_sim": l_sim}
        parts = [("encoder", net.encoder, total), ("classifier", net.expression_classifier, total)]
        if not self.cls_only:
            parts += [("decoder", net.decoder, total),
                      ("identity", net.identity_classifier, terms["l_s"])]
        apply_updates(tape, self.optimizers, parts)
        del tape
        return {"loss": total, **terms}

    def fit(self, expression, neutral_of, labels, identities, *, epochs, batch_size, rng, say,
            tag, where: str = "") -> dict:
        """``epochs`` over all rows; ``neutral_of(rng) -> neutral images`` row by row. History keys
        are ``<tag>_<term>``; ``where`` (the fold) only prefixes the progress lines."""
        history: dict = {}
        count = len(labels)
        for epoch in range(epochs):
            neutral = neutral_of(rng)
            order = rng.permutation(count)
            sums: dict = {}
            for start in range(0, count, batch_size):
                batch = order[start:start + batch_size]
                out = self.step(expression[batch], neutral[batch],
                                labels[batch].astype(np.int32), identities[batch].astype(np.int32))
                for key, value in out.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * len(batch)
            for key, value in sums.items():
                history.setdefault(f"{tag}_{key}", []).append(value / max(count, 1))
            say(f"[{where + ' ' if where else ''}{tag}] epoch {epoch + 1}/{epochs} "
                f"loss={history[f'{tag}_loss'][-1]:.4f}")
        return history


class MTMTrainer:
    """Eq. (12) for MicroNet and Eq. (8) for D, against a frozen MacroNet encoder."""

    def __init__(self, micro: EIDNet, macro_encoder: keras.Model, discriminator: keras.Model,
                 settings: dict):
        self.micro, self.macro_encoder, self.discriminator = micro, macro_encoder, discriminator
        self.terms = set(settings["losses"])
        self.lambdas, self.margin = tuple(settings["mtm_lambdas"]), float(settings["margin"])
        rates = settings["learning_rates"]
        adam = keras.optimizers.Adam
        self.optimizers = {"encoder": adam(rates["encoder"]),
                           "classifier": adam(rates["classifier"]),
                           "discriminator": adam(rates["discriminator"])}
        self.step = tf.function(self._step, input_signature=_signature(
            micro.encoder.input_shape[1:], images=3, labels=1) + [tf.TensorSpec([None], tf.bool)])

    def _step(self, x_anc, x_pos, x_neg, y, has_pos):
        micro = self.micro
        weights = tf.cast(has_pos, tf.float32)
        f_pos = tf.stop_gradient(self.macro_encoder(x_pos, training=False)["expression"])
        with tf.GradientTape(persistent=True) as tape:
            both = micro.encoder(tf.concat([x_anc, x_neg], 0), training=True)["expression"]
            half = tf.shape(x_anc)[0]
            f_anc, f_neg = both[:half], both[half:]
            l_cls = L.cross_entropy(y, micro.expression_classifier(f_anc, training=True))
            zero = tf.constant(0.0)
            l_tri = L.triplet_loss(f_anc, f_pos, f_neg, margin=self.margin, weights=weights) \
                if "tri" in self.terms else zero
            l_d, l_adv = zero, zero
            if "adv" in self.terms:
                real = self.discriminator(f_pos, training=True)
                fake = self.discriminator(f_anc, training=True)
                l_d = L.discriminator_loss(real, fake, weights)
                l_adv = L.adversarial_loss(fake, weights)
            l_lir = zero
            if "lir" in self.terms:
                micro_loss = L.cross_entropy(
                    y, micro.expression_classifier(f_anc, training=True), weights)
                macro_loss = L.cross_entropy(
                    y, micro.expression_classifier(f_pos, training=False), weights)
                l_lir = L.loss_inequality(micro_loss, macro_loss)
            total = L.mtm_loss(l_cls, l_tri, l_adv, l_lir, self.lambdas)
        parts = [("encoder", micro.encoder, total),
                 ("classifier", micro.expression_classifier, total)]
        if "adv" in self.terms:
            parts.append(("discriminator", self.discriminator, l_d))
        apply_updates(tape, self.optimizers, parts)
        del tape
        return {"loss": total, "l_cls": l_cls, "l_tri": l_tri, "l_adv": l_adv, "l_d": l_d,
                "l_lir": l_lir}


class MTMNetChain:
    """MacroNet once per run; MicroNet's pre-training and fine-tuning in every fold."""

    name = "mtmnet"

    def __init__(self, config, data, inputs, sources, work_dir, say):
        self.config, self.data, self.say = config, data, say
        self.settings = check_settings(chain_settings(DEFAULTS, config.transfer, self.name))
        self.clips = inputs                                   # N x K x H x W x 3
        self.input_shape = tuple(inputs.shape[2:])
        self.num_classes = len(data.classes)
        self.base_width = int(config.model_options.get("base_width", 64))
        self.sources = sources
        self._networks, self._classifier = None, None
        self.neutral = None
        if self.settings["neutral"] == "onset":
            if "neutral" not in data.arrays:
                raise ValueError("mtmnet neutral='onset' needs the cache's onset frames "
                                 "(`neutral`); this cache has none: use 'same-subject'")
            from mer_keras.transfer.images import face_inputs
            self.neutral = face_inputs(data.arrays["neutral"], self.input_shape[:2])
        if sources.macro_cache is None:
            raise ValueError("mtmnet learns from macro-expressions: give a macro cache "
                             "(python -m data_prep macro; --macro)")
        self.macro = MacroFaces(sources.macro_cache, data.classes, self.input_shape[:2])
        self.macro_by_class = {c: np.flatnonzero(self.macro.labels == c)
                               for c in range(self.num_classes)}
        macro_subjects = sorted(set(self.macro.subjects.tolist()))
        keras.utils.set_random_seed(config.seed)       # MacroNet's initial weights
        self.macronet = build_eidnet(input_shape=self.input_shape, num_classes=self.num_classes,
                                     num_identities=len(macro_subjects),
                                     base_width=self.base_width, prefix="macro_")
        key = settings_key(pretrain_record(self.settings), self.input_shape, self.num_classes,
                           config.seed, config.batch_size, self.base_width,
                           self.macro.fingerprint, sources.weights_sha256())
        self.pretraining = cached_weights(work_dir, "macronet", key,
                                          {"encoder": self.macronet.encoder},
                                          lambda: self._pretrain_macro(macro_subjects), say)

    def _init_encoder(self, encoder):
        if self.sources.init_weights is not None:
            from mer_keras.models.transfer import load_pretrained
            load_pretrained(encoder, self.sources.init_weights, builder="resnet18",
                            builder_kwargs={"base_width": self.base_width})

    def _pretrain_macro(self, macro_subjects) -> dict:
        s, macro = self.settings, self.macro
        keras.utils.set_random_seed(self.config.seed)
        rng = np.random.default_rng(self.config.seed)
        self._init_encoder(self.macronet.encoder)
        identity = {subject: i for i, subject in enumerate(macro_subjects)}
        identities = np.array([identity[x] for x in macro.subjects.tolist()])

        def neutral_of(rng):
            if macro.neutral is not None:
                return macro.neutral
            return macro.expression[same_subject_partners(macro.subjects, rng, macro.sequences)]

        trainer = EIDTrainer(self.macronet, s["pretrain_learning_rates"], s["eid_lambdas"],
                             cls_only=not s["eid"])
        history = trainer.fit(macro.expression, neutral_of, macro.labels, identities,
                              epochs=s["macro_pretrain_epochs"], batch_size=self.config.batch_size,
                              rng=rng, say=self.say, tag="macronet")
        return {"history": history, "n_train": int(len(macro)),
                "neutral": "onset" if macro.neutral is not None else "same-subject",
                "settings": pretrain_record(s)}

    def fit_fold(self, plan: FoldPlan):
        started = time.perf_counter()
        config, s = self.config, self.settings
        keras.utils.set_random_seed(plan.seed)
        rng = np.random.default_rng(plan.seed)
        rows = np.asarray(plan.fit_rows)
        frames = self.clips.shape[1]
        # every frame of a training clip is its own sample (4.6-3)
        clip_of = np.repeat(rows, frames)
        images = self.clips[rows].reshape((-1,) + self.input_shape)
        labels = self.data.labels[clip_of]
        subjects = self.data.subjects[clip_of]
        fold_subjects = sorted(set(subjects.tolist()))
        identities = np.array([fold_subjects.index(x) for x in subjects.tolist()])
        micro, eid_trainer, trainer = self._fold_networks(len(fold_subjects), plan.seed)
        self._init_encoder(micro.encoder)
        history: dict = {}
        if s["eid"]:
            fold_neutral = self.neutral[clip_of] if self.neutral is not None else None

            def neutral_of(rng):
                if fold_neutral is not None:
                    return fold_neutral
                partners = same_subject_partners(subjects, rng, clip_of.astype(str))
                return images[partners]

            history.update(eid_trainer.fit(
                images, neutral_of, labels, identities, epochs=s["pretrain_epochs"],
                batch_size=config.batch_size, rng=rng, say=self.say, tag="micronet",
                where=plan.name))
        count = len(labels)
        for epoch in range(config.epochs):
            order = rng.permutation(count)
            sums: dict = {}
            for start in range(0, count, config.batch_size):
                batch = order[start:start + config.batch_size]
                y = labels[batch]
                positives, has_pos = self._positives(y, rng)
                negatives = np.array([rng.choice(np.flatnonzero(labels != c)) if
                                      np.any(labels != c) else rng.integers(count) for c in y])
                out = trainer.step(images[batch], self.macro.expression[positives],
                                   images[negatives], y.astype(np.int32), has_pos)
                for key, value in out.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * len(batch)
            for key, value in sums.items():
                history.setdefault(f"mtm_{key}", []).append(value / count)
            self.say(f"[{plan.name} mtmnet] epoch {epoch + 1}/{config.epochs} "
                     f"loss={history['mtm_loss'][-1]:.4f}")
        history["loss"] = history["mtm_loss"]
        probabilities = predict_clips(self._classifier, self.clips[plan.test_idx],
                                      config.batch_size)
        return fold_result(plan, self.data, probabilities, history=history, n_train=count,
                           epochs=config.epochs, seconds=time.perf_counter() - started)

    def _fold_networks(self, identities: int, seed: int):
        """MicroNet, D and their trainers, built and traced once per process: each fold redraws
        every weight from its own seed through each layer's initializer and zeroes the optimizers
        (their step counts and moments; the learning rates stay), so folds differ only by seed
        and data. The identity
        classifier is as wide as the most training subjects a fold has (all but the test subject
        under LOSO); a fold with fewer leaves the extra outputs without targets."""
        from mer_keras.training.stacked import initial_values

        if self._networks is None or self._networks[0] < identities:
            width = max(identities, len(set(self.data.subjects.tolist())) - 1)
            micro = build_eidnet(input_shape=self.input_shape, num_classes=self.num_classes,
                                 num_identities=width, base_width=self.base_width)
            discriminator = build_discriminator(
                feature_shape=tuple(micro.encoder.output["expression"].shape[1:]),
                base_width=self.base_width)
            s = self.settings
            self._networks = (width, micro, discriminator,
                              EIDTrainer(micro, s["pretrain_learning_rates"], s["eid_lambdas"]),
                              MTMTrainer(micro, self.macronet.encoder, discriminator, s))
            self._classifier = micro.classifier()
        _, micro, discriminator, eid_trainer, trainer = self._networks
        models = [micro.encoder, micro.expression_classifier, micro.identity_classifier,
                  micro.decoder, discriminator]
        for offset, model in enumerate(models):
            trainable, fixed = initial_values(model, seed + offset)
            for variable, value in zip(model.trainable_variables + model.non_trainable_variables,
                                       trainable + fixed):
                variable.assign(value)
        for optimizer in [*eid_trainer.optimizers.values(), *trainer.optimizers.values()]:
            for variable in optimizer.variables:  # the step count and moments, not the rate
                if variable is not optimizer._learning_rate:
                    variable.assign(np.zeros(variable.shape, variable.dtype))
        return micro, eid_trainer, trainer

    def _positives(self, labels, rng):
        """A random macro image of each anchor's class, and whether the class has any."""
        picks, has = [], []
        for c in labels.tolist():
            members = self.macro_by_class.get(c)
            has.append(members is not None and len(members) > 0)
            picks.append(rng.choice(members) if has[-1] else 0)
        return np.array(picks), np.array(has)


def pretrain_record(settings: dict) -> dict:
    return {k: settings[k] for k in ("eid", "macro_pretrain_epochs", "pretrain_learning_rates",
                                     "eid_lambdas")}
