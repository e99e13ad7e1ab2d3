"""SMIC reader (HS, VIS, NIR): labels from the folder layout, or from an annotation list.

The SMIC release has no coding file; the label is the folder (PEERS.md section 3)::

    ROOT/HS/s1/micro/negative/s1_ne_01/image000123.bmp        raw frames
    ROOT/HS/s1/micro/negative/s1_ne_01/reg_image000123.bmp    the provided crops
    ROOT/HS/s1/non_micro/...                                  skipped
    ROOT/VIS/s1/micro/...   ROOT/NIR/s1/micro/...

Onset and offset are the first and last frame of the clip folder; SMIC has no apex, so ``apex`` is
``None`` with ``apex_source="none"`` (the pipeline estimates it from the frames).

Names are normalised as REPORT.md F says: subjects ``s01`` (2 digits) and clips ``s01_ne_01``,
as in the MEGC2019 lists, though the release writes ``s1`` and ``s1_ne_01``.

Without frames, two annotation sources are accepted as ``path``:

* the MEGC2019 composite list (``combined_3_class_gt.csv``, ``combined_3class_gt.csv`` without
  header, HTNet's ``combined_3_class2_for_optical_flow.csv``): its SMIC rows are the 164 HS clips
  (70/51/43, 16 subjects);
* the SMIC-E annotation (``SMIC-HS-E_annotation_orig.xlsx`` with sheets HS and VIS, or its
  ``__HS.csv`` / ``__VIS.csv`` conversions): 162 HS clips (s01_ne_02 and s02_sur_05 are missing) and
  71 VIS clips. The label is the clip-name code (ne/po/sur), not the Emotion column, which calls
  s18_sur_03 negative (REPORT.md E). Onset/offset are its OnsetF/OffsetF.

No NIR clip list exists among the annotations; NIR was recorded with the VIS camera pair on the same
71 clips (CDMER .mat labels: 71 each, 23/28/20), so ``variant="nir"`` reads the VIS list. This is
an inference, stated again in the ``cdmer_smic_nir`` protocol.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from data_prep.datasets import casme2, samm, xlsx
from data_prep.datasets.coding import row_subject, subject_name
from data_prep.datasets.frames import find_dirs, list_frames
from data_prep.errors import AnnotationError, Problems, SampleError
from data_prep.samples import Sample

VARIANTS = {"hs": "smic", "vis": "smic_vis", "nir": "smic_nir"}
EMOTIONS = ("negative", "positive", "surprise")
CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}
COMPOSITE_CLASSES = ("negative", "positive", "surprise")
_CLIP = re.compile(r"s0*(\d+)_([a-z]+)_(\d+)", re.IGNORECASE)


def subject_folder(raw) -> str:
    """``1``, ``"s1"`` or ``"s01"`` -> ``"s01"``."""
    return subject_name(raw, r"s?0*(\d+)", "SMIC", "s{:02d}")


def normalise_clip(clip: str) -> str:
    """``"s1_ne_01"`` -> ``"s01_ne_01"`` (REPORT.md F); other names are returned unchanged."""
    match = _CLIP.fullmatch(clip.strip())
    if not match:
        return clip.strip()
    return f"s{int(match.group(1)):02d}_{match.group(2).lower()}_{match.group(3)}"


def clip_emotion(clip: str) -> Optional[str]:
    """The emotion that a clip name's code gives (``s01_ne_01`` -> ``"negative"``), or ``None``."""
    match = _CLIP.fullmatch(clip.strip())
    return CODES.get(match.group(2).lower()) if match else None


def _database(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"SMIC variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    return VARIANTS[variant]


# --------------------------------------------------------------------------------------------------
# The MEGC2019 composite list

def normalise_composite_name(database: str, subject, clip: str) -> tuple[str, str]:
    """A composite-list row's bare subject and clip, as the readers write them:
    ``("samm", "6", "006_1_2")`` -> ``("006", "006_1_2")``, ``smic s1_ne_01`` -> ``s01_ne_01``."""
    if database == "casme2":
        return casme2.subject_folder(subject), clip.strip()
    if database == "samm":
        return samm.subject_folder(subject), clip.strip()
    if database == "smic":
        return subject_folder(subject), normalise_clip(clip)
    raise ValueError(f"unknown database {database!r} (expected casme2, samm or smic)")


def read_composite_list(path) -> list[dict]:
    """The rows of a MEGC2019 composite (CDE) label list.

    Accepts ``combined_3_class_gt.csv`` (columns data, subject, clip, label), its header-less twin
    ``combined_3class_gt.csv``, HTNet's ``combined_3_class2_for_optical_flow.csv`` (dataset, sub,
    filename_o, label, ...) and the ``manifest_442.csv`` files (dataset, subject, clip, label, ...).

    Returns:
        dicts with ``database``, ``subject`` (bare: ``sub01``, ``006``, ``s01``), ``clip``
        (normalised), ``label`` (0 negative, 1 positive, 2 surprise), ``where`` (file and row) and
        ``fields`` (the row as written).

    Raises:
        AnnotationError: the file is missing, empty, or not such a list (also for a bad row: a
            label list with a bad row cannot be trusted at all).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(path, "label list not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise AnnotationError(path, f"not a text CSV file ({error})") from error
    import csv
    lines = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not lines:
        raise AnnotationError(path, "the file is empty")
    header = [cell.strip().lower() for cell in lines[0]]
    if header and header[0] in ("casme2", "samm", "smic"):
        header, body, first = ["data", "subject", "clip", "label"], lines, 1
    else:
        body, first = lines[1:], 2

    def column(*names):
        for name in names:
            if name in header:
                return header.index(name)
        raise AnnotationError(path, f"not a MEGC2019 composite label list: no column {names[0]!r} "
                                    f"(or {list(names[1:])}); header is {lines[0]}")

    c_db, c_sub = column("data", "dataset", "database"), column("subject", "sub")
    c_clip, c_label = column("clip", "filename_o", "filename", "sample"), column("label")
    rows = []
    for number, fields in enumerate(body, start=first):
        where = f"{path} row {number}"
        try:
            database = fields[c_db].strip().lower()
            subject, clip = normalise_composite_name(database, fields[c_sub], fields[c_clip])
            label = int(fields[c_label])
            if label not in (0, 1, 2):
                raise ValueError(f"label {label} is not 0, 1 or 2")
        except (IndexError, ValueError) as error:
            raise AnnotationError(where, f"bad row {fields}: {error}") from error
        rows.append({"database": database, "subject": subject, "clip": clip, "label": label,
                     "where": where, "fields": fields})
    if not rows:
        raise AnnotationError(path, "the list has a header but no rows (truncated?)")
    return rows


# --------------------------------------------------------------------------------------------------
# Reading

def find_variant_root(root, variant: str = "hs") -> Optional[Path]:
    """The ``HS`` (``VIS``, ``NIR``) folder under ``root``, or ``root`` itself if it holds
    ``s1/micro/`` subject folders; ``None`` if neither is there."""
    root = Path(root)
    name = variant.upper()
    if root.name.upper() == name:
        return root
    for parent in find_dirs(root, rf"(?i){name}"):
        for child in sorted(parent.iterdir()):
            if child.is_dir() and child.name.upper() == name:
                return child
    subjects = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)]
    if any((p / "micro").is_dir() for p in subjects):
        return root
    return None


def read(path, problems: Problems, *, variant: str = "hs", check_apex: bool = True) -> list[Sample]:
    """Read SMIC samples from the release's folders or from an annotation list.

    Args:
        path: a SMIC root (``HS/s1/micro/negative/s1_ne_01/``, ``VIS/...``, ``NIR/...``), or the
            MEGC2019 composite list (HS only), or the SMIC-E annotation .xlsx/.csv.
        problems: where bad clips go; each is skipped, or raised if ``problems.strict``.
        variant: ``"hs"``, ``"vis"`` or ``"nir"``; databases ``smic``, ``smic_vis``, ``smic_nir``.
        check_apex: unused (SMIC has no apex); accepted so that every reader takes it.

    Returns:
        one :class:`Sample` per clip, sorted by subject and clip; subjects ``smic/s01`` (or
        ``smic_vis/s01``, ``smic_nir/s01``), clips ``s01_ne_01``, ``apex_source="none"``.

    Raises:
        AnnotationError: no ``HS`` folder under a root; an annotation file that is not one of the
            accepted lists.
    """
    del check_apex
    database = _database(variant)
    path = Path(path)
    if path.is_dir():
        samples = _read_folders(path, variant, database, problems)
    elif _looks_like_composite(path):
        samples = _read_composite(path, variant, database, problems)
    else:
        samples = _read_smic_e(path, variant, database, problems)
    return sorted(samples, key=lambda s: (s.subject, s.clip))


def _read_folders(root: Path, variant: str, database: str, problems: Problems) -> list[Sample]:
    variant_root = find_variant_root(root, variant)
    if variant_root is None:
        raise AnnotationError(root, f"no SMIC {variant.upper()} folder "
                                    f"({variant.upper()}/s1/micro/negative/s1_ne_01/) found")
    samples = []
    for subject_dir in sorted(variant_root.iterdir()):
        if not (subject_dir.is_dir() and re.fullmatch(r"s\d+", subject_dir.name)):
            continue
        micro = subject_dir / "micro"
        if not micro.is_dir():
            continue  # a subject with only non_micro clips
        subject = subject_folder(subject_dir.name)
        for emotion_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            emotion = emotion_dir.name.lower()
            for clip_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                clip = normalise_clip(clip_dir.name)
                sample_id = f"{database}/{subject}/{clip}"
                if emotion not in EMOTIONS:
                    problems.add(SampleError(sample_id, clip_dir, f"unknown emotion label "
                                             f"{emotion!r} (folder name): expected one of "
                                             f"{list(EMOTIONS)}"))
                    continue
                coded = clip_emotion(clip)
                if coded is not None and coded != emotion:
                    problems.add(SampleError(sample_id, clip_dir, f"label conflict: the folder "
                                             f"says {emotion}, the clip name says {coded}"))
                    continue
                try:
                    frames = list_frames(clip_dir, sample_id)
                except SampleError as error:  # two files of one frame number
                    problems.add(error)
                    continue
                if not frames:
                    problems.add(SampleError(sample_id, clip_dir, "no frames: the clip folder "
                                             "holds no .bmp/.jpg/.png frame"))
                    continue
                samples.append(Sample(
                    database=database, subject=f"{database}/{subject}", clip=clip,
                    onset=frames[0][0], apex=None, offset=frames[-1][0], emotion=emotion,
                    apex_source="none", frames_dir=str(clip_dir), source=str(clip_dir)))
    return samples


def _looks_like_composite(path: Path) -> bool:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        first = handle.readline().strip().lower()
    cells = [c.strip() for c in first.split(",")]
    return bool(cells) and (cells[0] in ("data", "dataset", "casme2", "samm", "smic")
                            and "filename" not in cells[1:2])


def _read_composite(path: Path, variant: str, database: str, problems: Problems) -> list[Sample]:
    if variant != "hs":
        raise AnnotationError(path, f"the MEGC2019 composite list holds SMIC-HS only; SMIC "
                                    f"{variant.upper()} needs its folders or the SMIC-E VIS sheet")
    samples = []
    for row in read_composite_list(path):
        if row["database"] != "smic":
            continue
        samples.append(Sample(
            database=database, subject=f"{database}/{row['subject']}", clip=row["clip"],
            onset=None, apex=None, offset=None, emotion=COMPOSITE_CLASSES[row["label"]],
            apex_source="none", source=row["where"]))
    if not samples:
        raise AnnotationError(path, "the composite list has no SMIC rows")
    return samples


def _read_smic_e(path: Path, variant: str, database: str, problems: Problems) -> list[Sample]:
    sheet = None
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        sheet = "HS" if variant == "hs" else "VIS"
        names = xlsx.sheet_names(path)
        if sheet not in names:
            raise AnnotationError(path, f"not a SMIC-E annotation workbook: no sheet {sheet!r} "
                                        f"(sheets: {names})")
    else:
        stem = path.stem.upper()
        csv_sheet = "HS" if stem.endswith("__HS") else "VIS" if stem.endswith("__VIS") else None
        wanted = "HS" if variant == "hs" else "VIS"
        if csv_sheet is not None and csv_sheet != wanted:
            raise AnnotationError(path, f"this is the SMIC-E {csv_sheet} sheet; SMIC "
                                        f"{variant.upper()} needs the {wanted} sheet")
    table = xlsx.read_table(path, ("Subject", "Filename", "OnsetF", "OffsetF"), sheet=sheet)
    samples = []
    seen = set()
    for number, row in table.rows:
        where = table.where(number)
        clip = normalise_clip(row["Filename"])
        subject = row_subject(row, clip, database, subject_folder, where, problems)
        if subject is None:
            continue
        sample_id = f"{database}/{subject}/{clip or '?'}"
        emotion = clip_emotion(clip)
        if emotion is None:
            problems.add(SampleError(sample_id, where, f"unknown emotion label: clip name "
                                     f"{clip!r} has no ne/po/sur code"))
            continue
        if not clip.startswith(f"{subject}_"):
            problems.add(SampleError(sample_id, where, f"clip {clip!r} does not belong to subject "
                                                       f"{subject}"))
            continue
        try:
            onset = xlsx.parse_frame(row["OnsetF"])
            offset = xlsx.parse_frame(row["OffsetF"])
        except ValueError as error:
            problems.add(SampleError(sample_id, where, f"bad frame number: {error}"))
            continue
        if clip in seen:
            problems.add(SampleError(sample_id, where, "duplicate row: this clip is listed twice"))
            continue
        seen.add(clip)
        samples.append(Sample(
            database=database, subject=f"{database}/{subject}", clip=clip, onset=onset, apex=None,
            offset=offset, emotion=emotion, apex_source="none", source=where))
    return samples
