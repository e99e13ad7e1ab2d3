"""MMI Facial Expression Database, as image sequences. THE LAYOUT IS ASSUMED, read this first.

Macro-expression data for MTMNet (Sec 4.1: "205 image sequences with frontal faces of six emotion
labels: anger, disgust, fear, happiness, sadness and surprise"). PEERS.md describes no MMI layout
and the shared material holds no MMI file, so this reader reads the one layout that public loaders
of the MMI web download show, with its video replaced by its frames (the image-sequence export)::

    Sessions/<session>/session.xml            the session record (subject, view, annotation files)
    Sessions/<session>/<name>.xml             the media record, with <Metatag Name="Emotion" .../>
    Sessions/<session>/<name>_0001.png ...    the frames, numbered in their names
    Sessions/<session>/<name>-oao_aucs.xml    the FACS coding (not read)

Assumed, each a choice where the download differs:

* **Sessions.** The root holds ``Sessions/`` or is it; every sub-folder of it is one session.
* **Frames.** Image files (.png, .jpg, .bmp) directly in the session folder, or in its one
  sub-folder that holds images, ordered by the last number in their names. A session that holds
  only its video (``.avi``) is a bad sample: extract its frames first, e.g. ``ffmpeg -i
  S001-001.avi S001-001_%04d.png``.
* **Emotion.** A ``<Metatag Name="Emotion" Value="N"/>`` element in ``session.xml`` or in any other
  ``.xml`` of the folder except the ``-oao_aucs.xml`` coding; N = 1 anger, 2 disgust, 3 fear,
  4 happiness, 5 sadness, 6 surprise (:data:`MMI_CODES`, the order public loaders use). A session
  without that metatag is unlabelled and left out, not an error (MMI labels only part of its
  sessions with an emotion; MTMNet's 205 are those).
* **Subject.** The ``id`` of a ``<subject>`` element of ``session.xml`` (``"1"`` -> ``"S001"``),
  else a ``<Metatag Name="Subject">``, else the ``S<digits>`` prefix of the frame or media file
  names (``S001-001.avi`` -> ``S001``), else the session folder's name (one subject per session,
  and a subject split cannot keep one person's sessions together).
* **Frames used.** MMI's posed sequences run neutral -> apex -> neutral: they start AND end on a
  neutral face (Pantic et al., ICME 2005; Valstar and Pantic, 2010), unlike CK+ and Oulu-CASIA. So
  the neutral image is the first frame and the expression images are the ``peak_frames`` frames
  around the MIDDLE of the sequence (``"middle-frames"``); the last frames would be neutral again.
  MTMNet does not say which frames it took (PAPER_NOTES 4.1).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Optional

from data_prep.datasets.ckplus import macro_sequence, split_sequence
from data_prep.datasets.frames import list_frames
from data_prep.errors import AnnotationError, Problems, SampleError

DATABASE = "mmi"
MMI_CODES = {1: "anger", 2: "disgust", 3: "fear", 4: "happiness", 5: "sadness", 6: "surprise"}
SESSION_FILE = "session.xml"
_VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".wmv", ".mpg")
_SUBJECT_PREFIX = re.compile(r"(S\d+)[-_]", re.IGNORECASE)


def find_sessions(root) -> list[Path]:
    """The session folders: the sub-folders of ``root/Sessions`` (or of ``root``) that hold a
    ``session.xml``.

    Raises:
        AnnotationError: ``root`` is not a folder or no session folder is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, "MMI folder not found")
    for base in (root / "Sessions", root):
        if base.is_dir():
            sessions = [p for p in base.iterdir() if p.is_dir() and (p / SESSION_FILE).is_file()]
            if sessions:
                return sorted(sessions, key=lambda p: (not p.name.isdigit(),
                                                       int(p.name) if p.name.isdigit() else 0,
                                                       p.name))
    raise AnnotationError(root, f"no MMI session folders (Sessions/<n>/{SESSION_FILE}) found")


def _parse(path: Path, sample: str) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise SampleError(sample, path, f"unreadable XML: {error}") from None


def _metatags(root: ElementTree.Element) -> dict:
    """``{lower-case name: value}`` of every ``<Metatag Name=... Value=...>`` element."""
    tags = {}
    for element in root.iter():
        if str(element.tag).lower() != "metatag":
            continue
        attributes = {key.lower(): value for key, value in element.attrib.items()}
        if "name" in attributes:
            tags[attributes["name"].strip().lower()] = attributes.get("value", "").strip()
    return tags


def _subject(session: ElementTree.Element, tags: dict, names: list, fallback: str) -> str:
    for element in session.iter():
        if str(element.tag).lower() == "subject":
            value = {k.lower(): v for k, v in element.attrib.items()}.get("id", "").strip()
            if value:
                return f"S{int(value):03d}" if value.isdigit() else value
    value = tags.get("subject", "")
    if value:
        return f"S{int(value):03d}" if value.isdigit() else value
    for name in names:
        match = _SUBJECT_PREFIX.match(name)
        if match:
            return match.group(1).upper()
    return fallback


def _frames(folder: Path) -> list:
    frames = list_frames(folder)
    if frames:
        return frames
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = list_frames(child)
        if frames:
            return frames
    return []


def read_sequences(root, problems: Optional[Problems] = None, *, peak_frames: int = 3) -> list:
    """Every emotion-labelled MMI session, as ``ckplus.macro_sequence`` records.

    Args:
        root: the MMI folder holding ``Sessions/`` (or the ``Sessions`` folder itself).
        problems: where bad sessions go (unreadable XML, an unknown emotion code, no frames or
            only a video); each is skipped, or raised if ``problems.strict``.
        peak_frames: expression images per sequence, around its middle frame.

    Returns:
        records in session order; ``sequence`` is the session folder's name, ``subject`` as the
        module docstring says, the neutral image the first frame.

    Raises:
        AnnotationError: no session folder under ``root``.
    """
    problems = Problems() if problems is None else problems
    records = []
    for folder in find_sessions(root):
        sample = f"{DATABASE}/?/{folder.name}"
        try:
            record = _read_session(folder, sample, peak_frames)
        except SampleError as error:
            problems.add(error)
            continue
        if record is not None:
            records.append(record)
    return records


def _read_session(folder: Path, sample: str, peak_frames: int) -> Optional[dict]:
    session_file = folder / SESSION_FILE
    session = _parse(session_file, sample)
    tags, source = _metatags(session), session_file
    if "emotion" not in tags:
        for path in sorted(folder.glob("*.xml")):
            if path.name == SESSION_FILE or path.name.lower().endswith("-oao_aucs.xml"):
                continue
            found = _metatags(_parse(path, sample))
            if "emotion" in found:
                tags, source = {**found, **tags}, path
                break
    if "emotion" not in tags:
        return None                                             # an unlabelled session
    value = tags["emotion"]
    if not value.isdigit() or int(value) not in MMI_CODES:
        raise SampleError(sample, source, f"unknown emotion code {value!r} (expected 1..6: "
                                          f"{', '.join(MMI_CODES.values())})")
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    subject = _subject(session, tags, files, folder.name)
    sample = f"{DATABASE}/{subject}/{folder.name}"
    frames = _frames(folder)
    if not frames:
        videos = [name for name in files if name.lower().endswith(_VIDEO_SUFFIXES)]
        if videos:
            raise SampleError(sample, folder / videos[0], "video only: this reader reads image "
                              "sequences; extract the frames first (e.g. ffmpeg -i "
                              f"{videos[0]} {Path(videos[0]).stem}_%04d.png)")
        raise SampleError(sample, folder, "no frames: the session folder holds no image")
    neutral, expression = split_sequence(frames, peak_frames, "middle-frames", sample, folder)
    return macro_sequence(DATABASE, subject, folder.name, MMI_CODES[int(value)], neutral,
                          expression, frames[-1][0], "middle-frames", source)
