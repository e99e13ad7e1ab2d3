"""Weights that move between models by layer name: pre-trained backbones into the papers' networks.

Micro-Attention (Sec 3.3) trains a plain ResNet (ImageNet, then macro-expression faces) and then
fine-tunes the same ResNet with micro-attention units added; MTMNet starts its encoders from an
ImageNet ResNet. Both builders name their layers so that a layer means the same thing in every
model that has it; ``transfer_weights`` copies by those names and reports what it could not copy
(a classifier of another class count, say), and ``load_pretrained`` does the same from a file the
user supplies. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional

import keras


class WeightTransfer(NamedTuple):
    """What ``transfer_weights`` did.

    Attributes:
        copied: names of the target layers whose weights were overwritten, in source order.
        skipped: source layer name -> why its weights were not copied: listed in ``skip``, no
            target layer of that name, or the weight shapes differ (both shapes given).
        untouched: target layers with weights that received none (they keep their
            initialisation, e.g. the zero ``W*`` of Micro-Attention's units).
    """

    copied: list[str]
    skipped: dict[str, str]
    untouched: list[str]


def _shapes(layer) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in weight.shape) for weight in layer.weights]


def transfer_weights(source: keras.Model, target: keras.Model, *, skip: Iterable[str] = (),
                     prefix: str = "") -> WeightTransfer:
    """Copy the weights of every layer of ``source`` into the layer of ``target`` of that name.

    A layer is copied only when its weights (trainable and not, e.g. batch-norm statistics) have
    the same shapes, in the same order, as the target layer's; otherwise it is skipped and the
    reason reported, so a classifier of another width (ImageNet's 1000 classes, the 5 of the
    macro pre-training) stays at its initialisation without an error. Layers without weights are
    ignored. Only ``source.layers`` and ``target.layers`` are matched: to fill a nested model
    (an encoder inside a bigger model), pass it, ``target.get_layer("encoder")``, as ``target``.

    Args:
        source: the model to read.
        target: the model to write; built (a functional model is).
        skip: names of source layers not to copy (e.g. ``("logits",)``).
        prefix: prepended to a source layer's name to find its target layer (``"clean_"``
            copies ``conv1`` into ``clean_conv1``).

    Returns:
        A ``WeightTransfer``: the copied target names, the skipped source names with the reason,
        and the target layers left untouched.
    """
    skip = set(skip)
    targets = {layer.name: layer for layer in target.layers}
    copied: list[str] = []
    skipped: dict[str, str] = {}
    for layer in source.layers:
        if not layer.weights:
            continue
        if layer.name in skip:
            skipped[layer.name] = "listed in skip"
            continue
        target_name = f"{prefix}{layer.name}"
        destination = targets.get(target_name)
        if destination is None:
            skipped[layer.name] = f"no layer {target_name!r} in {target.name}"
            continue
        have, want = _shapes(layer), _shapes(destination)
        if have != want:
            skipped[layer.name] = f"weight shapes differ: {have} in {source.name}, {want} in " \
                                  f"{target.name}"
            continue
        destination.set_weights(layer.get_weights())
        copied.append(target_name)
    done = set(copied)
    untouched = [layer.name for layer in target.layers if layer.weights and layer.name not in done]
    return WeightTransfer(copied, skipped, untouched)


def _classifier_width(path: Path) -> int:
    """The output width of the only 2-D kernel of a ``.weights.h5`` file (the classifier's)."""
    import h5py

    kernels = []
    with h5py.File(path, "r") as weights:
        weights.visititems(lambda name, item: kernels.append((name, item.shape))
                           if isinstance(item, h5py.Dataset) and len(item.shape) == 2 else None)
    if len(kernels) != 1:
        raise ValueError(
            f"{path}: cannot tell the classifier's width ({len(kernels)} 2-D kernels: "
            f"{kernels}); pass builder_kwargs={{'num_classes': ...}}")
    return int(kernels[0][1][-1])


def load_pretrained(model: keras.Model, path, *, skip: Iterable[str] = (),
                    builder: str = "resnet10", builder_kwargs: Optional[Mapping[str, Any]] = None
                    ) -> WeightTransfer:
    """Load a user's pre-trained weights file (ImageNet or any other) into ``model`` by layer name.

    * ``.keras``: a whole saved model, of any architecture; its layers are matched by name.
    * ``.weights.h5``: weights saved (``model.save_weights``) from one of this project's builders,
      ``builder`` (``"resnet10"`` by default). A ``.weights.h5`` file records weights by layer
      order, not name, so the builder rebuilds the network that wrote it (``builder_kwargs``;
      by default the input shape of ``model`` and the classifier width read from the file) and
      loads the file into it first.

    Then ``transfer_weights(source, model, skip=skip)``; a classifier of another width is skipped.

    Args:
        model: the model to fill (e.g. ``micro_attention``, whose units keep their zero ``W*``).
        path: the weights file.
        skip: source layer names not to copy.
        builder: registry name of the builder that wrote a ``.weights.h5`` file.
        builder_kwargs: arguments of that builder (e.g. ``{"widths": ...}``).

    Returns:
        The ``WeightTransfer`` report.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file of another kind, a ``.weights.h5`` that does not fit the builder, or a
            file of which no layer could be copied into ``model``.
    """
    from mer_keras.models import get_builder

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pre-trained weights {path} not found")
    if path.name.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
    elif path.name.endswith(".weights.h5"):
        kwargs = dict(builder_kwargs or {})
        kwargs.setdefault("input_shape", tuple(model.inputs[0].shape[1:]))
        if "num_classes" not in kwargs:
            kwargs["num_classes"] = _classifier_width(path)
        source = get_builder(builder)(**kwargs)
        try:
            source.load_weights(path)
        except ValueError as error:
            raise ValueError(f"{path}: does not load into {builder}({kwargs}): {error}") from error
    else:
        raise ValueError(f"{path}: expected a .keras model or a .weights.h5 file")
    report = transfer_weights(source, model, skip=skip)
    if not report.copied:
        raise ValueError(f"{path}: no layer of {source.name} fits a layer of {model.name} "
                         f"(same name and weight shapes); skipped: {report.skipped}")
    return report
