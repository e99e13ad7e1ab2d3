"""Apex rules for clips whose release gives no apex (SMIC).

``interframe-diff`` is FR's Eq. (1), Sec 3.1 (L. Zhou, Q. Mao, X. Huang, F. Zhang, Z. Zhang,
"Feature refinement: an expression-specific feature learning and fusion method for micro-expression
recognition", Pattern Recognition 122 (2022) 108275, doi:10.1016/j.patcog.2021.108275), where
"mean() computes the mean absolute value of the pixel" differences:

    t_apex = argmax_t  mean_{x,y} |I(x, y, t) - I(x, y, 0)|

with frame 0 the onset, computed here on the grayscale face crops (the same box on every frame, so
the crop adds no motion). ``middle`` is the rule of MEB's SMIC sheet: the frame halfway between
onset and offset.

``dc-rois`` is the D&C-RoIs spotting that OFF-ApexNet uses for SMIC (Y. S. Gan, S.-T. Liong,
W.-C. Yau, Y.-C. Huang, L.-K. Tan, "OFF-ApexNet on micro-expression recognition system", Signal
Processing: Image Communication 74 (2019) 129-139, doi:10.1016/j.image.2019.02.005, Sec 3.1, citing
its ref. [46], Liong et al.'s D&C-RoIs). Sec 3.1 reads: "the D&C-RoIs method first computes the LBP
features from three facial sub-regions (i.e., "left eye+eyebrow", "right eye+eyebrow" and "mouth")
of each image. Then, a correlation coefficient principle is employed to acquire the changes in
difference of the LBP features between the onset frame to the rest of the frames. Finally, a Divide
& Conquer strategy is utilized on the rate of the feature difference to search for the apex frame,
whereby it indicates the frame index of the local maximum." What is implemented here:

1. :func:`lbp_uniform`: uniform LBP (Ojala et al. 2002, ``LBP^{u2}_{8,1}``): 8 neighbours on a
   circle of radius 1 (diagonal ones bilinearly interpolated), bit = neighbour >= centre, the 58
   uniform patterns (at most 2 circular 0/1 transitions) get labels 0..57 in increasing order of
   their 8-bit code and every other pattern label 58 (:data:`LBP_BINS` = 59 bins). Codes are
   computed for the pixels whose whole neighbourhood lies inside the image.
2. :func:`roi_histograms`: one normalised 59-bin histogram of those codes per RoI. The RoIs are
   fixed fractions of the face crop (:data:`DC_ROIS`), not landmark boxes as in [46]: the pipeline
   has no landmarks (deviation).
3. :func:`dc_rois_scores`: for every frame t, ``sum_r (1 - corr(h_r(onset), h_r(t)))`` with ``corr``
   the Pearson correlation coefficient of the two histograms of RoI r (onset score = 0).
4. :func:`divide_and_conquer`: the "local maximum" search. The candidates are the local maxima of
   the score curve after the onset (a frame not lower than its neighbours); while more than one
   candidate remains, the remaining frame range is cut into two halves (the first half takes
   ``len // 2`` frames) and the half whose candidates have the larger summed difference is kept
   (a tie keeps the earlier half; a half without candidates is never kept). The last candidate is
   the apex. Summing over the local maxima, not over every frame, follows our reading of [46] (its
   text is not in the shared papers; see :func:`divide_and_conquer`); it makes the search return
   the global maximum of any unimodal curve, which a sum over every frame of each half does not
   (on ``[0, 10, 9, 8, 7, 6]`` the all-frames sum keeps the right half and misses frame 1). The
   all-frames variant is available as ``divide_and_conquer(..., candidates="all")``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

APEX_RULES = ("interframe-diff", "middle", "dc-rois")

#: LBP neighbours and radius (``LBP^{u2}_{8,1}``) and the number of uniform-LBP histogram bins.
LBP_POINTS = 8
LBP_RADIUS = 1
LBP_BINS = LBP_POINTS * (LBP_POINTS - 1) + 3  # 58 uniform patterns + 1 bin for all the others

#: A neighbour counts as ``>=`` the centre when it is at most this far below it (gray levels): the
#: bilinear interpolation of a flat patch may land one rounding error below the flat value.
LBP_TOLERANCE = 1e-9

#: The D&C-RoIs regions as fractions of the face crop, ``(top, bottom, left, right)`` (rows, then
#: columns; "left" / "right" as seen in the image). Fixed fractions replace [46]'s landmark boxes
#: (we have no landmarks). They were fitted by eye to the pipeline's Haar crops (10% margin) of
#: the synthetic SMIC faces (eyes at about 0.4 of the crop height, brows at about 0.27, the mouth
#: at about 0.72), not checked on real SMIC crops.
LEFT_EYE_BROW_ROI = (0.18, 0.50, 0.08, 0.50)
RIGHT_EYE_BROW_ROI = (0.18, 0.50, 0.50, 0.92)
MOUTH_ROI = (0.66, 0.92, 0.22, 0.78)
DC_ROIS = {
    "left_eye_brow": LEFT_EYE_BROW_ROI,
    "right_eye_brow": RIGHT_EYE_BROW_ROI,
    "mouth": MOUTH_ROI,
}


def _uniform_table(points: int = LBP_POINTS) -> np.ndarray:
    """``table[code]``: the uniform-LBP label of every ``points``-bit code (others: last bin)."""
    codes = np.arange(2 ** points)
    rotated = ((codes >> 1) | ((codes & 1) << (points - 1)))
    transitions = np.array([bin(int(x)).count("1") for x in codes ^ rotated])
    uniform = transitions <= 2
    table = np.full(2 ** points, points * (points - 1) + 2, dtype=np.int64)
    table[uniform] = np.arange(int(uniform.sum()))
    return table


_UNIFORM_TABLE = _uniform_table()


def lbp_uniform(gray: np.ndarray) -> np.ndarray:
    """Uniform LBP labels (``LBP^{u2}_{8,1}``, values ``0 .. LBP_BINS - 1``) of a grayscale image.

    Neighbour p (p = 0..7) sits at angle ``2*pi*p/8`` on a circle of radius 1 around the centre
    (row offset ``-sin``, column offset ``cos``; the diagonal ones are bilinearly interpolated) and
    sets bit p when it is ``>=`` the centre (within :data:`LBP_TOLERANCE`). The 58 uniform codes map
    to labels 0..57 in increasing order of code; the rest map to 58. A flat image gives code 255
    (all bits set) everywhere, i.e. one label.

    Args:
        gray: a 2-D array (uint8 or float), at least 3 x 3.

    Returns:
        int64 labels of shape ``(H - 2, W - 2)``: one per pixel whose neighbourhood lies inside the
        image (label ``[i, j]`` belongs to pixel ``[i + 1, j + 1]``).

    Raises:
        ValueError: ``gray`` is not 2-D or is smaller than 3 x 3.
    """
    image = np.asarray(gray, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 2 * LBP_RADIUS + 1:
        raise ValueError(f"lbp_uniform needs a 2-D grayscale image of at least 3 x 3, "
                         f"got shape {image.shape}")
    height, width = image.shape
    r = LBP_RADIUS
    centre = image[r:height - r, r:width - r]
    code = np.zeros(centre.shape, dtype=np.int64)
    for p in range(LBP_POINTS):
        angle = 2.0 * np.pi * p / LBP_POINTS
        dy, dx = round(-r * np.sin(angle), 9), round(r * np.cos(angle), 9)  # exact 0 / +-1
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0
        value = np.zeros_like(centre)
        for oy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
            for ox, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
                if wy * wx:
                    value += wy * wx * image[r + oy:height - r + oy, r + ox:width - r + ox]
        code |= (value >= centre - LBP_TOLERANCE).astype(np.int64) << p
    return _UNIFORM_TABLE[code]


def _roi_slices(shape: tuple, roi: tuple) -> tuple[slice, slice]:
    top, bottom, left, right = roi
    height, width = shape
    rows = slice(int(round(top * height)), int(round(bottom * height)))
    cols = slice(int(round(left * width)), int(round(right * width)))
    return rows, cols


def roi_histograms(face: np.ndarray) -> np.ndarray:
    """Normalised uniform-LBP histograms of the three D&C-RoIs of one face crop.

    The LBP labels are computed on the whole crop (:func:`lbp_uniform`), then counted inside each
    box of :data:`DC_ROIS` (fractions of the crop; left eye + brow, right eye + brow, mouth).

    Args:
        face: a 2-D grayscale face crop (the pipeline's crops are 128 x 128).

    Returns:
        float64 array of shape ``(3, LBP_BINS)``, rows in the order of :data:`DC_ROIS`, each
        summing to 1.

    Raises:
        ValueError: ``face`` is not 2-D or too small to hold a 3 x 3 patch in every RoI.
    """
    image = np.asarray(face)
    if image.ndim != 2:
        raise ValueError(f"roi_histograms needs a 2-D grayscale face crop, got shape {image.shape}")
    labels = np.pad(lbp_uniform(image), LBP_RADIUS, constant_values=-1)  # -1: border, not counted
    hists = []
    for name, roi in DC_ROIS.items():
        rows, cols = _roi_slices(image.shape, roi)
        patch = labels[rows, cols]
        patch = patch[patch >= 0]
        if patch.size == 0:
            raise ValueError(f"face crop of shape {image.shape} is too small: RoI {name!r} "
                             f"{roi} holds no LBP code")
        hists.append(np.bincount(patch, minlength=LBP_BINS) / patch.size)
    return np.stack(hists).astype(np.float64)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two histograms; two flat ones count as 1 if equal, else 0."""
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if denominator == 0.0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.sum(a * b) / denominator)


def dc_rois_scores(faces: Sequence[np.ndarray]) -> np.ndarray:
    """D&C-RoIs feature difference of every frame from the onset (frame 0; its score is 0).

    ``score_t = sum_r (1 - corr(h_r(onset), h_r(t)))`` over the three RoIs r of :data:`DC_ROIS`,
    with ``h_r`` from :func:`roi_histograms` and ``corr`` the Pearson correlation coefficient.
    Each term lies in [0, 2], so a score lies in [0, 6].

    Args:
        faces: the clip's grayscale face crops, onset first, all of one shape.

    Raises:
        ValueError: no frame, or a face whose shape differs from the onset's.
    """
    if len(faces) == 0:
        raise ValueError("dc-rois needs at least the onset frame")
    shape = np.shape(faces[0])
    for position, face in enumerate(faces):
        if np.shape(face) != shape:
            raise ValueError(f"dc-rois: face {position} has shape {np.shape(face)}, "
                             f"the onset face has {shape}")
    onset = roi_histograms(faces[0])
    scores = [0.0]
    for face in faces[1:]:
        hists = roi_histograms(face)
        scores.append(sum(1.0 - _correlation(onset[r], hists[r]) for r in range(len(onset))))
    return np.asarray(scores, dtype=np.float64)


def _local_maxima(scores: np.ndarray, start: int) -> np.ndarray:
    """Positions ``>= start`` whose score is not lower than either neighbour (within ``start:``)."""
    tail = scores[start:]
    left = np.concatenate([[-np.inf], tail[:-1]])
    right = np.concatenate([tail[1:], [-np.inf]])
    return start + np.flatnonzero((tail >= left) & (tail >= right))


def divide_and_conquer(scores: Sequence[float], *, candidates: str = "peaks") -> int:
    """The D&C search of D&C-RoIs: the position (0-based) of the spotted apex in ``scores``.

    Position 0 (the onset, score 0 by definition) is excluded unless it is the only one. The
    candidates are the local maxima of ``scores[1:]`` (``candidates="peaks"``, a frame not lower
    than its neighbours) or every frame after the onset (``candidates="all"``). The frame range
    ``[1, n)`` is halved (the first half takes ``len // 2`` frames) and the half whose candidates'
    scores sum higher is kept, a tie keeping the earlier half and a half without candidates never
    being kept, until one candidate remains.

    OFF-ApexNet Sec 3.1: "a Divide & Conquer strategy is utilized on the rate of the feature
    difference to search for the apex frame, whereby it indicates the frame index of the local
    maximum". Summing the local maxima is our reading of Liong et al.'s D&C-RoIs (ref. [46] there;
    its text is not among the shared papers, so this step is unverified). With ``"peaks"`` a
    unimodal curve has one candidate and the result is its maximum; ``"all"`` is the literal
    "keep the half with the larger summed difference" and can miss the maximum of a skewed curve.

    Raises:
        ValueError: empty ``scores`` or an unknown ``candidates``.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("dc-rois needs at least the onset frame")
    if candidates not in ("peaks", "all"):
        raise ValueError(f"candidates must be 'peaks' or 'all', got {candidates!r}")
    if values.size == 1:
        return 0
    chosen = _local_maxima(values, 1) if candidates == "peaks" else np.arange(1, values.size)
    lo, hi = 1, values.size
    while len(chosen) > 1:
        mid = lo + (hi - lo) // 2
        first, second = chosen[chosen < mid], chosen[chosen >= mid]
        if len(second) == 0 or (len(first) and values[first].sum() >= values[second].sum()):
            chosen, hi = first, mid
        else:
            chosen, lo = second, mid
    return int(chosen[0])


def dc_rois_apex(faces: Sequence[np.ndarray]) -> int:
    """OFF-ApexNet's D&C-RoIs apex: the position (0-based, 0 = onset) of the spotted apex frame.

    :func:`dc_rois_scores` then :func:`divide_and_conquer` with local-maximum candidates. A clip of
    one frame gets 0; otherwise the onset is never chosen.

    Raises:
        ValueError: no frame, or faces of different shapes.
    """
    return divide_and_conquer(dc_rois_scores(faces))


def interframe_diff_scores(faces: Sequence[np.ndarray]) -> np.ndarray:
    """``mean|I_t - I_0|`` for every frame t of ``faces`` (frame 0 is the onset; its score is 0)."""
    if len(faces) == 0:
        raise ValueError("interframe-diff needs at least the onset frame")
    onset = np.asarray(faces[0], dtype=np.float64)
    return np.array([np.mean(np.abs(np.asarray(face, dtype=np.float64) - onset))
                     for face in faces])


def interframe_diff_apex(faces: Sequence[np.ndarray]) -> int:
    """FR Eq. (1): the position (0-based, 0 = onset) of the frame that differs most from the onset.

    The onset itself is excluded when there is any other frame (its difference is 0 by definition),
    so a clip whose frames are all identical gets the frame after the onset; ties go to the
    earliest.
    """
    scores = interframe_diff_scores(faces)
    if len(scores) == 1:
        return 0
    return 1 + int(np.argmax(scores[1:]))


def middle_apex(onset: int, offset: int) -> int:
    """The frame number halfway between ``onset`` and ``offset`` (rounded down)."""
    return (int(onset) + int(offset)) // 2


def estimate_apex(rule: str, frame_numbers: Sequence[int], faces: Sequence[np.ndarray] = ()) -> int:
    """The apex frame NUMBER of a clip by ``rule``.

    Args:
        rule: ``"interframe-diff"``, ``"middle"`` or ``"dc-rois"``.
        frame_numbers: the clip's frame numbers from onset to offset, in order.
        faces: the face crops of those frames (needed by ``interframe-diff`` and ``dc-rois``).

    Raises:
        ValueError: an unknown rule, no frame, or as many faces as frame numbers missing.
    """
    if rule == "middle":
        return middle_apex(frame_numbers[0], frame_numbers[-1])
    if rule == "interframe-diff":
        if len(faces) != len(frame_numbers):
            raise ValueError(f"{len(faces)} faces for {len(frame_numbers)} frame numbers")
        return int(frame_numbers[interframe_diff_apex(faces)])
    if rule == "dc-rois":
        if len(faces) != len(frame_numbers):
            raise ValueError(f"{len(faces)} faces for {len(frame_numbers)} frame numbers")
        return int(frame_numbers[dc_rois_apex(faces)])
    raise ValueError(f"unknown apex rule {rule!r}; choose from {APEX_RULES}")
