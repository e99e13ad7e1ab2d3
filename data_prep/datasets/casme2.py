"""CASME II reader: the coding spreadsheet, and the raw or cropped frame folders.

On-disk layouts accepted (PEERS.md section 3)::

    ROOT/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg           raw frames
    ROOT/CASME2_RAW_selected/CASME2_RAW_selected/sub01/...       the zip's doubled top folder
    ROOT/Cropped/sub01/EP02_01f/reg_img46.jpg                    the provided face crops
    ROOT/CASME2-coding-20140508.xlsx                             the coding (anywhere 3 levels down)

Coding columns: Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated
Emotion, and in the 2019-07-01 version Objective Classes. The objective classes of the 2014 coding
come from ``CASME2-ObjectiveClasses.xlsx`` when it lies next to the coding file or in the root.

Which coding: ``CASME2-coding-20140508`` by default, the version every published count checked
matches (REPORT.md B); ``CASME2-coding-20190701`` is accepted too and relabels three sub24 clips
sadness -> surprise (EP07_01, EP07_04f, EP10_03), so it gives 3 more surprise clips.
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

DATABASE = "casme2"
EMOTIONS = ("happiness", "disgust", "repression", "surprise", "fear", "sadness", "others")
CODING_COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                  "Estimated Emotion")
PREFERRED_VERSION = "20140508"
_CODING = r"CASME2-coding-(\d{8})\.(xlsx|csv)"
_OBJECTIVE = r"CASME2-ObjectiveClasses(__Sheet1)?\.(xlsx|csv)"
_LAYOUTS = {"raw": ("CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW"), "cropped": ("Cropped",)}


def subject_folder(raw) -> str:
    """``"01"``, ``1``, ``"sub1"`` or ``"sub01"`` -> ``"sub01"``."""
    return subject_name(raw, r"(?:sub)?0*(\d+)", "CASME II", "sub{:02d}")


def subject_id(raw) -> str:
    """The prefixed subject id, ``casme2/sub01``."""
    return f"{DATABASE}/{subject_folder(raw)}"


def find_coding(root) -> Path:
    """The coding file under ``root``: 20140508 if present (and a warning if 20190701 is there too),
    otherwise the only version found; an .xlsx is preferred over its .csv conversion."""
    found = find_files(root, [_CODING])
    if not found:
        raise AnnotationError(root, "no CASME II coding file (CASME2-coding-20140508.xlsx or "
                                    "CASME2-coding-20190701.xlsx) found in this folder or 3 "
                                    "levels below; pass the coding file itself")
    versions: dict[str, list[Path]] = {}
    for path in found:
        version = re.fullmatch(_CODING, path.name, re.IGNORECASE).group(1)
        versions.setdefault(version, []).append(path)
    version = PREFERRED_VERSION if PREFERRED_VERSION in versions else sorted(versions)[0]
    if len(versions) > 1:
        logger.warning("%s holds CASME II codings %s; using %s (the version published counts "
                       "match; 20190701 relabels 3 sub24 clips sadness->surprise)",
                       root, sorted(versions), version)
    return sorted(versions[version], key=lambda p: (p.suffix.lower() != ".xlsx", len(p.parts)))[0]


def find_frames_root(root, layout: Optional[str] = None) -> Optional[Path]:
    """The folder holding ``sub01/...`` clip folders: raw frames by default, ``layout="cropped"``
    for the provided crops; ``None`` if the root has no frame folders at all."""
    if layout not in (None, "raw", "cropped"):
        raise ValueError(f"layout must be 'raw' or 'cropped', not {layout!r}")
    candidates = find_dirs(root, r"sub\d+")
    if not candidates:
        return None

    def kind(path: Path) -> Optional[str]:
        parts = {part.lower() for part in path.relative_to(root).parts} | {path.name.lower()}
        for name, folders in _LAYOUTS.items():
            if any(folder.lower() in parts for folder in folders):
                return name
        return None

    wanted = layout or "raw"
    for path in candidates:
        if kind(path) == wanted:
            return path
    if layout is None:
        return candidates[0]
    raise AnnotationError(root, f"no {layout} CASME II frame folders "
                                f"({_LAYOUTS[layout][0]}/sub01/...) found; frame folders found: "
                                f"{[str(c) for c in candidates]}")


def _objective_classes(coding: Path, root: Optional[Path]) -> dict:
    """(subject folder, clip) -> objective class, from CASME2-ObjectiveClasses beside the coding."""
    places = [coding.parent] + ([root] if root is not None else [])
    for place in places:
        found = find_files(place, [_OBJECTIVE], max_depth=0 if place == coding.parent else 3)
        if found:
            path = sorted(found, key=lambda p: p.suffix.lower() != ".xlsx")[0]
            table = xlsx.read_table(path, ("Subject", "Filename", "Objective Class"))
            classes = {}
            for _, row in table.rows:
                try:
                    classes[(subject_folder(row["Subject"]), row["Filename"])] = int(
                        row["Objective Class"])
                except ValueError:
                    continue
            return classes
    return {}


def read(path, problems: Problems, *, layout: Optional[str] = None,
         check_apex: bool = True) -> list[Sample]:
    """Read CASME II samples from a database root or from a coding file.

    Args:
        path: the database root (the coding file and the frame folders are found under it) or the
            coding .xlsx/.csv itself (then every sample's ``frames_dir`` is ``None``).
        problems: where bad rows go; each is skipped, or raised if ``problems.strict``.
        layout: ``"raw"`` (default) or ``"cropped"`` frames, when reading from a root.
        check_apex: report a missing apex, an apex outside onset..offset and onset == apex as bad
            samples. The protocol index passes ``False`` and decides per protocol (see
            ``data_prep.index``).

    Returns:
        one :class:`Sample` per good row, in file order; subjects are ``casme2/subNN``.

    Raises:
        AnnotationError: the coding file is missing, not a spreadsheet, or lacks a column.
    """
    path = Path(path)
    root = path if path.is_dir() else None
    coding = find_coding(path) if root is not None else path
    frames_root = find_frames_root(root, layout) if root is not None else None
    if root is not None and frames_root is None:
        logger.warning("%s has no CASME II frame folders (CASME2_RAW_selected/sub01/...); "
                       "the samples have no frames", root)
    table = xlsx.read_table(coding, CODING_COLUMNS)
    own_objective = "Objective Classes" in table.columns or "Objective Class" in table.columns
    objective = {} if own_objective else _objective_classes(coding, root)

    def objective_class(row, subject, clip):
        if own_objective:
            return row.get("Objective Classes", row.get("Objective Class", ""))
        return objective.get((subject, clip))

    return read_coded_rows(
        table, problems, database=DATABASE, emotions=EMOTIONS,
        frame_columns=("OnsetFrame", "ApexFrame", "OffsetFrame"), subject_folder=subject_folder,
        objective_class=objective_class, clip_key=lambda subject, clip: (subject, clip),
        frames_root=frames_root, check_apex=check_apex)
