"""Micro-Attention's transfer chain (Wang, Peng, Bi, Chen; Sec 3.3, 4.1, 4.2; PAPER_NOTES 2.3-2.4).

1. A plain ResNet-10 starts from the user's ImageNet weights when given (``TransferSources
   .init_weights``; none is downloaded: without one it starts from random weights, recorded in
   ``run.json``).
2. It is pre-trained on the macro-expression faces of the protocol's classes, once per run
   (macro subjects are never micro test subjects): SGD, momentum 0.9, batch 50, lr 0.01 / 10
   every 20 epochs, each augmentation with p = 0.5 (colour shift <= 20, rotation <= 10 degrees,
   smoothing window <= 6), 60 epochs (the paper gives none; PAPER_NOTES 2.7-6). The macro
   ``validation`` subjects (10 %) are only monitored.
3. Each fold adds the micro-attention units (zero-initialised, so the fold starts from the
   pre-trained network exactly) and fine-tunes on its training subjects: every class oversampled
   to the largest, the protocol's augmentations, SGD with the config's lr / momentum / weight
   decay, lr / 10 every 10 epochs, ``config.epochs`` (30, PAPER_NOTES 2.7-6). The last epoch
   predicts the test subject.

Weight decay is Caffe's (the paper trains in Caffe): ``wd * w`` added to the gradient before the
momentum step (:class:`CaffeSGD`). Keras' own ``weight_decay`` is decoupled from the momentum,
which under momentum 0.9 would make the decay about 10 times weaker in steady state.

Deviations, recorded here and in the run: the paper pre-trains on CK+, Oulu-CASIA, JAFFE and MUG
(10,431 images); the project reads CK+, CK+48, Oulu-CASIA and MMI (no JAFFE or MUG reader), so
the macro set is what the user's ``--macro`` cache holds; under the 3-class protocols (MEGC2019
``cde``, ``smic_3class``) its label map also counts contempt and fear as negative, where the paper
pre-trains on five emotions only (Sec 3.3). The ImageNet start needs a weights file
with this project's layer names (``mer_keras.models.transfer.load_pretrained``); inputs are RGB in
[0, 1], not ImageNet-normalised; what was copied is recorded in ``pretrained/*.json``.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from mer_keras.training.folds import FoldPlan
from mer_keras.transfer.chain import (MacroFaces, cached_weights, chain_settings, fold_result,
                                      predict_clips, settings_key, step_decay)
from mer_keras.transfer.images import augment, corner_crops, oversample

#: the chain's settings (``TrainConfig.transfer``) and their defaults, the paper's.
DEFAULTS = {
    "pretrain_epochs": 60,
    "pretrain_batch_size": 50,
    "pretrain_learning_rate": 0.01,
    "pretrain_momentum": 0.9,
    "pretrain_lr_step": 20,
    "pretrain_augment": {"color_shift": 20, "rotation": 10, "smoothing": 6},
    "lr_step": 10,
    "oversample": True,
    "augment": {"color_shift": 20, "rotation": 8},
    "corner_crops": False,
}


@keras.saving.register_keras_serializable(package="mer_keras")
class CaffeSGD(keras.optimizers.SGD):
    """SGD with Caffe's weight decay: ``g + l2 * w`` enters the momentum step (``v = m v - lr (g +
    l2 w)``, ``w += v``), every trainable variable decayed, as Caffe's default ``decay_mult`` 1."""

    def __init__(self, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def apply(self, grads, trainable_variables=None):
        variables = trainable_variables if trainable_variables is not None \
            else self._trainable_variables
        if self.l2:
            grads = [g if g is None else g + self.l2 * keras.ops.cast(v, g.dtype)
                     for g, v in zip(grads, variables)]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def _sgd(learning_rate, momentum, weight_decay=0.0):
    return CaffeSGD(l2=weight_decay, learning_rate=learning_rate, momentum=momentum)


def _compile(model, optimizer):
    model.compile(optimizer=optimizer, loss={
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})


def _fit_epoch(model, x, y, batch_size, learning_rate):
    model.optimizer.learning_rate.assign(learning_rate)
    history = model.fit(x, {"logits": y}, batch_size=batch_size, epochs=1, shuffle=False,
                        verbose=0)
    return float(history.history["loss"][-1])


class MicroAttentionChain:
    """Pre-trains ResNet-10 on macro faces once; fine-tunes Micro-Attention in every fold."""

    name = "micro_attention"

    def __init__(self, config, data, inputs, sources, work_dir, say):
        self.config, self.data, self.say = config, data, say
        self.settings = chain_settings(DEFAULTS, config.transfer, self.name)
        # one frame per clip: the apex (the middle of K frames centred on it)
        self.images = inputs[:, inputs.shape[1] // 2]
        self.input_shape = tuple(self.images.shape[1:])
        self.num_classes = len(data.classes)
        self.sources = sources
        self.options = dict(config.model_options)
        if config.augment or config.validation is not None:
            raise ValueError("micro_attention's chain has its own augmentations (transfer) and "
                             "no validation set: leave augment and validation unset")
        keras.utils.set_random_seed(config.seed)      # the backbone's initial weights
        self.pretrained = self._plain()
        if sources.macro_cache is None:
            raise ValueError("micro_attention pre-trains on macro-expression faces: give a macro "
                             "cache (python -m data_prep macro; --macro)")
        macro = MacroFaces(sources.macro_cache, data.classes, self.input_shape[:2])
        pretrain = {k: v for k, v in self.settings.items() if k.startswith("pretrain")}
        key = settings_key(pretrain, self.input_shape, self.num_classes, config.seed,
                           macro.fingerprint, sources.weights_sha256(), self.options)
        self.pretraining = cached_weights(work_dir, "resnet10_macro", key,
                                          {"resnet10": self.pretrained},
                                          lambda: self._pretrain(macro), say)

    def _plain(self) -> keras.Model:
        from mer_keras.models import get_builder
        options = {k: v for k, v in self.options.items() if k != "attention_activation"}
        return get_builder("resnet10")(input_shape=self.input_shape,
                                       num_classes=self.num_classes, **options)

    def _pretrain(self, macro: MacroFaces) -> dict:
        from mer_keras.models.transfer import load_pretrained

        s = self.settings
        keras.utils.set_random_seed(self.config.seed)
        rng = np.random.default_rng(self.config.seed)
        model = self.pretrained
        loaded = None
        if self.sources.init_weights is not None:
            report = load_pretrained(model, self.sources.init_weights)
            loaded = {"copied": list(report.copied), "skipped": dict(report.skipped),
                      "untouched": list(report.untouched)}
        _compile(model, _sgd(s["pretrain_learning_rate"], s["pretrain_momentum"]))
        train = np.flatnonzero(macro.train)
        held = np.flatnonzero(~macro.train)
        losses, accuracy = [], []
        for epoch in range(s["pretrain_epochs"]):
            order = rng.permutation(train)
            x = augment(macro.expression[order], rng, **s["pretrain_augment"])
            losses.append(_fit_epoch(model, x, macro.labels[order], s["pretrain_batch_size"],
                                     step_decay(s["pretrain_learning_rate"], epoch,
                                                s["pretrain_lr_step"])))
            if len(held):
                probabilities = predict_clips(model, macro.expression[held][:, None], 64)
                accuracy.append(float((probabilities.argmax(1) == macro.labels[held]).mean()))
            self.say(f"[macro pre-training] epoch {epoch + 1}/{s['pretrain_epochs']} "
                     f"loss={losses[-1]:.4f}" + (f" val_acc={accuracy[-1]:.3f}" if accuracy
                                                 else ""))
        return {"loss": losses, "validation_accuracy": accuracy, "n_train": int(len(train)),
                "n_validation": int(len(held)), "settings": s,
                "init_weights": self.sources.init_weights, "init_weights_transfer": loaded}

    def _fold_model(self) -> keras.Model:
        from mer_keras.models import get_builder
        from mer_keras.models.transfer import transfer_weights

        model = get_builder("micro_attention")(input_shape=self.input_shape,
                                               num_classes=self.num_classes, **self.options)
        report = transfer_weights(self.pretrained, model)
        units = [name for name in report.untouched if not name.endswith("_attention")]
        if report.skipped or units:  # every layer but the new units comes from pre-training
            raise RuntimeError(f"micro_attention: pre-trained weights not transferred: skipped "
                               f"{dict(report.skipped)}, left at initial values {units}")
        return model

    def fit_fold(self, plan: FoldPlan):
        started = time.perf_counter()
        config, s = self.config, self.settings
        keras.utils.set_random_seed(plan.seed)
        rng = np.random.default_rng(plan.seed)
        model = self._fold_model()
        _compile(model, _sgd(config.learning_rate, config.momentum, config.weight_decay))
        rows, labels = np.asarray(plan.fit_rows), np.asarray(plan.fit_labels)
        losses, n_train = [], 0
        for epoch in range(config.epochs):
            picked = oversample(rows, labels, rng) if s["oversample"] else rng.permutation(rows)
            x, y = self.images[picked], self.data.labels[picked]
            if s["corner_crops"]:  # the four corner crops as extra samples (PAPER_NOTES 2.7-7)
                crops = corner_crops(x)
                x = np.concatenate([x, crops.reshape((-1,) + x.shape[1:])])
                y = np.concatenate([y, np.repeat(y, 4)])
                order = rng.permutation(len(y))
                x, y = x[order], y[order]
            if s["augment"]:
                x = augment(x, rng, **s["augment"])
            n_train = len(y)
            losses.append(_fit_epoch(model, x, y, config.batch_size,
                                     step_decay(config.learning_rate, epoch, s["lr_step"])))
        probabilities = predict_clips(model, self.images[plan.test_idx][:, None],
                                      config.batch_size)
        keras.backend.clear_session()
        return fold_result(plan, self.data, probabilities, history={"loss": losses},
                           n_train=n_train, epochs=config.epochs,
                           seconds=time.perf_counter() - started)
