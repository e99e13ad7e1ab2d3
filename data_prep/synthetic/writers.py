"""Writers: the coding spreadsheets (byte-reproducible), the frames, the macro sequences and the
SYNTHETIC.md markers."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import cv2

from data_prep.errors import DataPrepError
from data_prep.synthetic.faces import draw_appearance
from data_prep.synthetic.layout import (
    AU_CODES,
    CKPLUS_CODES,
    FRAME_SIZE,
    MACRO_FRAME_SIZE,
    MACRO_MOTIONS,
    MACRO_VERSION,
    SAMM_OBJECTIVE,
    VERSION,
    Clip,
    MacroSequence,
    _rng,
)
from data_prep.synthetic.motion import synthesize_clip, synthesize_macro_sequence

CASME2_HEADER = (
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
)
SAMM_HEADER = (
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Micro",
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
    "Notes",
)
SAMM_PREAMBLE = (  # 13 rows before the header, laid out as the real v2 coding's (text abridged)
    {
        1: "SAMM Dataset - Master FACS Codes (synthetic miniature written by mer_keras data_prep)",
        5: "(Note to the users: this is a synthetic stand-in; if you use the real SAMM, "
        "cite Davison et "
        "al. (2016), SAMM: A spontaneous micro-facial movement dataset.)",
    },
    {},
    {
        1: "9/9/17 - New updates with Emotional and Objective Classes. "
        "For details please refer to: ",
        9: "arXiv preprint arXiv:1708.07549.",
    },
    {
        5: "(Note to the users: if you use the emotional or objective classes, "
        "cite Davison, Merghani and "
        "Yap (2017), Objective Classes for Micro-Facial Expression Recognition.)"
    },
    {},
    {1: "Symbol Key:"},
    {1: '"/" = or'},
    {1: '"?" = some AU\'s continue for a while and have unclear offset'},
    {},
    {1: "AU Help:"},
    {1: '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face'},
    {1: '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side'},
    {},
)
_FIXED_TIME = "2000-01-01T00:00:00Z"


def _save_workbook(workbook, path: Path) -> None:
    """Save an openpyxl workbook byte-for-byte reproducibly (fixed times in the zip and the XML)."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + _FIXED_TIME.encode() + rb"\g<3>",
                    data,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            target.writestr(fixed, data)
    _write_bytes(path, out.getvalue())


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_casme2_coding(clips: list, path: Path) -> None:
    """``CASME2-coding-20140508.xlsx``: Sheet1 (the real columns, blank C and G), Sheet2, Sheet3."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    sheet.append(CASME2_HEADER)
    for clip in clips:
        sheet.append(
            (
                clip.subject,
                clip.name,
                None,
                clip.coded_onset,
                clip.coded_apex,
                clip.offset,
                None,
                _au(clip),
                clip.emotion,
            )
        )
        sheet.cell(sheet.max_row, 1).number_format = "@"
    workbook.create_sheet("Sheet2")
    workbook.create_sheet("Sheet3")
    _save_workbook(workbook, path)


def write_samm_coding(clips: list, path: Path) -> None:
    """``SAMM_Micro_FACS_Codes_v2.xlsx``: sheet MICRO_ONLY, 13 preamble rows, the real header."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "MICRO_ONLY"
    for row, cells in enumerate(SAMM_PREAMBLE, start=1):
        for column, text in cells.items():
            sheet.cell(row, column, text)
    header_row = len(SAMM_PREAMBLE) + 1
    for column, name in enumerate(SAMM_HEADER, start=1):
        sheet.cell(header_row, column, name)
    for row, clip in enumerate(clips, start=header_row + 1):
        induce = int(clip.name.split("_")[1])
        values = (
            clip.subject,
            clip.name,
            induce,
            clip.coded_onset,
            clip.coded_apex,
            clip.offset,
            f"=SUM(F{row}-D{row})+1",
            "Micro - 1/2",
            _au(clip),
            clip.emotion,
            SAMM_OBJECTIVE[clip.emotion],
            None,
        )
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
        sheet.cell(row, 1).number_format = "@"
    _save_workbook(workbook, path)


def _au(clip: Clip):
    """The Action Units cell: the drawn action's code (an int where it is one number, as real)."""
    code = AU_CODES[clip.motion]
    return int(code) if code.isdigit() else code


def write_clip_frames(clip: Clip, out: Path, seed: int, apps: dict) -> None:
    """Draw and write one clip's frames into ``out / clip.rel_dir``."""
    key = (clip.database, clip.subject)
    if key not in apps:
        apps[key] = draw_appearance(_rng(seed, clip.database, clip.subject, "face"))
    frames = synthesize_clip(
        apps[key],
        FRAME_SIZE[clip.database],
        clip.n_frames,
        clip.peak,
        clip.motion,
        _rng(seed, clip.database, clip.subject, clip.name, "clip"),
        _rng(seed, clip.database, clip.subject, "texture"),
    )
    folder = out / clip.rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if clip.database != "smic" else []
    for index, frame in enumerate(frames):
        extension = ".jpg" if clip.database != "smic" else ".bmp"
        ok, data = cv2.imencode(extension, frame, params)
        if not ok:
            raise DataPrepError(f"{folder}: could not encode frame {clip.onset + index}")
        _write_bytes(folder / clip.frame_name(clip.onset + index), data.tobytes())


def _marker_text(seed: int, clips: list) -> str:
    from data_prep import __version__

    counts = {
        db: sum(c.in_cde for c in clips if c.database == db) for db in ("casme2", "samm", "smic")
    }
    return (
        "# Synthetic CASME II / SAMM / SMIC-HS miniature\n\n"
        "Written by `python -m data_prep synth` (mer_keras data_prep). These are "
        "procedurally drawn faces with a subtle, class-dependent facial motion, NOT the real "
        "databases: use them to run and test the readers, the pipeline and the models end to "
        "end, never to report results.\n\n"
        f"- generator version: {VERSION}\n"
        f"- seed: {seed}\n"
        f"- package version: {__version__}\n"
        f"- clips: {len(clips)} written; MEGC2019 CDE samples: {sum(counts.values())} "
        f"(CASME II {counts['casme2']}, SAMM {counts['samm']}, SMIC {counts['smic']})\n"
        "- layouts: CASME2/CASME2_RAW_selected/subXX/<clip>/imgN.jpg with "
        "CASME2/CASME2-coding-20140508.xlsx; SAMM/SAMM/<sub>/<clip>/<sub>_NNNNN.jpg with "
        "SAMM/SAMM_Micro_FACS_Codes_v2.xlsx; SMIC/HS/sN/micro/<emotion>/<clip>/imageNNNNNN.bmp\n"
    )


def write_macro_sequence(sequence: MacroSequence, out: Path, seed: int, apps: dict) -> None:
    """Draw and write one macro sequence: its PNG frames, and its ``*_emotion.txt`` where labelled
    (an unlabelled sequence gets an empty ``Emotion/`` folder, as in CK+)."""
    key = ("ckplus", sequence.subject)
    if key not in apps:
        apps[key] = draw_appearance(_rng(seed, "ckplus", sequence.subject, "face"))
    frames = synthesize_macro_sequence(
        apps[key],
        MACRO_FRAME_SIZE,
        sequence.n_frames,
        MACRO_MOTIONS[sequence.shown],
        _rng(seed, "ckplus", sequence.subject, sequence.number, "sequence"),
        _rng(seed, "ckplus", sequence.subject, "texture"),
    )
    folder = out / sequence.rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    for number, frame in enumerate(frames, start=1):
        ok, data = cv2.imencode(".png", frame)
        if not ok:
            raise DataPrepError(f"{folder}: could not encode frame {number}")
        _write_bytes(folder / sequence.frame_name(number), data.tobytes())
    labels = out / sequence.label_dir
    labels.mkdir(parents=True, exist_ok=True)
    if sequence.emotion is not None:
        last = Path(sequence.frame_name(sequence.n_frames)).stem
        code = float(CKPLUS_CODES[sequence.emotion])
        _write_bytes(labels / f"{last}_emotion.txt", f"   {code:.7e}\n".encode("ascii"))


def _macro_marker_text(seed: int, sequences: list) -> str:
    from data_prep import __version__

    labelled = [s for s in sequences if s.emotion is not None]
    counts = {e: sum(s.emotion == e for s in labelled) for e in CKPLUS_CODES}
    return (
        "# Synthetic CK+ macro-expression set\n\n"
        "Written by `python -m data_prep synth` (mer_keras data_prep) next to the micro "
        "miniature. Procedurally drawn faces posing the micro clips' class motions at 5-10 times "
        "their amplitude, on other subjects (S501..), NOT the real CK+: use it to run the macro "
        "pre-training end to end, never to report results.\n\n"
        f"- generator version: {MACRO_VERSION}\n"
        f"- seed: {seed}\n"
        f"- package version: {__version__}\n"
        f"- sequences: {len(sequences)} of {len({s.subject for s in sequences})} subjects, "
        f"{len(labelled)} labelled ("
        + ", ".join(f"{e} {n}" for e, n in counts.items())
        + f"); frames: {sum(s.n_frames for s in sequences)}\n"
        "- layout: CK+/cohn-kanade-images/S501/001/S501_001_00000001.png with "
        "CK+/Emotion/S501/001/S501_001_000000NN_emotion.txt (NN: the last, peak frame)\n"
    )
