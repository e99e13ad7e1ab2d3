"""Time-axis tools of STRCN: temporal normalisation, frame subsampling, the std apex (Eq. 5).

STRCN (Xia et al., IEEE Trans. Multimedia 22(3) (2020) 626-640, doi:10.1109/TMM.2019.2931351):

* Sec IV-A: "the temporal normalization operations are performed to obtain fixed-size input tensor
  for RCNs. Here, we choose 30 frames". No method is named; PAPER_NOTES 5.7-2 allows TIM or linear
  interpolation along time: :func:`normalize_length` is the latter.
* Sec III-E: "some frames are randomly selected out from one sequence with a percentage. Totally,
  five levels of percentages ... 100%, 90%, 80%, 70%, and 60%": :func:`keep_fraction`.
* Eq. (5): ``t_a = argmax_t std(I~(t) - I~(0))``: :func:`std_apex`.
"""

from __future__ import annotations

import numpy as np

#: STRCN's frame-keeping percentages (Sec III-E).
KEEP_FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6)


def normalize_length(frames, length: int = 30) -> np.ndarray:
    """Resample a clip to ``length`` frames by linear interpolation along time.

    Output frame j sits at time ``j (T - 1) / (length - 1)`` of the input (first and last frames are
    kept exactly) and mixes the two nearest input frames. Works for clips shorter or longer than
    ``length``; a one-frame clip is repeated.

    Args:
        frames: T x ... array (T >= 1).
        length: output frame count (STRCN: 30).

    Returns:
        ``length`` x ... array of the input dtype (integer dtypes are rounded and clipped to their
        range).
    """
    frames = np.asarray(frames)
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    if frames.ndim < 1 or len(frames) == 0:
        raise ValueError("normalize_length needs at least one frame")
    count = len(frames)
    if count == 1:
        return np.repeat(frames, length, axis=0)
    times = np.linspace(0.0, count - 1, length)
    lower = np.clip(np.floor(times).astype(int), 0, count - 2)
    weight = (times - lower).reshape((-1,) + (1,) * (frames.ndim - 1))
    data = frames.astype(np.float64)
    out = (1.0 - weight) * data[lower] + weight * data[lower + 1]
    if np.issubdtype(frames.dtype, np.integer):
        info = np.iinfo(frames.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(frames.dtype)
    return out.astype(frames.dtype)


def keep_count(n: int, fraction: float) -> int:
    """How many of ``n`` frames :func:`keep_fraction` keeps: ``fraction * n`` rounded half up,
    at least 2 (the onset and one more, so that an apex other than the onset exists) and at most n.
    """
    if n < 1:
        raise ValueError(f"a clip needs at least one frame, got {n}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return int(min(n, max(2, np.floor(fraction * n + 0.5))))


def keep_fraction(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of the frames kept by STRCN's frame-subsampling augmentation.

    The onset (position 0) is always kept and comes first; the others are drawn from positions
    ``1..n-1`` without replacement by ``rng``. The count is :func:`keep_count`.

    Args:
        n: frames in the clip (onset..offset).
        fraction: share of frames kept (STRCN: 1.0, 0.9, 0.8, 0.7, 0.6).
        rng: a NumPy generator (seed it from the sample for deterministic entries).
    """
    count = keep_count(n, fraction)
    if count >= n:
        return np.arange(n)
    rest = rng.choice(np.arange(1, n), size=count - 1, replace=False)
    return np.concatenate([[0], np.sort(rest)]).astype(int)


def std_scores(frames) -> np.ndarray:
    """``std(I(t) - I(0))`` over all pixels (and channels) for every frame t (frame 0 scores 0)."""
    frames = np.asarray(frames)
    if frames.ndim < 2 or len(frames) == 0:
        raise ValueError(f"std_apex needs a T x H x W[ x C] clip, got shape {frames.shape}")
    onset = frames[0].astype(np.float64)
    return np.array([np.std(frame.astype(np.float64) - onset) for frame in frames])


def std_apex(frames) -> int:
    """STRCN Eq. (5): the position (0 = onset) of the frame whose difference from the onset has the
    largest standard deviation, ``argmax_t std(I~(t) - I~(0))``.

    The onset is excluded when there is any other frame (its score is 0 by definition); ties go to
    the earliest frame.
    """
    scores = std_scores(frames)
    if len(scores) == 1:
        return 0
    return 1 + int(np.argmax(scores[1:]))
