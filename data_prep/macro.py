"""Macro-expression faces for pre-training (Micro-Attention, MTMNet): ``python -m data_prep macro``.

Both papers learn from posed macro-expressions before the micro ones. Micro-Attention (Sec 3.3,
4.1) pre-trains its ResNet on CK+, Oulu-CASIA, JAFFE and MUG together, restricted to the five
emotions of the MEGC2018 objective classes ("happiness, surprise, anger, disgust and sadness"),
with 10 % held out for validation: CK+ gives 852 images ("the last three frames" of each
sequence), Oulu-CASIA 1,200. MTMNet (Sec 3, 4.1) trains its MacroNet on CK+, MMI or Oulu-CASIA,
each alone, on pairs of a neutral image x_N and an expression image x_E of the same subject, using
"only related parts" of the macro labels (PAPER_NOTES 4.1, 4.6 point 2). One call prepares one
cache from one or several databases (:data:`READERS`); MTMNet's three guides are three calls.

Label maps (:data:`LABEL_MAPS`, macro emotion -> the micro protocol's class; ``data_prep.index``
has the protocols):

* ``cde`` (negative / positive / surprise, MEGC2019): negative = anger, contempt, disgust, fear,
  sadness (SAMM's negative set, PAPER_NOTES 0.2; MTMNet's map, PAPER_NOTES 4.6 point 2, with
  contempt, which only CK+ has); positive = happiness; surprise = surprise.
* ``megc2018_objective`` (I..V): I happiness, II surprise, III anger, IV disgust, V sadness
  (Micro-Attention Sec 4.1, Table 1); contempt and fear are left out, as Micro-Attention's five
  emotions leave them out. CK+'s 981 last-3 frames minus contempt (54) and fear (75) are the
  paper's 852.

* the single-database protocols: ``smic_3class`` as ``cde``, ``samm_5class`` as
  ``megc2018_objective``, ``casme2_5class`` happiness, surprise, disgust (its repression and
  others have no macro counterpart).

An emotion outside the map (and CK+'s code 0, neutral) is left out and counted, not an error.

The cache (``data_prep.cache`` layout; ``"kind": "macro"``) has one index row and one entry per
EXPRESSION image. Each entry holds

* ``expression``: uint8 S x S x 3 RGB face crop (a gray file gives three equal channels);
* ``neutral``: uint8 S x S x 3 RGB, the sequence's first frame cut with the same box, where the
  database has a neutral frame (not CK+48: then there is no ``neutral`` array and ``cache.json``
  says ``"has_neutral": false``).

The face box is found on the neutral (first) frame, read in grayscale as the flow stage reads its
onset frame, with :mod:`data_prep.face` (largest Haar face grown by 10 %, or the whole frame), and
cut from both images; on CK+48, which has no neutral frame, it is found on the image itself (its
48 x 48 crops are already faces: the box is the whole image to a pixel, or ``full-frame`` where the
cascade finds none, 227 of 981; ``--face-detector none`` takes them whole). ``index.csv`` has the
cache's columns (``onset`` = the neutral frame, ``apex`` = the image's frame, ``offset`` = the
sequence's last frame, ``apex_source`` = the rule that chose the image: ``last-frames``,
``middle-frames`` (MMI) or ``release`` (CK+48)) plus ``sequence`` and ``split``. The split is by
subject, within each database: a seeded fraction of its subjects goes to ``validation``, every
image of a subject on one side (Micro-Attention Sec 3.3 holds out 10 %; the paper does not say
how, and a split by image would put the same faces on both sides). Entries depend only on the
images and :func:`macro_params`, so changing the split, the peak-frame count or the protocol
reuses them.

``cache.json`` adds ``has_neutral``, ``counts`` (per database and class), ``left_out`` (emotions
outside the map), ``selection`` and ``split`` to the usual kind, protocol, classes, params and
dropped. Load with ``data_prep.cache.load_cache(cache, arrays=("expression",))`` or
``("expression", "neutral")``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from data_prep import cache, face
from data_prep.datasets import ckplus, mmi, oulu
from data_prep.errors import DataPrepError, Problems, SampleError
from data_prep.images import read_image

ALGORITHM = "macro-face"
KIND = "macro"
COLOUR = "RGB uint8"
#: database -> reader(root, problems, peak_frames=) returning ``ckplus.macro_sequence`` records.
READERS = {
    "ckplus": ckplus.read_sequences,
    "ckplus48": ckplus.read_ckplus48,
    "oulu": oulu.read_sequences,
    "mmi": mmi.read_sequences,
}
#: What each database's expression images are (see the readers).
PEAK_RULES = {"ckplus": "last-frames", "ckplus48": "release", "oulu": "last-frames",
              "mmi": "middle-frames"}
_NEGATIVE = ("anger", "contempt", "disgust", "fear", "sadness")
#: micro protocol -> {macro emotion -> the protocol's class}; emotions not listed are left out.
LABEL_MAPS = {
    "cde": {**{emotion: "negative" for emotion in _NEGATIVE}, "happiness": "positive",
            "surprise": "surprise"},
    "megc2018_objective": {"happiness": "I", "surprise": "II", "anger": "III", "disgust": "IV",
                           "sadness": "V"},
}
# the single-database protocols: SMIC's 3 classes are CDE's, SAMM's I-V the objective classes,
# and CASME II's 5 emotions (MTMNet Sec 4.1) share three with the macro databases; repression
# and others have no macro counterpart (MTMNet trains those anchors on L_cls only, 4.6-1).
LABEL_MAPS.update({
    "smic_3class": LABEL_MAPS["cde"],
    "samm_5class": LABEL_MAPS["megc2018_objective"],
    "casme2_objective": LABEL_MAPS["megc2018_objective"],
    "casme2_5class": {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust"},
})
SPLITS = ("train", "validation")
EXTRA_COLUMNS = ("sequence", "split")


# --------------------------------------------------------------------------------------------------
# Label maps

def protocol_classes(protocol: str) -> tuple:
    """The classes of micro protocol ``protocol`` in label order (from ``data_prep.index``).

    Raises:
        DataPrepError: ``protocol`` has no macro label map.
    """
    if protocol not in LABEL_MAPS:
        raise DataPrepError(f"no macro label map for protocol {protocol!r}; known: "
                            f"{', '.join(LABEL_MAPS)}")
    from data_prep.index import get_protocol

    return tuple(get_protocol(protocol).classes)


def macro_label(protocol: str, emotion: str) -> Optional[str]:
    """The class of macro ``emotion`` under ``protocol``, or ``None`` where it is left out."""
    return LABEL_MAPS[protocol].get(emotion)


# --------------------------------------------------------------------------------------------------
# Images

@dataclasses.dataclass(frozen=True)
class MacroImage:
    """One expression image to cache, with the neutral frame of its sequence.

    Attributes:
        database: ``"ckplus"``, ``"ckplus48"``, ``"oulu"``, ``"mmi"``.
        subject: prefixed by the database, ``"ckplus/S005"`` (the split's groups).
        sequence: the sequence id (``"S005_001"``).
        clip: the image's id within its subject (``"S005_001_00000011"``), its entry's name.
        emotion: the canonical macro emotion.
        path: the expression image file.
        neutral_path: the sequence's first frame, or ``None`` (CK+48).
        onset, apex, offset: the neutral frame's, this image's and the sequence's last frame
            numbers (``onset`` ``None`` without a neutral frame).
        apex_source: the rule that chose the image (:data:`PEAK_RULES`).
        source: the label file or folder.
    """

    database: str
    subject: str
    sequence: str
    clip: str
    emotion: str
    path: str
    neutral_path: Optional[str]
    onset: Optional[int]
    apex: int
    offset: int
    apex_source: str
    source: str = ""

    @property
    def sample_id(self) -> str:
        return f"{self.subject}/{self.clip}"

    @property
    def frames_dir(self) -> str:
        return str(Path(self.path).parent)


def read_databases(roots: Mapping[str, object], problems: Optional[Problems] = None, *,
                   peak_frames: int = 3) -> list:
    """The labelled sequences of every database given, as ``ckplus.macro_sequence`` records.

    Args:
        roots: database name (:data:`READERS`) -> its root; ``None`` roots are skipped.
        problems: collects bad sequences; strict ones raise at the first.
        peak_frames: expression images per sequence.

    Raises:
        DataPrepError: an unknown database, or CK+ and CK+48 together (CK+48 is cut from the same
            sequences: the images would be there twice).
        AnnotationError: a root that is not in its database's layout.
    """
    problems = Problems() if problems is None else problems
    given = {name: root for name, root in roots.items() if root is not None}
    unknown = sorted(set(given) - set(READERS))
    if unknown:
        raise DataPrepError(f"unknown macro database(s) {unknown}; known: {', '.join(READERS)}")
    if "ckplus" in given and "ckplus48" in given:
        raise DataPrepError("give --ckplus or --ckplus48, not both: CK+48 holds the last 3 frames "
                            "of the same 327 CK+ sequences")
    sequences = []
    for name in READERS:
        if name in given:
            sequences += READERS[name](given[name], problems, peak_frames=peak_frames)
    return sequences


def image_id(sequence: dict, path: Path) -> str:
    """An expression image's id: its file name where that starts with the sequence id (CK+:
    ``S005_001_00000011``), else ``<sequence>_<file name>`` (Oulu-CASIA: ``P001_Anger_017``)."""
    stem = Path(path).stem
    return stem if stem.startswith(sequence["sequence"]) else f"{sequence['sequence']}_{stem}"


def select_images(sequences: Iterable[dict], protocol: str) -> tuple[list, dict]:
    """The expression images whose emotion ``protocol`` maps, and the counts of those left out.

    Returns:
        ``(images, left_out)``: :class:`MacroImage` records with their labels as ``(image,
        label)`` pairs, in sequence order; ``left_out`` is ``{database: {emotion: images}}``.
    """
    protocol_classes(protocol)
    images, left_out = [], {}
    for record in sequences:
        label = macro_label(protocol, record["emotion"])
        if label is None:
            counts = left_out.setdefault(record["database"], {})
            counts[record["emotion"]] = counts.get(record["emotion"], 0) + len(record["expression"])
            continue
        neutral = record["neutral"]
        for number, path in record["expression"]:
            images.append((MacroImage(
                database=record["database"],
                subject=f"{record['database']}/{record['subject']}",
                sequence=record["sequence"], clip=image_id(record, path),
                emotion=record["emotion"], path=str(path),
                neutral_path=None if neutral is None else str(neutral),
                onset=record["neutral_frame"], apex=int(number), offset=record["last_frame"],
                apex_source=record["rule"], source=record["source"]), label))
    return images, left_out


def split_by_subject(subjects: Iterable[str], fraction: float = 0.1, seed: int = 0) -> dict:
    """``{subject: "train" | "validation"}``: a seeded ``fraction`` of each database's subjects held
    out (Micro-Attention Sec 3.3: 10 % for validation).

    Subjects are grouped by their database prefix (``"ckplus/S005"`` -> ``ckplus``) and each
    database is split on its own, so a pooled cache validates on every database. A database holds
    out ``round(fraction * n)`` of its ``n`` subjects, but at least one and never all when
    ``fraction > 0`` and ``n >= 2``. The draw depends only on ``seed``, the database and its subject
    list, not on the other databases given.

    Raises:
        ValueError: ``fraction`` outside [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    by_database: dict[str, list] = {}
    for subject in sorted(set(subjects)):
        by_database.setdefault(subject.split("/", 1)[0], []).append(subject)
    split = {}
    for database, members in sorted(by_database.items()):
        count = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, *database.encode("utf-8")])
        held_out = {members[i] for i in rng.permutation(len(members))[:count]}
        split.update({s: "validation" if s in held_out else "train" for s in members})
    return split


# --------------------------------------------------------------------------------------------------
# One entry

def macro_params(*, face_size: int = 224, face_detector: str = "haar",
                 haar: Optional[Mapping] = None) -> dict:
    """The complete, JSON-ready parameter record of a macro cache's entries (part of each key).

    Args:
        face_size: side of the square RGB crops (224 in both papers: Micro-Attention Sec 4.1,
            MTMNet Sec 4.1).
        face_detector: ``"haar"`` or ``"none"`` (the images are already face crops: whole image).
        haar: Haar detector settings overriding :data:`data_prep.face.HAAR_DEFAULTS`.

    Raises:
        ValueError: a size or choice out of range.
    """
    face.check_face_settings(face_size, face_detector)
    haar_values = dict(face.HAAR_DEFAULTS, **(haar or {}))
    return {
        "face_size": int(face_size),
        "face_detector": face_detector,
        "haar": haar_values if face_detector == "haar" else None,
        "face_box": "data_prep.face on the neutral (first) frame read with IMREAD_GRAYSCALE; on "
                    "the image itself where there is no neutral frame",
        "colour": COLOUR,
        "face_resize": "INTER_AREA (INTER_LINEAR when enlarging)",
    }


@functools.lru_cache(maxsize=32)
def _face_box(path: str, detector: str, haar: tuple) -> Optional[tuple]:
    """``(box, source, (H, W))`` of the frame at ``path``.

    Memoised: the images of one sequence share its neutral frame's box, found once per process.

    Raises:
        SampleError: the frame is truncated or cannot be decoded (with no sample id: the caller
            names the sample; an exception is not memoised).
    """
    gray = read_image(path, "?", mode="gray")
    box, source = face.face_box(gray, detector, **dict(haar))
    return box, source, gray.shape[:2]


def _files(image: MacroImage) -> list:
    """The files an entry reads (hashed into its key), each checked to exist."""
    paths = [Path(image.path)] + ([Path(image.neutral_path)] if image.neutral_path else [])
    for path in paths:
        if not path.is_file():
            raise SampleError(image.sample_id, path, "frame missing: no such file")
    return paths


def _compute(image: MacroImage, params: Mapping) -> tuple[dict, dict]:
    from data_prep.strcn import crop_resize, read_rgb

    sid = image.sample_id
    box_path = image.neutral_path or image.path
    haar = tuple(sorted((params["haar"] or {}).items()))
    try:
        box, box_source, shape = _face_box(str(box_path), params["face_detector"], haar)
    except SampleError as error:
        raise SampleError(sid, error.path, error.reason) from None
    size = (params["face_size"], params["face_size"])
    expression = read_rgb(image.path, sid)
    if expression.shape[:2] != shape:
        raise SampleError(sid, image.path, f"frame size differs: {expression.shape[1::-1]} here, "
                                           f"{shape[::-1]} on the neutral frame {box_path}")
    arrays = {"expression": crop_resize(expression, box, size)}
    if image.neutral_path:
        arrays["neutral"] = crop_resize(read_rgb(image.neutral_path, sid), box, size)
    extra = {
        "sample": sid,
        "sequence": image.sequence,
        "face_box": [int(v) for v in box],
        "face_box_source": box_source,
        "face_box_frame": "neutral" if image.neutral_path else "expression",
        "onset": image.onset,
        "apex": image.apex,
        "offset": image.offset,
        "apex_source": image.apex_source,
        "frames": [Path(p).name for p in (image.path, image.neutral_path) if p],
    }
    if params["face_detector"] == "haar":  # which file, on this machine (not part of the key)
        extra["face_cascade_file"] = str(face.haar_cascade_path(params["haar"]["cascade"]))
    return arrays, extra


def _prepare_one(image: MacroImage, out: str, params: Mapping) -> tuple[str, object]:
    """Worker: one image -> ``("computed" | "reused", info)`` or ``("error", fields)``."""
    from data_prep.stages import prepare_entry

    return prepare_entry(image, out, params, algorithm=ALGORITHM, plan=lambda: _files(image),
                         used=lambda paths: paths, compute=lambda _: _compute(image, params))


# --------------------------------------------------------------------------------------------------
# The cache

def prepare_macro_cache(images: Sequence[tuple], out, *, params: Mapping, protocol: str,
                        validation_fraction: float = 0.1, seed: int = 0,
                        selection: Optional[Mapping] = None, left_out: Optional[Mapping] = None,
                        workers: int = 0, problems: Optional[Problems] = None,
                        progress: bool = True):
    """Prepare (or bring up to date) a macro cache of ``images``.

    Args:
        images: ``(MacroImage, label)`` pairs from :func:`select_images`.
        out: the cache folder (created).
        params: from :func:`macro_params`.
        protocol: the micro protocol whose classes the labels are (``cache.json``).
        validation_fraction, seed: the subject split (:func:`split_by_subject`).
        selection: how the images were chosen (``peak_frames``, rules), for ``cache.json``.
        left_out: ``{database: {emotion: images}}`` outside the label map, for ``cache.json``.
        workers: processes; 0 = ``os.cpu_count()``; 1 = in this process.
        problems: collects dropped images (and the readers' dropped sequences, reported with them).
        progress: show progress on stderr (a bar on a terminal, lines in a log).

    Returns:
        ``data_prep.stages.CacheSummary`` (``kind`` ``"macro"``); ``index.csv`` and
        ``cache.json`` are written in ``out``.

    Raises:
        SampleError: the first bad image, when ``problems`` is strict.
        face.MissingCascadeError: ``face_detector="haar"`` and no cascade file on this machine.
    """
    from data_prep.stages import prepare_cache

    face.check_detector(params["face_detector"], (params.get("haar") or {}).get(
        "cascade", face.HAAR_CASCADE))
    classes = protocol_classes(protocol)
    split = split_by_subject((image.subject for image, _ in images), validation_fraction, seed)
    items = [(image, label, {"sequence": image.sequence, "split": split[image.subject]})
             for image, label in images]
    summary = prepare_cache(items, out, params=params, prepare_one=_prepare_one, kind=KIND,
                            workers=workers, problems=problems, progress=progress,
                            protocol=protocol, classes=classes)
    by_entry = {cache.entry_relpath(image.subject, image.clip): image for image, _ in images}
    kept = [by_entry[row["entry"]] for row in summary.rows]
    meta = cache.read_cache_meta(out)
    meta.update({
        "has_neutral": bool(kept) and all(image.neutral_path for image in kept),
        "databases": sorted({image.database for image in kept}),
        "counts": _counts(summary.rows, kept, classes),
        "left_out": {db: dict(sorted(c.items())) for db, c in sorted((left_out or {}).items())},
        "selection": {**dict(selection or {}), "label_map": LABEL_MAPS[protocol]},
        "split": {
            "by": "subject, within each database", "validation_fraction": validation_fraction,
            "seed": seed,
            "validation_subjects": sorted({r["subject"] for r in summary.rows
                                           if r["split"] == "validation"}),
            "images": {name: sum(r["split"] == name for r in summary.rows) for name in SPLITS},
        },
    })
    cache.write_cache_meta(out, meta)
    return summary


def _counts(rows: list, kept: list, classes: Sequence[str]) -> dict:
    counts = {}
    for database in sorted({row["database"] for row in rows}) + ["all"]:
        part = [(row, image) for row, image in zip(rows, kept)
                if database == "all" or row["database"] == database]
        counts[database] = {
            **{name: sum(row["label"] == name for row, _ in part) for name in classes},
            "images": len(part),
            "sequences": len({(image.database, image.sequence) for _, image in part}),
            "subjects": len({row["subject"] for row, _ in part}),
        }
    return counts


# --------------------------------------------------------------------------------------------------
# Command line

def main_macro(args) -> int:
    """``python -m data_prep macro``: read the macro databases given, map their emotions to the
    protocol's classes, split by subject and prepare the cache.

    Returns 0 on success; 2 after one ``error:`` line on bad input or when no image is left.
    """
    from data_prep.index import count_table

    roots = {name: getattr(args, name, None) for name in READERS}
    if not any(roots.values()):
        print("error: give at least one macro database (--ckplus, --ckplus48, --oulu, --mmi)",
              file=sys.stderr)
        return 2
    try:
        params = macro_params(face_size=args.face_size, face_detector=args.face_detector)
        if args.peak_frames < 1:
            raise ValueError(f"--peak-frames must be at least 1, got {args.peak_frames}")
        split_by_subject([], args.validation_fraction)            # checks the fraction
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    face.check_detector(params["face_detector"])
    problems = Problems(strict=bool(getattr(args, "strict", False)))
    sequences = read_databases(roots, problems, peak_frames=args.peak_frames)
    read_dropped = len(problems)
    images, left_out = select_images(sequences, args.protocol)
    if not images:
        print(f"error: no image of the given databases has an emotion of the {args.protocol} "
              f"map ({len(sequences)} sequence(s) read, {read_dropped} dropped)", file=sys.stderr)
        return 2
    given = [name for name in READERS if roots[name] is not None]
    selection = {"peak_frames": args.peak_frames,
                 "rules": {name: PEAK_RULES[name] for name in given}}
    summary = prepare_macro_cache(
        images, args.out, params=params, protocol=args.protocol,
        validation_fraction=args.validation_fraction, seed=args.seed, selection=selection,
        left_out=left_out, workers=args.workers, problems=problems, progress=True)
    print(summary.report())
    if read_dropped:
        print(f"({read_dropped} of the dropped were whole sequences, left out by the readers)")
    print(count_table(summary.rows, protocol_classes(args.protocol)))
    for database, counts in sorted(left_out.items()):
        listed = ", ".join(f"{emotion} {n}" for emotion, n in sorted(counts.items()))
        print(f"left out ({database}, not in the {args.protocol} map): {listed} image(s)")
    meta = cache.read_cache_meta(args.out)
    held_out = meta["split"]["validation_subjects"]
    print(f"split by subject: {len(held_out)} subject(s), {meta['split']['images']['validation']} "
          f"image(s) for validation; has_neutral: {str(meta['has_neutral']).lower()}")
    if not summary.rows:
        print("error: no image could be prepared", file=sys.stderr)
        return 2
    print(f"cache written to {Path(args.out).resolve()}")
    return 0


def add_commands(commands, add_strict) -> None:
    """Declare this module's subcommand, ``macro``, on ``commands`` (argparse sub-parsers)."""
    macro = commands.add_parser(
        "macro", help="prepare macro-expression faces (CK+, CK+48, Oulu-CASIA, MMI) for "
                      "pre-training (Micro-Attention, MTMNet)")
    macro.add_argument("--protocol", required=True, choices=tuple(LABEL_MAPS),
                       help="micro protocol whose classes the macro emotions map to")
    macro.add_argument("--ckplus", type=Path,
                       help="CK+ as distributed (cohn-kanade-images/ and Emotion/)")
    macro.add_argument("--ckplus48", type=Path, help="CK+48: <emotion>/S005_001_00000011.png")
    macro.add_argument("--oulu", type=Path,
                       help="Oulu-CASIA OriginalImg (its VL/Strong set is read)")
    macro.add_argument("--mmi", type=Path,
                       help="MMI image-sequence export (Sessions/<n>/session.xml + frames)")
    macro.add_argument("--out", type=Path, required=True, help="cache folder to write")
    macro.add_argument("--face-size", type=int, default=224,
                       help="side of the square RGB face crops (default 224, as both papers)")
    macro.add_argument("--face-detector", choices=face.FACE_DETECTORS, default="haar",
                       help="'haar': OpenCV's frontal-face cascade on the neutral frame; 'none': "
                            "the images are already face crops")
    macro.add_argument("--peak-frames", type=int, default=3,
                       help="expression images per sequence (default 3: Micro-Attention's last "
                            "three frames; MMI: around the middle)")
    macro.add_argument("--validation-fraction", type=float, default=0.1,
                       help="fraction of each database's subjects held out for validation "
                            "(default 0.1, Micro-Attention Sec 3.3)")
    macro.add_argument("--seed", type=int, default=0, help="seed of the subject split (default 0)")
    macro.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    add_strict(macro)
    macro.set_defaults(main=main_macro)
