"""What the CASME II and SAMM readers share: one coding-file row -> one :class:`Sample`.

Both codings have a Subject, a Filename (the clip folder), onset/apex/offset frame columns, an
Estimated Emotion and an objective class; only the frame columns' names, the emotion set, the
subject folder format and where the objective class comes from differ. :func:`read_coded_rows`
takes those differences as arguments, so that every bad row gets the same message in both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Hashable, Optional, Sequence

from data_prep.datasets import xlsx
from data_prep.datasets.frames import apex_problem
from data_prep.errors import Problems, SampleError
from data_prep.samples import Sample


def subject_name(raw, pattern: str, database: str, template: str) -> str:
    """A subject cell as its folder name: the cell's lower-case text must fully match ``pattern``,
    whose first group is the subject number, formatted with ``template``
    (``subject_name("1", r"(?:sub)?0*(\\d+)", "CASME II", "sub{:02d}")`` -> ``"sub01"``).

    Raises:
        ValueError: ``not a {database} subject: {raw!r}``.
    """
    match = re.fullmatch(pattern, xlsx.cell_text(raw).lower())
    if not match:
        raise ValueError(f"not a {database} subject: {raw!r}")
    return template.format(int(match.group(1)))


def row_subject(row: dict, clip: str, database: str, subject_folder: Callable[[object], str],
                where: str, problems: Problems) -> Optional[str]:
    """The row's subject folder (``subject_folder(row["Subject"])``), or ``None`` after reporting
    ``bad subject`` for the sample ``{database}/?/{clip}``."""
    try:
        return subject_folder(row["Subject"])
    except ValueError as error:
        problems.add(SampleError(f"{database}/?/{clip}", where, f"bad subject: {error}"))
        return None


def read_coded_rows(table: xlsx.Table, problems: Problems, *, database: str,
                    emotions: Sequence[str], frame_columns: tuple[str, str, str],
                    subject_folder: Callable[[object], str],
                    objective_class: Callable[[dict, str, str], Optional[str]],
                    clip_key: Callable[[str, str], Hashable], frames_root: Optional[Path],
                    check_apex: bool) -> list[Sample]:
    """One :class:`Sample` per good row of a CASME II or SAMM coding table, in file order.

    Args:
        table: the coding, read with the Subject, Filename, frame and Estimated Emotion columns.
        problems: where bad rows go; each is skipped, or raised if ``problems.strict``.
        database: ``"casme2"`` or ``"samm"``: sample ids are ``{database}/{subject}/{clip}``.
        emotions: the known (lower-case) emotion labels.
        frame_columns: the onset, apex and offset column names.
        subject_folder: a Subject cell -> the subject folder name (raises ``ValueError``).
        objective_class: ``(row, subject, clip)`` -> the raw objective class (``""`` or ``None``
            for none).
        clip_key: ``(subject, clip)`` -> what a clip coded twice has in common.
        frames_root: the folder holding ``{subject}/{clip}/`` clip folders, or ``None``.
        check_apex: report an unusable apex (:func:`apex_problem`) as a bad row.
    """
    samples: list[Sample] = []
    seen: set = set()
    for number, row in table.rows:
        where = table.where(number)
        clip = row["Filename"]
        subject = row_subject(row, clip, database, subject_folder, where, problems)
        if subject is None:
            continue
        sample_id = f"{database}/{subject}/{clip or '?'}"
        sample = _parse_row(row, subject, clip, sample_id, where, problems, database=database,
                            emotions=emotions, frame_columns=frame_columns,
                            objective_class=objective_class, check_apex=check_apex)
        if sample is None:
            continue
        key = clip_key(subject, clip)
        if key in seen:
            problems.add(SampleError(sample_id, where, "duplicate row: this clip is coded twice"))
            continue
        seen.add(key)
        if frames_root is not None:
            clip_dir = frames_root / subject / clip
            if not clip_dir.is_dir():
                problems.add(SampleError(sample_id, clip_dir,
                                         f"clip folder missing: coded in {where} but not on disk"))
                continue
            sample = sample.replace(frames_dir=str(clip_dir))
        samples.append(sample)
    return samples


def _parse_row(row, subject, clip, sample_id, where, problems, *, database, emotions,
               frame_columns, objective_class, check_apex) -> Optional[Sample]:
    if not clip:
        problems.add(SampleError(sample_id, where, "missing Filename (the clip folder name)"))
        return None
    emotion = row["Estimated Emotion"].strip().lower()
    if emotion not in emotions:
        problems.add(SampleError(sample_id, where, f"unknown emotion label {emotion!r}: expected "
                                                   f"one of {list(emotions)}"))
        return None
    onset_column, apex_column, offset_column = frame_columns
    try:
        onset = xlsx.parse_frame(row[onset_column])
        offset = xlsx.parse_frame(row[offset_column])
        apex = xlsx.parse_frame(row[apex_column])
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
    number = None
    raw_class = objective_class(row, subject, clip)
    if raw_class not in (None, ""):
        try:
            number = int(float(raw_class))
        except ValueError:
            problems.add(SampleError(sample_id, where, f"bad objective class {raw_class!r}"))
            return None
    return Sample(database=database, subject=f"{database}/{subject}", clip=clip, onset=onset,
                  apex=apex, offset=offset, emotion=emotion, apex_source="annotation",
                  objective_class=number, source=where)
