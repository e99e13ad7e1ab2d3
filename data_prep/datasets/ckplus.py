"""CK+ in the common ``<emotion>/<name>.png`` layout (e.g. the 48 x 48 ``CK+48`` folder).

Used as macro-expression data for pre-training (Micro-Attention, MTMNet). File names start with the
CK+ subject, ``S005_001_00000011.png`` -> ``S005``, so splits can keep subjects apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.datasets.frames import FRAME_SUFFIXES
from data_prep.errors import AnnotationError

_SUBJECT = re.compile(r"(S\d+)_", re.IGNORECASE)


def read_ckplus(root) -> list[dict]:
    """Every image of a CK+-style folder, with its emotion and subject.

    Args:
        root: a folder with one sub-folder per emotion (``anger``, ``happy``, ...).

    Returns:
        dicts ``{"path": Path, "emotion": folder name in lower case, "subject": "S005"}`` sorted by
        emotion and file name. An image whose name does not start with ``S<digits>_`` gets the
        subject ``""``.

    Raises:
        AnnotationError: ``root`` is not a folder or holds no image in emotion sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "CK+ folder not found")
    items = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for emotion_dir in folders:
        for path in sorted(emotion_dir.iterdir()):
            if path.suffix.lower() not in FRAME_SUFFIXES or not path.is_file():
                continue
            match = _SUBJECT.match(path.name)
            items.append({"path": path, "emotion": emotion_dir.name.lower(),
                          "subject": match.group(1).upper() if match else ""})
    if not items:
        raise AnnotationError(root, "no images found in <emotion>/<name>.png sub-folders")
    return items
