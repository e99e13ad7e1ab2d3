"""Facial motion: smooth local displacement fields around landmarks, plus nuisances (micro clips
and the large-amplitude macro sequences)."""

from __future__ import annotations

import cv2
import numpy as np

from data_prep.synthetic.faces import Appearance, render_face
from data_prep.synthetic.layout import AU_CODES


def motion_bumps(motion: str, lm: dict, amp: float, rng: np.random.Generator) -> list:
    """The displacement bumps of one facial action: ``[(x, y, dx, dy, sigma), ...]`` in pixels.

    Args:
        motion: ``"lip_raise"``, ``"brow_raise_open"``, ``"brow_lower"``, ``"nose_wrinkle"``,
            ``"lip_depress"`` or ``"other"``.
        lm: the landmarks of :func:`render_face`.
        amp: peak displacement in pixels.
        rng: draws the asymmetry (a unilateral action now and then).
    """
    a = lm["a"]
    # now and then one side moves much less (unilateral / asymmetric action units)
    side_gain = {"l": 1.0, "r": 1.0}
    if rng.random() < 0.25:
        side_gain[rng.choice(["l", "r"])] = rng.uniform(0.2, 0.5)
    bumps = []

    def add(name, dx, dy, sigma, dy_off=0.0, side=None):
        x, y = lm[name]
        g = side_gain[side] if side else 1.0
        bumps.append((x, y + dy_off, dx * amp * g, dy * amp * g, sigma * a))

    for side, sgn in (("l", -1.0), ("r", 1.0)):
        if motion == "lip_raise":
            add(f"mouth_{side}", 0.5 * sgn, -1.0, 0.13, side=side)
            add(f"mouth_{side}", 0.0, -0.4, 0.16, dy_off=-0.25 * lm["b"], side=side)
        elif motion == "brow_raise_open":
            add(f"brow_{side}", 0.0, -1.0, 0.2, side=side)
        elif motion == "brow_lower":
            add(f"brow_in_{side}", -0.5 * sgn, 0.9, 0.16, side=side)
        elif motion == "nose_wrinkle":
            add(f"nose_{side}", 0.1 * sgn, -1.0, 0.11, side=side)
            add(f"brow_in_{side}", 0.0, 0.3, 0.14, side=side)
        elif motion == "lip_depress":
            add(f"mouth_{side}", 0.2 * sgn, 1.0, 0.13, side=side)
        elif motion == "other":
            add(f"mouth_{side}", -0.6 * sgn, 0.0, 0.12, side=side)
        else:
            raise ValueError(f"unknown motion {motion!r}")
    if motion == "brow_raise_open":
        add("lip_low", 0.0, 0.9, 0.13)
        add("chin", 0.0, 0.6, 0.22)
    elif motion == "nose_wrinkle":
        add("lip_up", 0.0, -0.5, 0.12)
    return bumps


def displacement(bumps: list, size: tuple) -> tuple:
    """Sum of Gaussian displacement bumps: ``(dx, dy)`` float32 fields, ``(height, width)`` each."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dx = np.zeros((height, width), np.float32)
    dy = np.zeros((height, width), np.float32)
    for x, y, vx, vy, sigma in bumps:
        g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma * sigma))
        dx += vx * g
        dy += vy * g
    return dx, dy


def _profile(n: int, peak: int, width: float = 0.0) -> np.ndarray:
    """Smooth rise from 0 at frame 0 to 1 at ``peak``, then a fall to about 0.15 at the end.

    With ``width`` > 0, a brief bump of that half-width in frames around ``peak`` instead (a blink).
    """
    t = np.arange(n, dtype=np.float64)
    if width > 0:
        return np.clip(1.0 - np.abs(t - peak) / width, 0.0, 1.0)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / max(peak, 1), 0.0, 1.0))
    fall = 0.15 + 0.85 * (
        0.5 + 0.5 * np.cos(np.pi * np.clip((t - peak) / max(n - 1 - peak, 1), 0.0, 1.0))
    )
    return np.where(t <= peak, rise, fall)


def synthesize_clip(
    app: Appearance,
    size: tuple,
    n_frames: int,
    peak: int,
    motion: str,
    rng: np.random.Generator,
    texture_rng: np.random.Generator,
) -> list:
    """Frames of one clip: the subject's face, the action peaking at frame ``peak``, and nuisances.

    Args:
        app: the subject's appearance.
        size: ``(width, height)`` of the frames.
        n_frames: number of frames (onset to offset).
        peak: index of the frame where the action peaks (the apex).
        motion: the action (see :func:`motion_bumps`).
        rng: the clip's generator (pose, amplitude, nuisances, noise).
        texture_rng: the subject's generator for the skin texture (same texture in every clip).

    Returns:
        A list of ``n_frames`` BGR uint8 images with a faint skin colour.
    """
    width, height = size
    base, lm = render_face(app, size, texture_rng, shift=tuple(rng.normal(0.0, 2.0, 2)))
    a = lm["a"]
    amp = rng.uniform(0.25, 1.1)
    bumps = motion_bumps(motion, lm, amp, rng)
    # most clips also show a (mostly weaker) action of another kind (real clips mix action units)
    if rng.random() < 0.7:
        others = [m for m in AU_CODES if m != motion]
        bumps += motion_bumps(
            others[int(rng.integers(len(others)))], lm, amp * rng.uniform(0.4, 1.1), rng
        )
    # unrelated twitches that follow the same time course, so they are in the onset->apex flow
    for _ in range(rng.poisson(2.5)):
        u, v = rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.8)
        angle, mag = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.4)
        bumps.append(
            (
                app.cx * width + u * a,
                app.cy * height + v * lm["b"],
                mag * np.cos(angle),
                mag * np.sin(angle),
                rng.uniform(0.08, 0.18) * a,
            )
        )
    dx, dy = displacement(bumps, size)
    profile = _profile(n_frames, peak)
    blink = None
    if rng.random() < 0.3:  # a blink somewhere in the clip
        lids = [
            (lm[f"eye_{s}"][0], lm[f"eye_{s}"][1] - 0.1 * a, 0.0, rng.uniform(1.0, 2.0), 0.1 * a)
            for s in ("l", "r")
        ]
        blink = (displacement(lids, size), _profile(n_frames, int(rng.integers(0, n_frames)), 2.5))
    # global head drift (a random walk), illumination drift and flicker, sensor noise
    drift = np.cumsum(rng.normal(0.0, 0.2, (n_frames, 2)), axis=0)
    drift -= drift[0]
    turn = np.cumsum(rng.normal(0.0, 0.003, (n_frames, 2)), axis=0)  # (rotation, scale) per frame
    turn -= turn[0]
    cx, cy = lm["nose_tip"]
    gain = (
        1.0 + np.linspace(0.0, rng.normal(0.0, 0.015), n_frames) + rng.normal(0.0, 0.004, n_frames)
    )
    gain[0] = 1.0
    noise_sigma = rng.uniform(2.0, 4.0) / 255.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tint = np.asarray(app.tint, np.float32)
    frames = []
    for t in range(n_frames):
        rot, scale = turn[t]
        mx = xx - profile[t] * dx - drift[t, 0] - (-rot * (yy - cy) + scale * (xx - cx))
        my = yy - profile[t] * dy - drift[t, 1] - (rot * (xx - cx) + scale * (yy - cy))
        if blink is not None:
            (bx, by), bp = blink
            mx, my = mx - bp[t] * bx, my - bp[t] * by
        frame = cv2.remap(
            base,
            mx.astype(np.float32),
            my.astype(np.float32),
            cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REFLECT,
        )
        frame = frame * gain[t] + rng.normal(0.0, noise_sigma, frame.shape).astype(np.float32)
        bgr = np.clip(frame[..., None] * tint * 255.0 + 0.5, 0, 255).astype(np.uint8)
        frames.append(bgr)
    return frames


def synthesize_macro_sequence(
    app: Appearance,
    size: tuple,
    n_frames: int,
    actions: tuple,
    rng: np.random.Generator,
    texture_rng: np.random.Generator,
) -> list:
    """Frames of one posed macro-expression: neutral at frame 0, the actions peaking at the last.

    The same facial actions as the micro clips (:func:`motion_bumps`), at 5-10 times their
    amplitude (:data:`~data_prep.synthetic.layout.MACRO_AMPLITUDE`), rising over the whole sequence
    as a CK+ sequence runs from a neutral face to the apex. Nuisances are milder than the micro
    clips': a head drift half as fast, a few small twitches, sensor noise; no second action of
    another kind, no blink and no flicker, so that the label is what the face shows.

    Args:
        app: the subject's appearance.
        size: ``(width, height)``.
        n_frames: frames from the neutral one to the peak.
        actions: ``(motion, gain, one_side)`` triples
            (:data:`~data_prep.synthetic.layout.MACRO_MOTIONS`); ``one_side`` keeps the bumps of
            one half of the face (a unilateral action, as contempt).
        rng: the sequence's generator; ``texture_rng``: the subject's skin texture.

    Returns:
        ``n_frames`` grayscale uint8 images (CK+ is mostly gray).
    """
    from data_prep.synthetic.layout import MACRO_AMPLITUDE

    width, height = size
    base, lm = render_face(app, size, texture_rng, shift=tuple(rng.normal(0.0, 2.0, 2)))
    a = lm["a"]
    amp = rng.uniform(*MACRO_AMPLITUDE)
    midline = lm["nose_tip"][0]
    bumps = []
    for motion, gain, one_side in actions:
        action = motion_bumps(motion, lm, amp * gain, rng)
        if one_side:
            left = rng.random() < 0.5
            action = [b for b in action if (b[0] < midline) == left]
        bumps += action
    for _ in range(rng.poisson(1.5)):
        u, v = rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.8)
        angle, mag = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0)
        bumps.append((app.cx * width + u * a, app.cy * height + v * lm["b"],
                      mag * np.cos(angle), mag * np.sin(angle), rng.uniform(0.08, 0.18) * a))
    dx, dy = displacement(bumps, size)
    profile = _profile(n_frames, n_frames - 1)
    drift = np.cumsum(rng.normal(0.0, 0.1, (n_frames, 2)), axis=0)
    drift -= drift[0]
    noise_sigma = rng.uniform(1.5, 3.0) / 255.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(n_frames):
        mx = (xx - profile[t] * dx - drift[t, 0]).astype(np.float32)
        my = (yy - profile[t] * dy - drift[t, 1]).astype(np.float32)
        frame = cv2.remap(base, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frame = frame + rng.normal(0.0, noise_sigma, frame.shape).astype(np.float32)
        frames.append(np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return frames
