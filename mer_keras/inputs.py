"""From cache arrays to model inputs: channel choice, normalisation and resizing.

The cache stores ``flow`` as N x H x W x 3 float32 with channels ``u``, ``v`` and optical
``strain``, in that order. A paper's model takes some of them (FR and OFF-ApexNet: u and v, or all
three), maybe normalised, maybe at another size. This module does only that, in NumPy/OpenCV, so
the same array feeds any backend.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

#: channel name -> index in the cache's ``flow`` array.
CHANNELS = {"u": 0, "v": 1, "strain": 2}
NORMALIZATIONS = ("none", "minmax")


def select_channels(flow: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """Pick channels by name (``"u"``, ``"v"``, ``"strain"``) from an N x H x W x 3 flow array."""
    flow = np.asarray(flow)
    if flow.ndim != 4:
        raise ValueError(f"expected flow of shape N x H x W x C, got {flow.shape}")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        raise ValueError(f"unknown input channels {unknown or list(channels)}; "
                         f"choose among {list(CHANNELS)}")
    index = [CHANNELS[c] for c in channels]
    if max(index) >= flow.shape[-1]:
        raise ValueError(f"flow has {flow.shape[-1]} channels; channels {list(channels)} need "
                         f"{max(index) + 1}")
    return flow[..., index]


def normalize(x: np.ndarray, method: str = "none") -> np.ndarray:
    """Normalise ``N x H x W x C`` inputs.

    Args:
        x: the inputs.
        method: ``"none"`` (unchanged) or ``"minmax"``: each sample's each channel mapped to [0, 1]
            (a constant channel becomes 0), as the STSTNet/HTNet flow images already are.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; choose among {NORMALIZATIONS}")
    x = np.asarray(x, dtype=np.float32)
    if method == "none":
        return x
    low = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - low
    return np.divide(x - low, span, out=np.zeros_like(x), where=span > 0)


def resize(x: np.ndarray, size: Optional[Sequence[int]]) -> np.ndarray:
    """Resize ``N x H x W x C`` inputs to ``size = (H, W)`` with bilinear interpolation (OpenCV).

    ``None`` or the current size returns ``x`` unchanged.
    """
    x = np.asarray(x, dtype=np.float32)
    if size is None or tuple(size) == x.shape[1:3]:
        return x
    height, width = (int(s) for s in size)
    out = np.empty((x.shape[0], height, width, x.shape[3]), dtype=np.float32)
    for i, sample in enumerate(x):
        resized = cv2.resize(sample, (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = resized.reshape(height, width, x.shape[3])
    return out


def prepare_inputs(flow: np.ndarray, *, channels: Sequence[str] = ("u", "v", "strain"),
                   normalization: str = "none", size: Optional[Sequence[int]] = None
                   ) -> np.ndarray:
    """Cache ``flow`` -> model input: select ``channels``, resize to ``size``, then normalise.

    Normalising after resizing keeps ``"minmax"`` inputs exactly in [0, 1].

    Args:
        flow: ``CacheData.arrays["flow"]``, N x H x W x 3 (u, v, strain).
        channels: channel names, in the order the model wants them.
        normalization: ``"none"`` or ``"minmax"`` (per sample, per channel).
        size: ``(H, W)`` the model wants, or None to keep the cache's size.

    Returns:
        float32 N x H' x W' x len(channels).
    """
    return normalize(resize(select_channels(flow, channels), size), normalization)
