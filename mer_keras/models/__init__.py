"""Model registry: a name -> builder table that refuses duplicate names.

A builder is ``build_<model>(*, input_shape=(28, 28, 2), num_classes=3, ...) -> keras.Model``: every
argument keyword-only with a default, ONE input (the flow tensor ``H x W x C``), and a dict of
outputs that always holds ``"logits"`` (pre-softmax, ``num_classes`` wide). FR adds
``"proposals"`` (the K sigmoid detector outputs).

Usage::

    from mer_keras.models import get_builder
    model = get_builder("fr")(input_shape=(28, 28, 3), num_classes=3)

Unlike timm's ``timm/models/_registry.py``, which only warns, registering a name twice raises.
"""

from __future__ import annotations

from typing import Callable

import keras

Builder = Callable[..., keras.Model]

#: name -> builder, filled by the ``@register_model`` decorators of the modules imported below.
MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Return a decorator that registers a builder under ``name``.

    Args:
        name: registry key, the snake_case model name (``"fr"``).

    Raises:
        ValueError: if ``name`` is already registered (to another or the same builder).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")

    def decorator(builder: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(
                f"model {name!r} is already registered (by {MODELS[name].__module__}."
                f"{MODELS[name].__qualname__}); pick another name")
        MODELS[name] = builder
        return builder

    return decorator


def get_builder(name: str) -> Builder:
    """Return the builder registered under ``name``.

    Raises:
        KeyError: naming ``name`` and listing the known names.
    """
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS)) or "(none)"
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


# The model modules register themselves on import.
from mer_keras.models import (  # noqa: E402,F401
    baseline, fr, micro_attention, mtmnet, off_apexnet, resnet, strcn)
