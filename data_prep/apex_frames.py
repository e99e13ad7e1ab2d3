"""Apex face frames (Micro-Attention, MTMNet): ``python -m data_prep frames`` and
``python -m data_prep import-apex-images``.

Both models learn from face images, not from flow. Micro-Attention (C. Wang, M. Peng, T. Bi,
T. Chen, "Micro-Attention for Micro-Expression Recognition") Sec 4.1 uses "an apex frame" per
clip; "for SMIC, that the apex frame is not marked, we use the frame at the middle of each video
clip"; the face is "normalized into 224 x 224 pixels". MTMNet (B. Xia, W. Wang, S. Wang, E. Chen,
"Learning from Macro-expression: a Micro-expression Recognition Framework", ACM MM 2020) Sec 4.1:
"only five frames centered at the apex frame are chosen", "all facial images are resized to
224x224", and EIDNet pairs each expression image with a neutral image of the same video (Sec 3);
the neutral frame here is the ONSET frame (PAPER_NOTES 4.1 [choice]).

``frames`` uses the flow stage's readers, index and face crop (:mod:`data_prep.pipeline`): the
face box is found on the onset frame (read in grayscale exactly as the flow stage reads it, so both
stages cut the same box) and that box is cut from every frame used, resized to ``face_size`` x
``face_size``. One entry per sample holds

* ``frames``: uint8 K x S x S x 3, RGB: the K frames centred on the apex (:func:`apex_window`);
* ``neutral``: uint8 S x S x 3, RGB: the onset frame;

and its provenance: every parameter, the SHA-256 of the frame files read, the face box and its
source, the apex and its source, the frame numbers actually used. ``index.csv`` has the flow
stage's columns; ``cache.json`` says ``"kind": "frames"`` and ``"has_neutral": true``.

``import-apex-images`` turns the 442 public MEGC2019 apex crops (HTNet's
``datasets/combined_datasets_whole``, 224 x 224 JPG; shared/data/wangzhifengharrison_HTNet/
PROVENANCE.md) into the same format: ``frames`` 1 x S x S x 3 uint8 RGB and NO ``neutral`` (the
crops come without their onset frame), ``"kind": "imported-apex-images"``, ``"has_neutral":
false``. Its index rows are those of ``import-flow-images`` for the same label list: same ids, same
order.

Both load with ``data_prep.cache.load_cache(cache, arrays=("frames",))`` (and ``"neutral"`` for a
``frames`` cache). Colour is RGB (PAPER_NOTES 2.1 [choice]: implied by the ImageNet initialisation);
a grayscale frame file becomes three equal channels.

Deviations and choices:

* Face: Micro-Attention segments the face with AAM [40] (MTMNet does not say how), and
  PAPER_NOTES 2.7-11 suggests a 68-landmark crop instead. Neither is used: the crop is the flow
  stage's Haar box on the onset frame, without alignment (:mod:`data_prep.face`), so that the
  face-image and the flow caches of one database cut the same face.
* The window is counted in frame NUMBERS; a frame missing inside it is a bad sample (as a missing
  apex frame is in the flow stage), not skipped over.
* SMIC's apex (``--apex-rule``, default ``middle``) is recorded as ``apex_source``; the rules that
  look at the frames (``interframe-diff``, ``dc-rois``) run on grayscale crops at ``face_size``, so
  they may pick another frame than the flow stage at its 128 px.
* The imported crops are HTNet's; what frame they show and how they were cropped is not documented
  beyond "read as the apex frame" (PROVENANCE.md), so ``apex_source`` is ``"unknown"`` there.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from data_prep import apex as apex_rules
from data_prep import face, stages
from data_prep.datasets.frames import frame_for
from data_prep.datasets.flow_images import ListedImage, listed_images
from data_prep.datasets.smic import COMPOSITE_CLASSES
from data_prep.errors import AnnotationError, Problems, SampleError
from data_prep.images import read_image
from data_prep.samples import Sample
from data_prep.strcn import crop_resize, read_rgb

ALGORITHM = "apex-frames"
KIND = "frames"
IMPORT_ALGORITHM = "imported-apex-image"
IMPORT_KIND = "imported-apex-images"
COLOUR = "RGB uint8"
RESIZE = "INTER_AREA (INTER_LINEAR when enlarging)"
#: Label-list columns that name a sample's apex image (HTNet's CSV; the ``manifest_442.csv`` files).
IMAGE_COLUMNS = ("imagename", "apex_jpg")


# --------------------------------------------------------------------------------------------------
# Parameters

def frames_params(*, frames: int = 1, face_size: int = 224, face_detector: str = "haar",
                  apex_rule: str = "middle", haar: Optional[Mapping] = None) -> dict:
    """The complete, JSON-ready parameter record of a ``frames`` cache (part of every entry's key).

    Args:
        frames: K, the frames centred on the apex (1: Micro-Attention Sec 4.1; 5: MTMNet Sec 4.1).
        face_size: side of the square RGB face crop (224 in both papers).
        face_detector: ``"haar"`` or ``"none"`` (frames are already crops).
        apex_rule: rule for samples without an annotated apex (SMIC): ``"middle"`` (the default,
            Micro-Attention Sec 4.1: "the frame at the middle of each video clip"),
            ``"interframe-diff"`` or ``"dc-rois"`` (``data_prep.apex``). MTMNet does not say
            (PAPER_NOTES 4.1).
        haar: Haar detector settings overriding :data:`data_prep.face.HAAR_DEFAULTS`.

    Raises:
        ValueError: a size or choice out of range, with the allowed values.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    face.check_face_settings(face_size, face_detector)
    if apex_rule not in apex_rules.APEX_RULES:
        raise ValueError(f"apex_rule must be one of {apex_rules.APEX_RULES}, got {apex_rule!r}")
    return {
        "frames": int(frames),
        "face_size": int(face_size),
        "face_detector": face_detector,
        "haar": dict(face.HAAR_DEFAULTS, **(haar or {})) if face_detector == "haar" else None,
        "apex_rule": apex_rule,
        "window": "frame numbers apex-K//2 .. apex-K//2+K-1, each clamped to onset..offset "
                  "(the edge frame repeats)",
        "neutral": "onset frame",
        "has_neutral": True,
        "colour": COLOUR,
        "read": "cv2.imread(IMREAD_COLOR) -> RGB; face box on cv2.imread(IMREAD_GRAYSCALE) of "
                "the onset frame, as the flow stage",
        "apex_rule_input": "grayscale face crops at face_size (interframe-diff, dc-rois)",
        "face_resize": RESIZE,
    }


def import_params(*, face_size: int = 224) -> dict:
    """The parameter record of an ``imported-apex-images`` cache (part of every entry's key).

    Raises:
        ValueError: ``face_size`` below 16.
    """
    face.check_face_settings(face_size)
    return {
        "source_format": "MEGC2019 apex face crop JPG (HTNet datasets/combined_datasets_whole, "
                         "224 x 224 RGB)",
        "frames": 1,
        "face_size": int(face_size),
        "has_neutral": False,
        "colour": COLOUR,
        "read": "cv2.imdecode(IMREAD_COLOR) -> RGB",
        "face_resize": f"{RESIZE}, only where the file is not face_size x face_size",
    }


def apex_window(apex: int, onset: int, offset: int, count: int) -> list[int]:
    """The ``count`` frame numbers centred on ``apex``, clamped to ``onset..offset``.

    MTMNet Sec 4.1: "five frames centered at the apex frame". Numbers ``apex - count // 2`` to
    ``apex - count // 2 + count - 1`` (an even ``count`` takes one more frame before the apex than
    after it); each number outside ``onset..offset`` becomes the nearer edge, so a clip too short,
    or an apex near an end, repeats the edge frame: ``apex_window(10, 10, 20, 5)`` is
    ``[10, 10, 10, 11, 12]``.

    Raises:
        ValueError: ``count`` below 1 or ``apex`` outside ``onset..offset``.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not onset <= apex <= offset:
        raise ValueError(f"apex {apex} is not within onset..offset {onset}..{offset}")
    start = int(apex) - count // 2
    return [min(max(start + i, int(onset)), int(offset)) for i in range(count)]


# --------------------------------------------------------------------------------------------------
# One sample

@dataclasses.dataclass
class _Plan:
    """Which frames a sample needs, decided from file names alone (no image is decoded)."""

    sample_id: str
    found: stages.ClipFrames
    apex: Optional[int]            # None: estimate it by params["apex_rule"] from ``clip``
    clip: list                     # (number, path) onset..offset, for the apex rule
    window: list                   # (number, path) of the K frames, when the apex is known
    used: list                     # every file read, in a fixed order (hashed for provenance)


def _needs_apex(sample: Sample) -> bool:
    return sample.apex is None or sample.apex_source == "none"


def _window(found: stages.ClipFrames, apex: int, count: int, sample_id: str) -> list:
    numbers = apex_window(apex, found.onset, found.offset, count)
    return [(n, frame_for(found.frames, n, sample_id, found.frames_dir)) for n in numbers]


def _plan(sample: Sample, params: Mapping) -> _Plan:
    sid = sample.sample_id
    found = stages.clip_frames(sample)
    apex, clip, window = None, [], []
    if not _needs_apex(sample):
        apex = int(sample.apex)
        if not found.onset <= apex <= found.offset:
            raise SampleError(sid, found.frames_dir, f"apex outside onset..offset: apex {apex} "
                                                     f"is not within {found.onset}..{found.offset}")
    elif params["apex_rule"] == "middle":
        apex = apex_rules.middle_apex(found.onset, found.offset)
    else:
        clip = found.clip
    if apex is not None:
        window = _window(found, apex, params["frames"], sid)
    used = [found.onset_path] + [p for _, p in window] + [p for _, p in clip]
    return _Plan(sid, found, apex, clip, window, list(dict.fromkeys(used)))


def _read_gray(path: Path, sample_id: str) -> np.ndarray:
    return read_image(path, sample_id, mode="gray")


def _same_size(image: np.ndarray, onset: np.ndarray, sample_id: str, path: Path) -> None:
    if image.shape[:2] != onset.shape[:2]:
        here, there = (image.shape[1], image.shape[0]), (onset.shape[1], onset.shape[0])
        raise SampleError(sample_id, path, f"frame size differs: {here} here, {there} on the "
                                           "onset frame")


def _compute(sample: Sample, plan: _Plan, params: Mapping) -> tuple[dict, dict]:
    """The arrays of one entry and the provenance fields that are not the key."""
    sid, size, found = plan.sample_id, params["face_size"], plan.found
    onset_gray = _read_gray(found.onset_path, sid)
    box, box_source = face.face_box(onset_gray, params["face_detector"],
                                    **{k: v for k, v in (params["haar"] or {}).items()})
    apex, window = plan.apex, plan.window
    if apex is None:      # interframe-diff / dc-rois on the grayscale crops of onset..offset
        faces = []
        for _, path in plan.clip:
            gray = onset_gray if path == found.onset_path else _read_gray(path, sid)
            _same_size(gray, onset_gray, sid, path)
            faces.append(face.crop_face(gray, box, size))
        apex = apex_rules.estimate_apex(params["apex_rule"], [n for n, _ in plan.clip], faces)
        window = _window(found, apex, params["frames"], sid)
    crops: dict[Path, np.ndarray] = {}
    for path in dict.fromkeys([found.onset_path] + [p for _, p in window]):
        rgb = read_rgb(path, sid)
        _same_size(rgb, onset_gray, sid, path)
        crops[path] = crop_resize(rgb, box, (size, size))
    arrays = {
        "frames": np.stack([crops[p] for _, p in window]).astype(np.uint8),
        "neutral": crops[found.onset_path].astype(np.uint8),
    }
    extra = {
        "sample": sid,
        "face_box": [int(v) for v in box],
        "face_box_source": box_source,
        "onset": int(found.onset),
        "apex": int(apex),
        "offset": int(found.offset),
        "apex_source": params["apex_rule"] if _needs_apex(sample) else sample.apex_source,
        "frames": [str(p.relative_to(found.frames_dir)) for p in plan.used],
        "frame_numbers": [int(n) for n, _ in window],
        "neutral_frame": int(found.onset),
    }
    if params["face_detector"] == "haar":  # which file, on this machine (not part of the key)
        extra["face_cascade_file"] = str(face.haar_cascade_path(params["haar"]["cascade"]))
    return arrays, extra


def _prepare_one(sample: Sample, out: str, params: Mapping) -> tuple[str, object]:
    """Worker: one sample -> ``("computed" | "reused", info)`` or ``("error", fields)``."""
    return stages.prepare_entry(sample, out, params, algorithm=ALGORITHM,
                                plan=lambda: _plan(sample, params), used=lambda plan: plan.used,
                                compute=lambda plan: _compute(sample, plan, params))


# --------------------------------------------------------------------------------------------------
# The cache

def prepare_frames_cache(items: Sequence[tuple], out, *, params: Mapping, workers: int = 0,
                         problems: Optional[Problems] = None, progress: bool = True,
                         protocol: str = "custom",
                         classes: Optional[Sequence[str]] = None,
                         excluded: Sequence[Mapping] = ()) -> stages.CacheSummary:
    """Prepare (or bring up to date) a ``frames`` cache for ``items``.

    Args:
        items: ``(sample, label)`` pairs, or ``(sample, label, row)`` whose extra index columns are
            kept in ``index.csv``. Each sample needs ``frames_dir``. Samples whose ``apex_source``
            is ``"none"`` (or whose apex is ``None``) get ``params["apex_rule"]``.
        out: the cache folder (created).
        params: from :func:`frames_params`.
        workers: processes; 0 = ``os.cpu_count()``; 1 = in this process.
        problems: collects dropped samples; strict ones raise at the first bad sample.
        progress: show progress on stderr (a bar on a terminal, lines in a log).
        protocol, classes: written to ``cache.json``.
        excluded: the samples the protocol's index left out, with their reasons (reported and
            listed in ``cache.json``).

    Raises:
        SampleError: the first bad sample, when ``problems`` is strict.
        face.MissingCascadeError: ``face_detector="haar"`` and no cascade file on this machine.
    """
    face.check_detector(params["face_detector"], (params.get("haar") or {}).get(
        "cascade", face.HAAR_CASCADE))
    return stages.prepare_cache(items, out, params=params, prepare_one=_prepare_one, kind=KIND,
                                workers=workers, problems=problems, progress=progress,
                                protocol=protocol, classes=classes, excluded=excluded)


# --------------------------------------------------------------------------------------------------
# Import of the public MEGC2019 apex crops

def _image_column(labels: Path) -> Optional[int]:
    """The position of the column naming the apex image in the list's header, or ``None``."""
    with open(labels, encoding="utf-8-sig", newline="") as handle:
        header = [cell.strip().lower() for cell in next(csv.reader(handle), [])]
    return next((header.index(name) for name in IMAGE_COLUMNS if name in header), None)


def image_candidates(images, item: Mapping, column: Optional[int] = None) -> list[Path]:
    """The files a listed sample's apex image may be, in the order tried.

    The list's own name first (``imagename``; the base name of ``apex_jpg``), then
    ``<subject>_<clip>.jpg``, then for SMIC the HTNet spelling with the clip's subject number
    unpadded (``s01_s1_ne_01.jpg``, PROVENANCE.md).

    Args:
        images: the folder of JPGs.
        item: a row of :func:`data_prep.datasets.smic.read_composite_list`.
        column: the position of the image-name column in ``item["fields"]`` (``None``: none).
    """
    images = Path(images)
    names = []
    fields = item.get("fields") or []
    if column is not None and column < len(fields) and fields[column].strip():
        names.append(Path(fields[column].strip().replace("\\", "/")).name)
    subject, clip = item["subject"], item["clip"]
    names.append(f"{subject}_{clip}.jpg")
    if item["database"] == "smic" and clip.startswith(f"{subject}_"):
        number = int(subject[1:]) if subject[1:].isdigit() else None
        if number is not None:
            names.append(f"{subject}_s{number}{clip[len(subject):]}.jpg")
    return [images / name for name in dict.fromkeys(names)]


def read_apex_image(path, sample: str = "?", size: Optional[int] = None) -> np.ndarray:
    """One apex crop as uint8 H x W x 3 RGB, resized to ``size`` x ``size`` unless it is already.

    Raises:
        SampleError: the file is missing, truncated, or OpenCV cannot decode it.
    """
    path = Path(path)
    if not path.is_file():
        raise SampleError(sample, path, "apex image missing")
    rgb = read_image(path, sample, mode="rgb", kind="apex image")
    if size is not None and rgb.shape[:2] != (size, size):
        rgb = crop_resize(rgb, face.full_frame(rgb), (size, size))
    return rgb.astype(np.uint8)


def _import_plan(item: ListedImage) -> Path:
    path = item.found()
    if path is None:
        others = [Path(p).name for p in item.candidates[1:]]
        raise SampleError(item.sample_id, item.candidates[0], f"apex image missing (listed in "
                          f"{item.where}; also tried {others})")
    return path


def _import_one(item: ListedImage, out: str, params: Mapping) -> tuple[str, object]:
    """Engine worker: one listed apex crop -> ``("computed" | "reused", info)`` or an error."""
    def compute(path):
        rgb = read_apex_image(path, item.sample_id, params["face_size"])
        return {"frames": rgb[np.newaxis]}, {"sample": item.sample_id, "source": path.name}

    return stages.prepare_entry(item, out, params, algorithm=IMPORT_ALGORITHM,
                                plan=lambda: _import_plan(item), used=lambda path: [path],
                                compute=compute)


def import_apex_images(images, labels, out, problems: Optional[Problems] = None, *,
                       face_size: int = 224, progress: bool = False) -> stages.CacheSummary:
    """Write one cache entry per labelled apex crop, then the cache's index and ``cache.json``.

    Runs on the stage engine (:func:`data_prep.stages.prepare_cache`): entries whose provenance
    still matches and whose arrays are sound are reused, the rest written again.

    Args:
        images: the folder of JPGs (HTNet's ``datasets/combined_datasets_whole``).
        labels: a MEGC2019 label list (HTNet's ``combined_3_class2_for_optical_flow.csv``, whose
            ``imagename`` column names the files; a ``manifest_442.csv``; ``combined_3_class_gt``).
        out: the cache folder to write.
        problems: where missing or unreadable images go (default lenient); strict raises at the
            first.
        face_size: side of the stored crops (224: the files' own size, kept as they are).
        progress: show progress on stderr (a bar on a terminal, lines in a log).

    Returns:
        A :class:`data_prep.stages.CacheSummary` (``computed`` = entries written); its rows are
        those of :func:`data_prep.datasets.flow_images.import_flow_images` for the same list (same
        ids, same order) but for the samples dropped.

    Raises:
        AnnotationError: no image folder, or a label list that cannot be read or lists a sample
            twice.
        ValueError: ``face_size`` below 16.
    """
    images, labels, out = Path(images), Path(labels), Path(out)
    params = import_params(face_size=face_size)
    if not images.is_dir():
        raise AnnotationError(images, "apex image folder not found")
    column = _image_column(labels) if labels.is_file() else None
    items = listed_images(labels, lambda row: image_candidates(images, row, column))
    return stages.prepare_cache([(item, item.emotion) for item in items], out, params=params,
                                prepare_one=_import_one, kind=IMPORT_KIND, workers=1,
                                problems=problems, progress=progress, protocol="cde",
                                classes=COMPOSITE_CLASSES,
                                meta={"source": str(images), "labels": str(labels)})


# --------------------------------------------------------------------------------------------------
# Command line

def main_frames(args) -> int:
    """``python -m data_prep frames``: index the given databases, then prepare the frames cache.

    Returns 0 on success; 2 with one ``error:`` line (naming the sample and the file where there is
    one) on bad input or when no sample is left.
    """
    def make_params(args):
        return frames_params(frames=args.frames, face_size=args.face_size,
                             face_detector=args.face_detector, apex_rule=args.apex_rule)

    return stages.cache_command(args, make_params, prepare_frames_cache)


def main_import_apex(args) -> int:
    """``python -m data_prep import-apex-images --images DIR --labels CSV --out DIR``."""
    from data_prep.index import count_table

    problems = Problems(strict=bool(getattr(args, "strict", False)))
    try:
        import_params(face_size=args.face_size)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = import_apex_images(args.images, args.labels, args.out, problems,
                                 face_size=args.face_size)
    print(count_table(summary.rows, COMPOSITE_CLASSES))
    print(summary.report())
    if not summary.rows:
        print("error: no apex image could be imported", file=sys.stderr)
        return 2
    return 0


def add_commands(commands, add_strict) -> None:
    """Declare ``frames`` and ``import-apex-images`` on ``commands`` (argparse sub-parsers)."""
    frames = commands.add_parser(
        "frames", help="prepare a cache of apex face crops (RGB, K frames around the apex, the "
                       "onset as neutral frame) for Micro-Attention and MTMNet")
    frames.add_argument("--protocol", required=True, help="protocol whose samples to prepare")
    frames.add_argument("--casme2", type=Path, help="CASME II root")
    frames.add_argument("--samm", type=Path, help="SAMM root")
    frames.add_argument("--smic", type=Path, help="SMIC root")
    frames.add_argument("--out", type=Path, required=True, help="cache folder to write")
    frames.add_argument("--frames", type=int, default=1,
                        help="K frames centred on the apex (default 1, Micro-Attention; "
                             "MTMNet uses 5)")
    frames.add_argument("--face-size", type=int, default=224,
                        help="side of the square RGB face crop (default 224, as both papers)")
    frames.add_argument("--face-detector", choices=face.FACE_DETECTORS, default="haar",
                        help="'haar': OpenCV's frontal-face cascade on the onset frame; "
                             "'none': frames are already face crops")
    frames.add_argument("--apex-rule", choices=apex_rules.APEX_RULES, default="middle",
                        help="how to find the apex where the release gives none (SMIC); default "
                             "middle, Micro-Attention Sec 4.1")
    frames.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    add_strict(frames)
    frames.set_defaults(main=main_frames)

    imported = commands.add_parser(
        "import-apex-images",
        help="import the public MEGC2019 apex face crops (HTNet's 224 x 224 JPGs) into a cache")
    imported.add_argument("--images", type=Path, required=True, help="folder of the JPG files")
    imported.add_argument("--labels", type=Path, required=True,
                          help="the label CSV (its imagename column names the files)")
    imported.add_argument("--out", type=Path, required=True, help="cache folder to write")
    imported.add_argument("--face-size", type=int, default=224,
                          help="side of the stored crops (default 224: the files as they are)")
    add_strict(imported)
    imported.set_defaults(main=main_import_apex)
