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
from data_prep.datasets.coding import read_coded_rows, subject_name
from data_prep.datasets.frames import find_dirs, find_files
from data_prep.errors import AnnotationError, Problems
from data_prep.samples import Sample

logger = logging.getLogger(__name__)

DATABASE = "samm"
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other")
CODING_COLUMNS = ("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                  "Estimated Emotion")
_CODING = r"SAMM_Micro_FACS_Codes.*\.(xlsx|csv)"


def subject_folder(raw) -> str:
    """``6``, ``"6"`` or ``"006"`` -> ``"006"``."""
    return subject_name(raw, r"(\d+)", "SAMM", "{:03d}")


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
    return read_coded_rows(
        table, problems, database=DATABASE, emotions=EMOTIONS,
        frame_columns=("Onset Frame", "Apex Frame", "Offset Frame"), subject_folder=subject_folder,
        objective_class=lambda row, subject, clip: row.get("Objective Classes", ""),
        clip_key=lambda subject, clip: clip, frames_root=frames_root, check_apex=check_apex)
