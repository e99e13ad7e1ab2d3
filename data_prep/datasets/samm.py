"""SAMM reader: ``SAMM_Micro_FACS_Codes_v2.xlsx`` and the ``SAMM/006/006_1_2/006_05562.jpg`` frames.

The workbook has 13 preamble rows before its header (the .csv conversion in the shared annotations
has them dropped); the header row is found by its columns, so both read the same. Columns: Subject,
Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Micro, Action Units,
Estimated Emotion, Objective Classes, Notes. Frame files are ``{subject}_{frame:05d}.jpg`` with the
absolute frame number that the coding uses.

Two copies of v2 circulate (REPORT.md D): the 2022 one has two impossible apexes (028_4_1: apex
1143 > offset 1134; 032_3_1: apex 1930 < onset 4896), the 2019 one has 1113 and 4930.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional

from data_prep.datasets import xlsx
from data_prep.datasets.frames import apex_problem, find_dirs, find_files
from data_prep.errors import AnnotationError, Problems, SampleError
from data_prep.samples import Sample

logger = logging.getLogger(__name__)

DATABASE = "samm"
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other")
CODING_COLUMNS = ("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                  "Estimated Emotion")
_CODING = r"SAMM_Micro_FACS_Codes.*\.(xlsx|csv)"


def subject_folder(raw) -> str:
    """``6``, ``"6"`` or ``"006"`` -> ``"006"``."""
    text = xlsx.cell_text(raw)
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"not a SAMM subject: {raw!r}")
    return f"{int(text):03d}"


def subject_id(raw) -> str:
    """The prefixed subject id, ``samm/006``."""
    return f"{DATABASE}/{subject_folder(raw)}"


def find_coding(root) -> Path:
    """``SAMM_Micro_FACS_Codes_v2.xlsx`` (or its .csv) under ``root``."""
    found = find_files(root, [_CODING])
    if not found:
        raise AnnotationError(root, "no SAMM coding file (SAMM_Micro_FACS_Codes_v2.xlsx) found in "
                                    "this folder or 3 levels below; pass the coding file itself")
    return sorted(found, key=lambda p: ("v2" not in p.name.lower(), p.suffix.lower() != ".xlsx",
                                        len(p.parts)))[0]


def find_frames_root(root) -> Optional[Path]:
    """The folder holding the 3-digit subject folders (``006/006_1_2/...``), or ``None``."""
    candidates = find_dirs(root, r"\d{3}")
    for path in candidates:
        subjects = [p for p in path.iterdir() if p.is_dir() and re.fullmatch(r"\d{3}", p.name)]
        if any(re.fullmatch(rf"{s.name}_\d+_\d+", c.name) for s in subjects for c in s.iterdir()
               if c.is_dir()):
            return path
    return candidates[0] if candidates else None


def read(path, problems: Problems, *, check_apex: bool = True) -> list[Sample]:
    """Read SAMM samples from a database root or from the coding file.

    Args:
        path: the database root (the coding file and ``006/006_1_2/`` folders are found under it) or
            the coding .xlsx/.csv itself (then ``frames_dir`` is ``None``).
        problems: where bad rows go; each is skipped, or raised if ``problems.strict``.
        check_apex: report a missing apex, an apex outside onset..offset and onset == apex as bad
            samples (the protocol index passes ``False`` and decides per protocol).

    Returns:
        one :class:`Sample` per good row, in file order; subjects are ``samm/NNN``; emotions lower
        case (``"anger"``, ..., ``"other"``).

    Raises:
        AnnotationError: the coding file is missing, not a spreadsheet, or lacks a column.
    """
    path = Path(path)
    root = path if path.is_dir() else None
    coding = find_coding(path) if root is not None else path
    frames_root = find_frames_root(root) if root is not None else None
    if root is not None and frames_root is None:
        logger.warning("%s has no SAMM frame folders (006/006_1_2/...); the samples have no frames",
                       root)
    table = xlsx.read_table(coding, CODING_COLUMNS)
    samples: list[Sample] = []
    seen: set = set()
    for number, row in table.rows:
        where = table.where(number)
        clip = row["Filename"]
        try:
            subject = subject_folder(row["Subject"])
        except ValueError as error:
            problems.add(SampleError(f"{DATABASE}/?/{clip}", where, f"bad subject: {error}"))
            continue
        sample_id = f"{DATABASE}/{subject}/{clip or '?'}"
        sample = _parse_row(row, subject, clip, sample_id, where, problems, check_apex)
        if sample is None:
            continue
        if clip in seen:
            problems.add(SampleError(sample_id, where, "duplicate row: this clip is coded twice"))
            continue
        seen.add(clip)
        if frames_root is not None:
            clip_dir = frames_root / subject / clip
            if not clip_dir.is_dir():
                problems.add(SampleError(sample_id, clip_dir,
                                         f"clip folder missing: coded in {where} but not on disk"))
                continue
            sample = sample.replace(frames_dir=str(clip_dir))
        samples.append(sample)
    return samples


def _parse_row(row, subject, clip, sample_id, where, problems, check_apex) -> Optional[Sample]:
    if not clip:
        problems.add(SampleError(sample_id, where, "missing Filename (the clip folder name)"))
        return None
    emotion = row["Estimated Emotion"].strip().lower()
    if emotion not in EMOTIONS:
        problems.add(SampleError(sample_id, where, f"unknown emotion label {emotion!r}: expected "
                                                   f"one of {list(EMOTIONS)}"))
        return None
    try:
        onset = xlsx.parse_frame(row["Onset Frame"])
        offset = xlsx.parse_frame(row["Offset Frame"])
        apex = xlsx.parse_frame(row["Apex Frame"])
    except ValueError as error:
        problems.add(SampleError(sample_id, where, f"bad frame number: {error}"))
        return None
    if onset is None or offset is None:
        problems.add(SampleError(sample_id, where, "onset or offset frame missing"))
        return None
    if onset > offset:
        problems.add(SampleError(sample_id, where, f"onset after offset: {onset} > {offset}"))
        return None
    if check_apex:
        problem = apex_problem(onset, apex, offset)
        if problem:
            problems.add(SampleError(sample_id, where, problem))
            return None
    objective_class = None
    raw_class = row.get("Objective Classes", "")
    if raw_class:
        try:
            objective_class = int(float(raw_class))
        except ValueError:
            problems.add(SampleError(sample_id, where, f"bad objective class {raw_class!r}"))
            return None
    return Sample(database=DATABASE, subject=f"{DATABASE}/{subject}", clip=clip, onset=onset,
                  apex=apex, offset=offset, emotion=emotion, apex_source="annotation",
                  objective_class=objective_class, source=where)
