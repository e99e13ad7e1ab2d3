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
NORMALIZATIONS = ("none", "minmax", "median_centred")


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
        method: ``"none"`` (unchanged); ``"minmax"``: each sample's each channel mapped to [0, 1]
            (a constant channel becomes 0), as the STSTNet/HTNet flow images already are; or
            ``"median_centred"``: each sample's each channel minus its median, so that the
            still part of the face, most of the image, sits at 0. A zero-preserving input for
            flows that were min-max scaled per image (the 442 MEGC2019 images put their zero
            motion anywhere from 0.04 to 0.94); on a raw TV-L1 flow it removes the median
            translation (a rigid head shift, not a rotation or scaling). Per sample: no
            statistic crosses samples, so none crosses folds.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; choose among {NORMALIZATIONS}")
    x = np.asarray(x, dtype=np.float32)
    if method == "none":
        return x
    if method == "median_centred":
        return x - np.median(x, axis=(1, 2), keepdims=True)
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


# --------------------------------------------------------------------------------------------------
# STRCN-A: the selected-pixel matrix

def appearance_mask(frames, fraction: float = 0.3) -> np.ndarray:
    """STRCN's selected-pixel mask (Sec III-C1, Eq. 4): the ``fraction`` of pixels that move most.

    ``E(x, y) = sum_i sum_t |I_i(x, y, t) - I_i(x, y, 0)|`` over every video i (and colour channel)
    of ``frames``; the mask keeps the top ``fraction`` of pixels by E ("the top p = 30% ... pixels
    are selected"). The paper computes E "on entire datasets" (no labels are involved); which
    videos to pass is the caller's choice (PAPER_NOTES 5.7-4).

    Args:
        frames: N x T x H x W x C magnified, temporally normalised frames.
        fraction: share of pixels kept, in (0, 1].

    Returns:
        An H x W boolean mask with ``round(fraction * H * W)`` pixels set (at least one).
    """
    frames = np.asarray(frames)
    if frames.ndim != 5:
        raise ValueError(f"expected frames of shape N x T x H x W x C, got {frames.shape}")
    if not 0 < fraction <= 1:
        raise ValueError(f"mask fraction must be in (0, 1], got {fraction}")
    energy = np.zeros(frames.shape[2:4], dtype=np.float64)
    for video in frames:  # one video at a time keeps the float copy small
        video = video.astype(np.float32)
        energy += np.abs(video - video[:1]).sum(axis=(0, 3))
    keep = max(1, int(round(fraction * energy.size)))
    order = np.argsort(-energy, axis=None, kind="stable")[:keep]
    mask = np.zeros(energy.size, dtype=bool)
    mask[order] = True
    return mask.reshape(energy.shape)


def appearance_inputs(frames, mask: np.ndarray) -> np.ndarray:
    """STRCN-A's input: each frame's masked pixels as one column, per colour channel.

    Sec III-C1: "the selected pixels of each frame are vectorized ... a d2 x T x 3 matrix" (Table
    I). Pixels are taken in row-major order; values are scaled from [0, 255] to [0, 1].

    Args:
        frames: ``... x T x H x W x C`` uint8 frames (any leading axes: samples, augmentations).
        mask: H x W boolean mask (:func:`appearance_mask`).

    Returns:
        float32 ``... x d2 x T x C`` with ``d2 = mask.sum()``.
    """
    frames = np.asarray(frames)
    mask = np.asarray(mask, dtype=bool)
    if frames.ndim < 4 or frames.shape[-3:-1] != mask.shape:
        raise ValueError(f"frames {frames.shape} do not end in a T x H x W x C layout matching "
                         f"the mask {mask.shape}")
    selected = frames[..., mask, :]                     # ... x T x d2 x C
    return (np.swapaxes(selected, -3, -2).astype(np.float32) / 255.0)
