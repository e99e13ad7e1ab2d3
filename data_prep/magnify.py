"""Eulerian video magnification (EVM): Laplacian pyramid and one IIR temporal band-pass.

STRCN (Z. Xia, X. Hong, X. Gao, X. Feng, G. Zhao, "Spatiotemporal recurrent convolutional networks
for recognizing spontaneous micro-expressions", IEEE Trans. Multimedia 22(3) (2020) 626-640,
doi:10.1109/TMM.2019.2931351), Sec III-B2: "we choose the Eulerian Video Magnification (EVM) method
[58] to amplify the temporal motion ... an infinite impulse response (IIR) filter is chosen as our
temporal filter. In other words, we only use one temporal filter (k = 1) ... all bands of Laplacian
pyramid are used to reconstruct the motion-magnified facial sequences." Sec IV-A: "the cut-off
frequencies (filter interval) of IIR filter are chosen as [0.05, 0.4]Hz. And the magnification
factor in testing procedure is fixed to alpha = 8 ... alpha_c = lambda / (8 delta(t)) - 1 ...
lambda = 16 ... alpha = min(8, alpha_c)."

This follows the EVM reference code ``amplify_spatial_lpyr_temporal_iir`` (Wu et al. 2012), whose
face example uses exactly these settings (alpha 10, lambda_c 16, r1 0.4, r2 0.05):

* every frame's Laplacian pyramid (binomial 5-tap filter: OpenCV ``pyrDown`` / ``pyrUp``; as many
  levels as MATLAB's ``maxPyrHt`` gives, i.e. halve while both sides are >= 5);
* two first-order IIR low-passes per coefficient, ``lp1 = (1 - r1) lp1 + r1 x`` with r1 = ``high``
  and ``lp2 = (1 - r2) lp2 + r2 x`` with r2 = ``low``, both started at frame 0; the band is
  ``lp1 - lp2``. The paper's "Hz" are read as these normalised coefficients (PAPER_NOTES 5.7-9);
* per level, with ``delta = lambda_c / 8 / (1 + alpha)`` and the level's representative wavelength
  ``lambda`` (``sqrt(h^2 + w^2) / 3`` at the coarsest level, halved per finer level), the gain is
  ``alpha`` when ``exaggeration * (lambda / (8 delta) - 1) > alpha``, else that bound (EVM's
  ``exaggeration_factor = 2``); the finest and the coarsest level are not amplified;
* output = input + reconstruction of the amplified band, clipped to [0, 255], uint8.

Colour: EVM works in YIQ and scales the I and Q bands by ``chromAttenuation``. The transform is
linear, so with ``chrom_attenuation=1`` (the default here; STRCN gives no value) this equals
magnifying each RGB channel alone; another value converts to YIQ and back.

The band-passed levels do not depend on alpha, so :func:`bandpassed_levels` computes them once and
:func:`recombine` builds the output for each alpha (STRCN's training factors 5..14) cheaply.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np

#: EVM's ``exaggeration_factor``: boosts the bound for better visualisation (kept as in EVM).
EXAGGERATION = 2.0

_RGB2YIQ = np.array([[0.299, 0.587, 0.114],
                     [0.596, -0.274, -0.322],
                     [0.211, -0.523, 0.312]], dtype=np.float32)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ).astype(np.float32)


@dataclasses.dataclass
class Bandpassed:
    """A clip's frames and their temporally band-passed Laplacian levels.

    Attributes:
        frames: T x H x W x C float32 input frames (C = 1 for gray input).
        levels: band-passed pyramid levels, finest first, each T x h_l x w_l x C float32; the last
            one is the low-pass residual.
        gray: whether the input had no channel axis (the output drops it again).
        yiq: whether ``frames`` and ``levels`` are in YIQ (colour with ``chrom_attenuation`` != 1).
    """

    frames: np.ndarray
    levels: list
    gray: bool
    yiq: bool = False


def pyramid_height(height: int, width: int, filter_size: int = 5) -> int:
    """MATLAB ``maxPyrHt``: how many levels a ``height`` x ``width`` image's pyramid gets."""
    levels = 0
    while height >= filter_size and width >= filter_size:
        levels += 1
        height, width = height // 2, width // 2
    return max(1, levels)


def laplacian_pyramid(image: np.ndarray, levels: int) -> list:
    """Laplacian pyramid of a float32 image, finest band first, low-pass residual last."""
    pyramid, current = [], image
    for _ in range(levels - 1):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up.reshape(current.shape))
        current = down.reshape(down.shape[:2] + current.shape[2:])
    pyramid.append(current)
    return pyramid


def reconstruct(pyramid: list) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        up = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0]))
        image = band + up.reshape(band.shape)
    return image


def _as_clip(frames) -> tuple[np.ndarray, bool]:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        return frames[..., None].astype(np.float32), True
    if frames.ndim == 4 and frames.shape[-1] in (1, 3):
        return frames.astype(np.float32), False
    raise ValueError(f"frames must be T x H x W (gray) or T x H x W x 1|3, got {frames.shape}")


def bandpassed_levels(frames, low: float = 0.05, high: float = 0.4, levels: Optional[int] = None,
                      chrom_attenuation: float = 1.0) -> Bandpassed:
    """Band-pass every Laplacian level of a clip in time (EVM's IIR filter), once for all alphas.

    Args:
        frames: T x H x W (gray) or T x H x W x C (C 1 or 3, RGB) frames, any real dtype (0..255).
        low: r2, the low cut-off as a normalised IIR coefficient (STRCN: 0.05).
        high: r1, the high cut-off (STRCN: 0.4).
        levels: pyramid levels; ``None``: :func:`pyramid_height` of the frame size.
        chrom_attenuation: only recorded here; != 1 makes colour frames go through YIQ so that
            :func:`recombine` can attenuate the chroma bands.

    Returns:
        a :class:`Bandpassed` for :func:`recombine`.
    """
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"need 0 < low < high <= 1, got low={low}, high={high}")
    clip, gray = _as_clip(frames)
    if len(clip) == 0:
        raise ValueError("a clip needs at least one frame")
    yiq = clip.shape[-1] == 3 and chrom_attenuation != 1.0
    if yiq:
        clip = clip @ _RGB2YIQ.T
    height, width = clip.shape[1:3]
    n_levels = pyramid_height(height, width) if levels is None else int(levels)
    if n_levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    pyramids = [laplacian_pyramid(np.ascontiguousarray(frame), n_levels) for frame in clip]
    bands = []
    for level in range(n_levels):
        stack = np.stack([pyramid[level] for pyramid in pyramids]).astype(np.float32)
        stack = stack.reshape(stack.shape[:3] + (clip.shape[-1],))
        lowpass1, lowpass2 = stack[0].copy(), stack[0].copy()
        band = np.zeros_like(stack)
        for t in range(1, len(stack)):
            lowpass1 = (1.0 - high) * lowpass1 + high * stack[t]
            lowpass2 = (1.0 - low) * lowpass2 + low * stack[t]
            band[t] = lowpass1 - lowpass2
        bands.append(band)
    return Bandpassed(frames=clip, levels=bands, gray=gray, yiq=yiq)


def level_gains(height: int, width: int, n_levels: int, alpha: float, *, lambda_c: float = 16,
                exaggeration: float = EXAGGERATION) -> list:
    """EVM's per-level amplification, finest level first (first and last are 0).

    ``delta = lambda_c / 8 / (1 + alpha)``; the coarsest level's wavelength is
    ``sqrt(h^2 + w^2) / 3``, halved per finer level; gain = ``alpha`` if
    ``exaggeration * (lambda / (8 delta) - 1) > alpha`` else that value. STRCN Sec IV-A:
    "the bound for factor alpha in any frame is adopted as alpha_c = lambda / (8 delta(t)) - 1".
    """
    if alpha == 0:
        return [0.0] * n_levels
    delta = lambda_c / 8.0 / (1.0 + alpha)
    wavelength = float(np.hypot(height, width)) / 3.0
    gains = [0.0] * n_levels
    for level in range(n_levels - 1, -1, -1):          # coarsest to finest, as EVM loops
        bound = (wavelength / delta / 8.0 - 1.0) * exaggeration
        if level not in (0, n_levels - 1):
            gains[level] = float(alpha) if bound > alpha else float(bound)
        wavelength /= 2.0
    return gains


def recombine(bandpassed: Bandpassed, alpha: float, *, lambda_c: float = 16,
              chrom_attenuation: float = 1.0, exaggeration: float = EXAGGERATION) -> np.ndarray:
    """The magnified clip for one ``alpha`` from precomputed :func:`bandpassed_levels`.

    Returns:
        uint8 frames clipped to [0, 255], shaped as the input of :func:`bandpassed_levels`.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    clip = bandpassed.frames
    height, width = clip.shape[1:3]
    gains = level_gains(height, width, len(bandpassed.levels), alpha, lambda_c=lambda_c,
                        exaggeration=exaggeration)
    out = np.empty(clip.shape, np.float32)
    for t in range(len(clip)):
        bands = [gain * level[t] for gain, level in zip(gains, bandpassed.levels)]
        detail = reconstruct(bands).reshape(clip.shape[1:])
        if bandpassed.yiq:
            detail[..., 1:] *= chrom_attenuation
        out[t] = clip[t] + detail
    if bandpassed.yiq:
        out = out @ _YIQ2RGB.T
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if bandpassed.gray else out


def magnify(frames, alpha: float, *, lambda_c: float = 16, low: float = 0.05, high: float = 0.4,
            chrom_attenuation: float = 1.0) -> np.ndarray:
    """EVM-magnify a clip (STRCN Eq. 3): ``I~(x, y, t) = f(x, y) + (1 + alpha) delta(t) grad f``.

    Args:
        frames: T x H x W or T x H x W x C (RGB) frames, 0..255.
        alpha: target magnification (STRCN: 8 at test, 5..14 for training augmentation).
        lambda_c: cut-off wavelength of the bound (STRCN: 16).
        low, high: the IIR band (STRCN: [0.05, 0.4], normalised).
        chrom_attenuation: EVM's chroma scaling of colour frames (1: every channel alike).

    Returns:
        uint8 frames of the input's shape. ``alpha=0`` returns the input (rounded to uint8).
    """
    bandpassed = bandpassed_levels(frames, low=low, high=high,
                                   chrom_attenuation=chrom_attenuation)
    return recombine(bandpassed, alpha, lambda_c=lambda_c, chrom_attenuation=chrom_attenuation)
