"""CK+ (the extended Cohn-Kanade database): as distributed, and as the 48 x 48 ``CK+48`` crops.

Macro-expression data for pre-training (Micro-Attention Sec 3.3 and 4.1; MTMNet Sec 4.1).

* **As distributed** (:func:`read_sequences`): ``cohn-kanade-images/S005/001/S005_001_00000001.png``
  frames, one folder per subject and sequence, and labels in
  ``Emotion/S005/001/S005_001_00000011_emotion.txt``: one float code (0 neutral, 1 anger,
  2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise; :data:`CKPLUS_CODES`) whose file
  name gives the last, peak frame. Only labelled sequences are read (327 of the 593 in the release;
  the rest have an empty or no ``Emotion`` folder). Each sequence "starts from a normal facial
  expression frame and ends at the apex frame" (Micro-Attention Sec 4.1): the neutral image is the
  sequence's first frame (MTMNet's x_N, PAPER_NOTES 4.1 [choice]) and the expression images are its
  last ``peak_frames`` frames (Micro-Attention: "the last three frames from each corresponding video
  clip"; MTMNet: the peak frame(s), PAPER_NOTES 4.1 [choice]).
* **CK+48** (:func:`read_ckplus` for the plain file list, :func:`read_ckplus48` for sequences):
  ``<emotion>/S005_001_00000011.png``, the last 3 frames of the same 327 sequences as 48 x 48 gray
  crops (shared/data/WuJie1010_Facial-Expression-Recognition.Pytorch/PROVENANCE.md). It has NO
  neutral frame, so MTMNet's EIDNet cannot pair with it.

Also here, because CK+'s seven emotions are the superset of Oulu-CASIA's and MMI's six: the
canonical emotion names every macro reader returns (:data:`EMOTIONS`, :func:`canonical_emotion`)
and the sequence record they share (:func:`macro_sequence`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from data_prep.datasets.frames import (FRAME_SUFFIXES, find_dirs, frame_for, frame_number,
                                       list_frames)
from data_prep.errors import AnnotationError, Problems, SampleError

DATABASE = "ckplus"
DATABASE_48 = "ckplus48"
#: The canonical emotion names of every macro reader (lower case), plus ``neutral``.
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
#: The emotion codes of CK+'s ``*_emotion.txt`` files (CK+ README; Lucey et al. 2010).
CKPLUS_CODES = {0: "neutral", 1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happiness",
                6: "sadness", 7: "surprise"}
_ALIASES = {"angry": "anger", "happy": "happiness", "joy": "happiness", "sad": "sadness",
            "surprised": "surprise", "fearful": "fear", "afraid": "fear", "disgusted": "disgust",
            "contemptuous": "contempt"}
_SUBJECT = re.compile(r"(S\d+)_", re.IGNORECASE)
_SEQUENCE = re.compile(r"(S\d+)_(\d+)_", re.IGNORECASE)


def canonical_emotion(name: str) -> Optional[str]:
    """``"Happy"`` -> ``"happiness"``, ``"Anger"`` -> ``"anger"``; ``None`` for an unknown name."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in EMOTIONS or key == "neutral" else None


def macro_sequence(database: str, subject: str, sequence: str, emotion: str,
                   neutral: Optional[tuple], expression: list, last_frame: int, rule: str,
                   source) -> dict:
    """The record every macro reader returns, one per labelled sequence.

    Args:
        database: ``"ckplus"``, ``"ckplus48"``, ``"oulu"`` or ``"mmi"``.
        subject: the subject as the release writes it (``"S005"``, ``"P001"``), not prefixed.
        sequence: the sequence id, unique within the database (``"S005_001"``, ``"P001_Anger"``).
        emotion: a canonical name (:data:`EMOTIONS`) or ``"neutral"``.
        neutral: ``(frame number, path)`` of the neutral (first) frame, or ``None`` (CK+48).
        expression: ``(frame number, path)`` of each expression image, in frame order.
        last_frame: the sequence's last frame number.
        rule: how the expression images were chosen: ``"last-frames"``, ``"middle-frames"`` or
            ``"release"`` (the release ships only those images).
        source: the label file (or folder) the emotion comes from.
    """
    return {"database": database, "subject": subject, "sequence": sequence, "emotion": emotion,
            "neutral": None if neutral is None else Path(neutral[1]),
            "neutral_frame": None if neutral is None else int(neutral[0]),
            "expression": [(int(n), Path(p)) for n, p in expression],
            "last_frame": int(last_frame), "rule": rule, "source": str(source)}


def split_sequence(frames: list, peak_frames: int, rule: str, sample: str, folder) -> tuple:
    """``(neutral, expression)`` of a sequence's ``(number, path)`` frames: the first frame, and the
    last (``rule="last-frames"``) or middle (``"middle-frames"``) ``peak_frames`` of the others.

    Raises:
        SampleError: fewer than two frames (no neutral and expression frame to tell apart).
    """
    if peak_frames < 1:
        raise ValueError(f"peak_frames must be at least 1, got {peak_frames}")
    if len(frames) < 2:
        raise SampleError(sample, folder, f"too few frames: {len(frames)} image(s); a sequence "
                                          "needs a neutral first frame and an expression frame")
    rest = frames[1:]
    count = min(peak_frames, len(rest))
    if rule == "last-frames":
        chosen = rest[-count:]
    elif rule == "middle-frames":
        middle = (len(frames) - 1) // 2        # the position of the sequence's middle frame
        start = min(max(1, middle - (count - 1) // 2), len(frames) - count)
        chosen = frames[start:start + count]
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return frames[0], chosen


# --------------------------------------------------------------------------------------------------
# CK+ as distributed

def find_folders(root) -> tuple[Path, Path]:
    """``(cohn-kanade-images folder, Emotion folder)`` under ``root`` (the CK+ folder or a parent).

    Raises:
        AnnotationError: either is missing, naming ``root`` and what was looked for.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "CK+ folder not found")
    images = _named_dirs(root, r"(?i)cohn-kanade-images")
    if not images:
        raise AnnotationError(root, "no cohn-kanade-images/ folder (S005/001/"
                                    "S005_001_00000001.png) found in this folder or 3 levels below")
    labels = [p for p in _named_dirs(root, r"(?i)emotion")
              if any(_is_subject_dir(child) for child in p.iterdir())]
    if not labels:
        raise AnnotationError(root, "no Emotion/ label folder (Emotion/S005/001/"
                                    "S005_001_00000011_emotion.txt) found in this folder or 3 "
                                    "levels below: CK+ comes with its labels in a separate archive "
                                    "(Emotion_labels.zip); unpack it next to cohn-kanade-images/")
    return images[0], labels[0]


def _named_dirs(root: Path, pattern: str) -> list[Path]:
    """Folders named ``pattern`` in ``root`` or up to 3 levels below it, shallowest first."""
    return [parent / child.name for parent in find_dirs(root, pattern)
            for child in sorted(parent.iterdir())
            if child.is_dir() and re.fullmatch(pattern, child.name)]


def _is_subject_dir(path: Path) -> bool:
    return path.is_dir() and re.fullmatch(r"(?i)S\d+", path.name) is not None


def read_emotion_file(path) -> int:
    """The code in one ``*_emotion.txt`` (``"   3.0000000e+00"`` -> 3).

    Raises:
        ValueError: the file does not hold one whole number 0..7.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace").split()
    if len(text) != 1:
        raise ValueError(f"expected one number, found {len(text)} words")
    value = float(text[0])
    if value != int(value) or int(value) not in CKPLUS_CODES:
        raise ValueError(f"emotion code {text[0]!r} is not a whole number 0..7")
    return int(value)


def read_sequences(root, problems: Optional[Problems] = None, *, peak_frames: int = 3) -> list:
    """Every labelled sequence of CK+ as distributed, as :func:`macro_sequence` records.

    Args:
        root: the CK+ folder (holding ``cohn-kanade-images/`` and ``Emotion/``) or a parent of it.
        problems: where bad sequences go (unreadable label file, no frames, the labelled frame
            missing); each is skipped, or raised if ``problems.strict``.
        peak_frames: expression images per sequence: its last frames up to the labelled one.

    Returns:
        records sorted by subject and sequence; ``subject`` is ``"S005"``, ``sequence``
        ``"S005_001"``, the neutral image the first frame. Sequences without a label file are left
        out (they are not errors: CK+ labels only 327 of its 593 sequences).

    Raises:
        AnnotationError: no ``cohn-kanade-images/`` or no ``Emotion/`` folder under ``root``.
    """
    problems = Problems() if problems is None else problems
    images_root, labels_root = find_folders(root)
    records = []
    for subject_dir in sorted(p for p in labels_root.iterdir() if _is_subject_dir(p)):
        for sequence_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            labels = sorted(sequence_dir.glob("*_emotion.txt"))
            if not labels:
                continue
            subject = subject_dir.name.upper()
            sequence = f"{subject}_{sequence_dir.name}"
            sample = f"{DATABASE}/{subject}/{sequence}"
            try:
                records.append(_read_labelled(images_root, subject_dir.name, sequence_dir.name,
                                              labels, sample, subject, sequence, peak_frames))
            except SampleError as error:
                problems.add(error)
    return records


def _read_labelled(images_root: Path, subject_name: str, sequence_name: str, labels: list,
                   sample: str, subject: str, sequence: str, peak_frames: int) -> dict:
    if len(labels) > 1:
        raise SampleError(sample, labels[1].parent, f"{len(labels)} emotion files in one sequence "
                                                    "folder; expected one")
    label = labels[0]
    try:
        code = read_emotion_file(label)
    except (OSError, ValueError) as error:
        raise SampleError(sample, label, f"unreadable emotion file: {error}") from None
    last = frame_number(label.name.replace("_emotion", ""))
    frames_dir = images_root / subject_name / sequence_name
    frames = list_frames(frames_dir, sample)
    if not frames:
        raise SampleError(sample, frames_dir, "no frames: the sequence folder is missing or holds "
                                              "no image")
    if last is None:
        raise SampleError(sample, label, "no frame number in the emotion file's name")
    frame_for(frames, last, sample, frames_dir)           # the labelled (peak) frame must be there
    neutral, expression = split_sequence([f for f in frames if f[0] <= last], peak_frames,
                                         "last-frames", sample, frames_dir)
    return macro_sequence(DATABASE, subject, sequence, CKPLUS_CODES[code], neutral, expression,
                          last, "last-frames", label)


# --------------------------------------------------------------------------------------------------
# CK+48 (<emotion>/<name>.png)

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


def read_ckplus48(root, problems: Optional[Problems] = None, *, peak_frames: int = 3) -> list:
    """The sequences of a CK+48-style folder, as :func:`macro_sequence` records (no neutral).

    Images are grouped by the sequence in their name (``S005_001_00000011.png`` -> ``S005_001``);
    a sequence keeps its last ``peak_frames`` images (CK+48 ships 3 per sequence). Emotion folder
    names become canonical (``happy`` -> ``happiness``).

    Raises:
        AnnotationError: as :func:`read_ckplus`.
    """
    problems = Problems() if problems is None else problems
    if peak_frames < 1:
        raise ValueError(f"peak_frames must be at least 1, got {peak_frames}")
    groups: dict[tuple, list] = {}
    for item in read_ckplus(root):
        path = item["path"]
        match = _SEQUENCE.match(path.name)
        emotion = canonical_emotion(item["emotion"])
        sample = f"{DATABASE_48}/{item['subject'] or '?'}/{path.stem}"
        if emotion is None:
            problems.add(SampleError(sample, path.parent, f"unknown emotion folder "
                                                          f"{path.parent.name!r}"))
            continue
        if match is None or frame_number(path) is None:
            problems.add(SampleError(sample, path, "file name is not S<subject>_<sequence>_<frame>"
                                                   ".png, so its subject and sequence are unknown"))
            continue
        key = (match.group(1).upper(), f"{match.group(1).upper()}_{match.group(2)}", emotion)
        groups.setdefault(key, []).append((frame_number(path), path))
    records = []
    for (subject, sequence, emotion), frames in sorted(groups.items()):
        frames.sort()
        records.append(macro_sequence(DATABASE_48, subject, sequence, emotion, None,
                                      frames[-peak_frames:], frames[-1][0], "release",
                                      frames[-1][1].parent))
    return records
