"""Face images as model inputs, and the transfer papers' sampling and augmentations, in NumPy/OpenCV.

The face-image caches (``python -m data_prep frames`` / ``import-apex-images`` / ``macro``) store
uint8 RGB crops; models read float32 in [0, 1] at ``size``. Augmentations are drawn from a NumPy
generator of the fold's seed, so a fold's training is reproducible.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np


def face_inputs(images, size: Optional[Sequence[int]] = None) -> np.ndarray:
    """uint8 ``... x S x S x 3`` crops -> float32 ``... x H x W x 3`` in [0, 1] (INTER_AREA)."""
    images = np.asarray(images)
    if images.ndim < 4 or images.shape[-1] != 3:
        raise ValueError(f"expected face images of shape ... x H x W x 3, got {images.shape}")
    lead, (height, width) = images.shape[:-3], images.shape[-3:-1]
    flat = images.reshape((-1,) + images.shape[-3:])
    if size is not None and tuple(size) != (height, width):
        height, width = (int(s) for s in size)
        flat = np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                         for image in flat]) if len(flat) else \
            np.zeros((0, height, width, 3), images.dtype)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return (flat.astype(np.float32) / scale).reshape(lead + (height, width, 3))


def oversample(rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Repeat each minority class's rows until every class has as many as the largest.

    Micro-Attention Sec 4.2 "oversample every class to the largest class" (PAPER_NOTES 2.7-8):
    each class keeps all its rows, then whole repeats, then a random remainder without
    replacement. Returns the rows, shuffled.
    """
    rows, labels = np.asarray(rows), np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max() if len(counts) else 0
    picked = []
    for value, count in zip(classes, counts):
        members = rows[labels == value]
        repeats, remainder = divmod(target, count)
        picked += [np.tile(members, repeats), rng.choice(members, remainder, replace=False)]
    out = np.concatenate(picked) if picked else rows[:0]
    return out[rng.permutation(len(out))]


def augment(images: np.ndarray, rng: np.random.Generator, *, color_shift: float = 0,
            rotation: float = 0, smoothing: int = 0, probability: float = 0.5) -> np.ndarray:
    """Micro-Attention's augmentations, each applied to an image with ``probability`` (Sec 3.3, 4.2).

    Args:
        images: float32 ``N x H x W x 3`` in [0, 1].
        rng: the fold's generator.
        color_shift: "colour shift" up to this many grey levels (of 255), per channel.
        rotation: rotation by up to this many degrees about the centre (reflected border).
        smoothing: box smoothing with a window of 1..``smoothing`` pixels ("smoothing with window
            up to 6").
        probability: of each augmentation, independently (the paper's 0.5).

    Returns:
        A new float32 array, clipped to [0, 1].
    """
    out = np.array(images, dtype=np.float32, copy=True)
    height, width = out.shape[1:3]
    for image in out:
        if color_shift and rng.random() < probability:
            image += rng.uniform(-color_shift, color_shift, size=3).astype(np.float32) / 255.0
        if rotation and rng.random() < probability:
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2),
                                             float(rng.uniform(-rotation, rotation)), 1.0)
            image[:] = cv2.warpAffine(image, matrix, (width, height),
                                      borderMode=cv2.BORDER_REFLECT)
        if smoothing and rng.random() < probability:
            window = int(rng.integers(1, int(smoothing) + 1))
            if window > 1:
                image[:] = cv2.blur(image, (window, window))
    return np.clip(out, 0.0, 1.0)


def corner_crops(images: np.ndarray, *, enlarged: int = 240, crop: int = 224) -> np.ndarray:
    """The four corner crops of Micro-Attention's CDE augmentation (Sec 4.2, PAPER_NOTES 2.7-7).

    Each ``H x W`` image is resized to ``enlarged / crop`` times its size (224 -> 240), its four
    corner crops of the original size are taken: "four corner crops of 224 from a 240 x 240
    image". At a reduced input size the ratio is kept.

    Returns:
        float32 ``N x 4 x H x W x 3`` (top-left, top-right, bottom-left, bottom-right).
    """
    images = np.asarray(images, dtype=np.float32)
    count, height, width = images.shape[:3]
    big_h, big_w = round(height * enlarged / crop), round(width * enlarged / crop)
    out = np.empty((count, 4, height, width, images.shape[3]), np.float32)
    for i, image in enumerate(images):
        big = cv2.resize(image, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        big = big.reshape(big_h, big_w, -1)
        for j, (top, left) in enumerate(((0, 0), (0, big_w - width), (big_h - height, 0),
                                         (big_h - height, big_w - width))):
            out[i, j] = big[top:top + height, left:left + width]
    return out


def same_subject_partners(subjects: Sequence[str], rng: np.random.Generator,
                          groups: Optional[Sequence[str]] = None) -> np.ndarray:
    """For each image, another image of the same subject (MTMNet's neutral-frame substitute).

    Used where a data set has no neutral frame (the public MEGC2019 apex crops, CK+48): each
    image is paired with a random other image of its subject, from another ``group`` (clip or
    sequence) where the subject has one, else any other image, else itself. A deviation from
    MTMNet's (neutral, expression) pairs of one video, recorded in the run's config.
    """
    subjects = np.asarray(subjects)
    groups = np.asarray(groups) if groups is not None else np.arange(len(subjects)).astype(str)
    partners = np.arange(len(subjects))
    by_subject: dict = {}
    for i, subject in enumerate(subjects.tolist()):
        by_subject.setdefault(subject, []).append(i)
    for members in by_subject.values():
        members = np.asarray(members)
        for i in members:
            others = members[groups[members] != groups[i]]
            if not len(others):
                others = members[members != i]
            if len(others):
                partners[i] = rng.choice(others)
    return partners
