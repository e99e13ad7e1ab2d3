"""Face crop: one box found on the onset frame, applied to every frame of the clip.

FR (Sec 4.2) crops the face with a detector and no landmark alignment; PAPER_NOTES 1.1 reads it as
"detect on the onset frame and apply the same box to the other frames, so that the crop adds no
motion". The detector here is OpenCV's frontal-face Haar cascade
``haarcascade_frontalface_default.xml``, not libfacedetection as in FR. Nothing is downloaded at run
time; the file is looked up (:func:`haar_cascade_path`) in ``$MER_HAAR_CASCADE``, then in
``cv2.data.haarcascades`` (bundled by the OpenCV 4.x wheels), then where Debian's ``opencv-data``
package puts it (``/usr/share/opencv4/haarcascades``). The OpenCV 5.0 wheels ship no cascade files
(``cv2.data`` holds only ``__init__.py``), so with them ``apt-get install opencv-data`` (or the
environment variable) is needed for ``face_detector="haar"``; without a cascade the run stops with a
message saying so, before any sample is touched.

Rules (each recorded in the entry's provenance as ``face_box_source``):

* ``"haar"``: the LARGEST detected box, grown by ``margin`` (default 0.1) of its side on every side
  (the default cascade's box stops at the brows and above the chin) and clipped to the frame.
* ``"full-frame"``: the cascade found no face on the onset frame; the whole frame is used. This is
  counted and reported by the pipeline, not an error: the databases' own crops (CASME II
  ``Cropped/``, SMIC ``*_cropped``) are often too tight for the cascade.
* ``"input-crop"``: ``face_detector="none"``: the frames already are face crops; the whole frame.

The box is then cut from each frame and resized to ``face_size`` x ``face_size`` (``INTER_AREA``);
a box that is not square (a clipped box, a full frame) is stretched, not padded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple, Optional

import cv2
import numpy as np

from data_prep.errors import DataPrepError

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
FACE_DETECTORS = ("haar", "none")

#: The detector settings recorded in every entry's parameters.
HAAR_DEFAULTS = {
    "cascade": HAAR_CASCADE,
    "scale_factor": 1.1,
    "min_neighbors": 5,
    "min_size_fraction": 0.2,  # smallest face side, as a fraction of the frame's shorter side
    "margin": 0.1,
}


class FaceBox(NamedTuple):
    """A box in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


#: Folders searched for the cascade after ``$MER_HAAR_CASCADE`` and ``cv2.data.haarcascades``.
SYSTEM_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                       "/usr/local/share/opencv4/haarcascades")


class MissingCascadeError(DataPrepError):
    """No Haar cascade file could be found for ``face_detector="haar"``."""


def haar_cascade_path(name: str = HAAR_CASCADE) -> Path:
    """Where the Haar cascade ``name`` is: ``$MER_HAAR_CASCADE``, OpenCV's bundle, Debian's folder.

    Raises:
        MissingCascadeError: none of them holds it; the message lists what was tried and the fixes.
    """
    tried = []
    override = os.environ.get("MER_HAAR_CASCADE")
    if override:
        if Path(override).is_file():
            return Path(override)
        tried.append(f"$MER_HAAR_CASCADE={override}")
    bundled = getattr(getattr(cv2, "data", None), "haarcascades", "")
    for folder in ([bundled] if bundled else []) + list(SYSTEM_CASCADE_DIRS):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    raise MissingCascadeError(
        f"no Haar cascade {name} for --face-detector haar (OpenCV {cv2.__version__}; tried "
        f"{', '.join(tried)}). The OpenCV 5 wheels ship no cascade files: `apt-get install "
        "opencv-data`, or set MER_HAAR_CASCADE to the .xml file, or pass --face-detector none "
        "if the frames are already face crops")


@functools.lru_cache(maxsize=None)
def _cascade(name: str = HAAR_CASCADE):
    path = haar_cascade_path(name)
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise MissingCascadeError(f"OpenCV could not load the Haar cascade {path}")
    return classifier


def check_face_settings(face_size: int, face_detector: Optional[str] = None) -> None:
    """The checks every stage's parameter record makes: a crop of at least 16 pixels, a known
    detector (``None``: no detector to check, e.g. an import of crops).

    Raises:
        ValueError: naming the value and what is allowed.
    """
    if face_size < 16:
        raise ValueError(f"face_size must be at least 16, got {face_size}")
    if face_detector is not None and face_detector not in FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {FACE_DETECTORS}, got {face_detector!r}")


def check_detector(detector: str, cascade: str = HAAR_CASCADE) -> None:
    """Fail early, with the fix in the message, if ``detector`` cannot run on this machine."""
    if detector not in FACE_DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose from {FACE_DETECTORS}")
    if detector == "haar":
        _cascade(cascade)


def detect_face(gray: np.ndarray, *, scale_factor: float = 1.1, min_neighbors: int = 5,
                min_size_fraction: float = 0.2, margin: float = 0.1,
                cascade: str = HAAR_CASCADE) -> Optional[FaceBox]:
    """The largest frontal face in a uint8 grayscale frame, grown by ``margin``; ``None`` if none.

    Args:
        gray: H x W uint8 frame.
        scale_factor, min_neighbors: ``CascadeClassifier.detectMultiScale`` settings.
        min_size_fraction: smallest face side as a fraction of ``min(H, W)``.
        margin: fraction of the box side added on each side before clipping to the frame.
        cascade: the cascade's file name (found by :func:`haar_cascade_path`).
    """
    height, width = gray.shape[:2]
    side = max(1, int(min(height, width) * min_size_fraction))
    boxes = _cascade(cascade).detectMultiScale(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(side, side))
    if len(boxes) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in box) for box in boxes), key=lambda b: b[2] * b[3])
    grow_x, grow_y = int(round(margin * w)), int(round(margin * h))
    left, top = max(0, x - grow_x), max(0, y - grow_y)
    right, bottom = min(width, x + w + grow_x), min(height, y + h + grow_y)
    return FaceBox(left, top, right - left, bottom - top)


def full_frame(gray: np.ndarray) -> FaceBox:
    """The box covering the whole frame."""
    return FaceBox(0, 0, int(gray.shape[1]), int(gray.shape[0]))


def face_box(onset_gray: np.ndarray, detector: str = "haar", **haar) -> tuple[FaceBox, str]:
    """The clip's crop box from its onset frame, and the rule that produced it.

    Args:
        onset_gray: the onset frame, uint8 grayscale.
        detector: ``"haar"`` or ``"none"`` (frames are already crops).
        **haar: settings for :func:`detect_face` (see :data:`HAAR_DEFAULTS`).

    Returns:
        ``(box, source)`` with source ``"haar"``, ``"full-frame"`` or ``"input-crop"``.
    """
    if detector == "none":
        return full_frame(onset_gray), "input-crop"
    if detector != "haar":
        raise ValueError(f"unknown face detector {detector!r}; choose from {FACE_DETECTORS}")
    box = detect_face(onset_gray, **haar)
    if box is None:
        return full_frame(onset_gray), "full-frame"
    return box, "haar"


def crop_face(gray: np.ndarray, box: FaceBox, size: int = 128) -> np.ndarray:
    """Cut ``box`` out of ``gray`` (clipped to the frame); resize to ``size`` x ``size`` uint8."""
    x, y, w, h = box
    patch = gray[max(0, y): y + h, max(0, x): x + w]
    if patch.size == 0:
        raise ValueError(f"box {tuple(box)} lies outside a frame of shape {gray.shape}")
    interpolation = cv2.INTER_AREA if min(patch.shape) >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation).astype(np.uint8)
