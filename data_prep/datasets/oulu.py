"""Oulu-CASIA NIR&VIS facial expression database: the VIS camera, strong (normal) illumination.

Macro-expression data for pre-training: Micro-Attention Sec 4.1 takes "the last three frames of
each video captured by VIS system under normal indoor illumination" (1,200 images: 80 subjects x 5
emotions x 3); MTMNet Sec 4.1 uses its "480 image sequences of six emotion labels" (80 x 6).

Layout, as the release's ``OriginalImg`` archive unpacks (seen in public loaders; the shared
material has no Oulu-CASIA files)::

    OriginalImg/{NI,VL}/{Dark,Strong,Weak}/P001/{Anger,Disgust,Fear,Happiness,Sadness,Surprise}/
        000.jpeg 001.jpeg ...

``VL`` is the visible-light camera (``NI`` near infrared) and ``Strong`` the normal indoor light.
Frames are numbered from ``000``. The archive often unpacks doubled (``B_OriginalImg/B_OriginalImg/
OriginalImg/VL/Strong``), so the ``VL/Strong`` folder is looked for up to 4 levels below the root
given; a root that directly holds ``P001``-style subject folders is read as it is (a copy that kept
only this set, or a preprocessed one in the same layout). Each sequence "starts from a neutral face
and ends at the apex" (the database's description), so, as for CK+, the neutral image is the first
frame and the expression images the last ``peak_frames`` frames.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from data_prep.datasets.ckplus import canonical_emotion, macro_sequence, split_sequence
from data_prep.datasets.frames import find_dirs, list_frames
from data_prep.errors import AnnotationError, Problems, SampleError

DATABASE = "oulu"
CAMERA = "VL"
ILLUMINATION = "Strong"
_SUBJECT = r"P\d{3}"


def find_set(root) -> Path:
    """The ``VL/Strong`` folder (holding ``P001/...``) under ``root``, or ``root`` itself.

    Raises:
        AnnotationError: no such folder, naming ``root`` and the layout looked for.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "Oulu-CASIA folder not found")
    if _holds_subjects(root):
        return root
    for parent in find_dirs(root, rf"(?i){ILLUMINATION}", max_depth=4):
        if parent.name.lower() != CAMERA.lower():
            continue
        for child in sorted(parent.iterdir()):
            if child.name.lower() == ILLUMINATION.lower() and _holds_subjects(child):
                return child
    raise AnnotationError(root, f"no {CAMERA}/{ILLUMINATION}/P001/<Emotion>/000.jpeg set found in "
                                "this folder or 4 levels below (Oulu-CASIA OriginalImg layout)")


def _holds_subjects(folder: Path) -> bool:
    return any(p.is_dir() and re.fullmatch(_SUBJECT, p.name) for p in folder.iterdir())


def read_sequences(root, problems: Optional[Problems] = None, *, peak_frames: int = 3) -> list:
    """Every sequence of the VIS strong-illumination set, as ``ckplus.macro_sequence`` records.

    Args:
        root: ``OriginalImg``, a folder above it, or the ``VL/Strong`` folder itself.
        problems: where bad sequences go (an unknown emotion folder, fewer than two frames); each
            is skipped, or raised if ``problems.strict``.
        peak_frames: expression images per sequence (its last frames).

    Returns:
        records sorted by subject and emotion: ``subject`` ``"P001"``, ``sequence``
        ``"P001_Anger"``, emotions canonical (``"happiness"``), the neutral image frame ``000``.

    Raises:
        AnnotationError: no ``VL/Strong`` set under ``root``.
    """
    problems = Problems() if problems is None else problems
    folder = find_set(root)
    records = []
    for subject_dir in sorted(p for p in folder.iterdir()
                              if p.is_dir() and re.fullmatch(_SUBJECT, p.name)):
        subject = subject_dir.name
        for emotion_dir in sorted(p for p in subject_dir.iterdir()
                                  if p.is_dir() and not p.name.startswith(".")):
            sequence = f"{subject}_{emotion_dir.name}"
            sample = f"{DATABASE}/{subject}/{sequence}"
            try:
                emotion = canonical_emotion(emotion_dir.name)
                if emotion is None:
                    raise SampleError(sample, emotion_dir, f"unknown emotion folder "
                                                           f"{emotion_dir.name!r}")
                frames = list_frames(emotion_dir, sample)
                neutral, expression = split_sequence(frames, peak_frames, "last-frames", sample,
                                                     emotion_dir)
                records.append(macro_sequence(DATABASE, subject, sequence, emotion, neutral,
                                              expression, frames[-1][0], "last-frames",
                                              emotion_dir))
            except SampleError as error:
                problems.add(error)
    return records
