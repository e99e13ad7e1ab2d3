"""Apex rules for clips whose release gives no apex (SMIC).

``interframe-diff`` is FR's Eq. (1), Sec 3.1 (L. Zhou, Q. Mao, X. Huang, F. Zhang, Z. Zhang,
"Feature refinement: an expression-specific feature learning and fusion method for micro-expression
recognition", Pattern Recognition 122 (2022) 108275, doi:10.1016/j.patcog.2021.108275), where
"mean() computes the mean absolute value of the pixel" differences:

    t_apex = argmax_t  mean_{x,y} |I(x, y, t) - I(x, y, 0)|

with frame 0 the onset, computed here on the grayscale face crops (the same box on every frame, so
the crop adds no motion). ``middle`` is the rule of MEB's SMIC sheet: the frame halfway between
onset and offset. OFF-ApexNet's D&C-RoIs spotting is not implemented (PAPER_NOTES 3.6 item 10 allows
falling back to interframe-Diff).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

APEX_RULES = ("interframe-diff", "middle")


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
        rule: ``"interframe-diff"`` or ``"middle"``.
        frame_numbers: the clip's frame numbers from onset to offset, in order.
        faces: the face crops of those frames (needed by ``interframe-diff`` only).
    """
    if rule == "middle":
        return middle_apex(frame_numbers[0], frame_numbers[-1])
    if rule == "interframe-diff":
        if len(faces) != len(frame_numbers):
            raise ValueError(f"{len(faces)} faces for {len(frame_numbers)} frame numbers")
        return int(frame_numbers[interframe_diff_apex(faces)])
    raise ValueError(f"unknown apex rule {rule!r}; choose from {APEX_RULES}")
