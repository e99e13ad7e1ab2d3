"""Import the precomputed MEGC2019 flow images (STSTNet / HTNet) into the ``.npz`` cache format.

The images are 28 x 28 RGB PNGs, one per CDE sample: R = horizontal flow u, G = vertical flow v,
B = optical strain, onset -> apex, each channel min-max stretched to 0..255 per image (HTNet's
``datasets/STSNet_whole_norm_u_v_os``; see shared/data/wangzhifengharrison_HTNet/PROVENANCE.md).
Names are ``<subject>_<clip> .png`` with a space before ``.png`` (``sub01_EP02_01f .png``,
``006_006_1_2 .png``, ``s01_s01_ne_01 .png``); names without the space are accepted too.

The cache entry of a sample holds ``flow``: float32 H x W x 3, pixel / 255, so in [0, 1]. The
labels come from a MEGC2019 list (HTNet's ``combined_3_class2_for_optical_flow.csv``, the
``manifest_442.csv`` files or ``combined_3_class_gt.csv``); 0 negative, 1 positive, 2 surprise.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from data_prep.datasets.smic import COMPOSITE_CLASSES, read_composite_list
from data_prep.errors import AnnotationError, Problems, SampleError

ALGORITHM = "imported-flow-image"
KIND = "imported-flow-images"
PARAMS = {
    "source_format": "STSTNet u/v/strain PNG, per-image min-max to 0..255",
    "channels": "R=u, G=v, B=optical strain (onset->apex)",
    "scaling": "float32 pixel/255",
}


# --------------------------------------------------------------------------------------------------
# The label list

def read_label_list(labels) -> list[dict]:
    """The rows of a MEGC2019 label list (:func:`data_prep.datasets.smic.read_composite_list`),
    each sample listed once: what both imports (flow images, apex images) read.

    Raises:
        AnnotationError: the list cannot be read, or lists a sample twice (naming both rows and
            their labels: a sample scored twice, possibly with two true labels, would corrupt
            every metric).
    """
    rows = read_composite_list(labels)
    first: dict[tuple, dict] = {}
    for row in rows:
        key = (row["database"], row["subject"], row["clip"])
        if key in first:
            other = first[key]
            labels_said = (f"labels {COMPOSITE_CLASSES[other['label']]} and "
                           f"{COMPOSITE_CLASSES[row['label']]}" if other["label"] != row["label"]
                           else f"both {COMPOSITE_CLASSES[row['label']]}")
            raise AnnotationError(labels, f"sample {row['database']}/{row['subject']}/"
                                          f"{row['clip']} is listed twice, {other['where']} and "
                                          f"{row['where']} ({labels_said}); keep one row")
        first[key] = row
    return rows


@dataclasses.dataclass(frozen=True)
class ListedImage:
    """One sample of a label list and the image files it may be: the sample record the stage
    engine (:mod:`data_prep.stages`) takes for the imports.

    Attributes:
        database, subject (prefixed: ``"casme2/sub01"``), clip: the sample.
        emotion: its class name (the label).
        candidates: the files it may be, in the order tried (the first one that exists is used).
        where: the list file and row.
        size: ``(width, height)`` every image of the import must have (``None``: not checked).
        onset, apex, offset, apex_source: for the index (no frames: unknown).
    """

    database: str
    subject: str
    clip: str
    emotion: str
    candidates: tuple
    where: str
    size: Optional[tuple] = None
    onset: Optional[int] = None
    apex: Optional[int] = None
    offset: Optional[int] = None
    apex_source: str = "unknown"

    @property
    def sample_id(self) -> str:
        return f"{self.subject}/{self.clip}"

    @property
    def frames_dir(self) -> str:
        return str(Path(self.candidates[0]).parent)

    def found(self) -> Optional[Path]:
        """The first candidate file that exists, or ``None``."""
        return next((Path(p) for p in self.candidates if Path(p).is_file()), None)


def listed_images(labels, candidates) -> list[ListedImage]:
    """The samples of label list ``labels``, each with ``candidates(row)``, its possible files."""
    return [ListedImage(database=row["database"], subject=f"{row['database']}/{row['subject']}",
                        clip=row["clip"], emotion=COMPOSITE_CLASSES[row["label"]],
                        candidates=tuple(str(p) for p in candidates(row)), where=row["where"])
            for row in read_label_list(labels)]


# --------------------------------------------------------------------------------------------------
# One image

def png_candidates(images, subject: str, clip: str) -> list[Path]:
    """The file names a sample's PNG may have: ``<subject>_<clip> .png``, then without the space."""
    images = Path(images)
    return [images / f"{subject}_{clip} .png", images / f"{subject}_{clip}.png"]


def png_size(path) -> Optional[tuple]:
    """``(width, height)`` from a PNG's header (24 bytes read), or ``None`` if it is no PNG."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _size_error(sample: str, path, size: tuple, expected: tuple, count: str) -> SampleError:
    return SampleError(sample, path, f"flow image size differs: {size[0]} x {size[1]} here, "
                                     f"{expected[0]} x {expected[1]} for {count} images of the "
                                     "list; every flow image of a cache must have one size")


def read_flow_png(path, sample: str = "?", size: Optional[tuple] = None) -> np.ndarray:
    """One flow PNG as float32 H x W x 3 in [0, 1] (R, G, B = u, v, strain).

    Args:
        path: the file.
        sample: the sample id, for the messages.
        size: ``(width, height)`` the image must have (``None``: any).

    Raises:
        SampleError: the file is missing, empty, cut short, unreadable, not a 3-channel 8-bit
            image, or not ``size``.
    """
    import cv2  # imported here: the rest of data_prep.datasets does not need OpenCV

    from data_prep.images import image_problem

    path = Path(path)
    if not path.is_file():
        raise SampleError(sample, path, "flow image missing")
    data = path.read_bytes()
    problem = image_problem(data)
    if problem:
        raise SampleError(sample, path, f"{'unreadable' if not data else 'truncated'} flow "
                                        f"image: {problem}")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise SampleError(sample, path, "unreadable flow image: not a PNG OpenCV can decode")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SampleError(sample, path, f"flow image has shape {image.shape}, expected H x W x 3 "
                                        "(R=u, G=v, B=strain)")
    if image.dtype != np.uint8:
        raise SampleError(sample, path, f"flow image is {image.dtype}, expected 8-bit")
    if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        raise _size_error(sample, path, (image.shape[1], image.shape[0]), size, "the other")
    rgb = image[:, :, 2::-1]  # OpenCV decodes BGR(A); the file's channel order is R, G, B
    return (rgb.astype(np.float32) / 255.0).copy()


def _with_common_size(items: list) -> list:
    """``items`` with ``size`` set to the size most of their PNGs have (read from the headers)."""
    sizes = {item.sample_id: png_size(path) for item in items
             if (path := item.found()) is not None}
    counts = collections.Counter(size for size in sizes.values() if size is not None)
    if not counts:
        return items
    common, _ = counts.most_common(1)[0]
    return [dataclasses.replace(item, size=common) for item in items]


def _plan(item: ListedImage) -> Path:
    path = item.found()
    if path is None:
        raise SampleError(item.sample_id, item.candidates[0], f"flow image missing (listed in "
                          f"{item.where}; also tried {Path(item.candidates[1]).name!r})")
    size = png_size(path)
    if item.size is not None and size is not None and size != item.size:
        raise _size_error(item.sample_id, path, size, item.size, "most")
    return path


def _prepare_one(item: ListedImage, out: str, params: Mapping) -> tuple[str, object]:
    """Engine worker: one listed PNG -> ``("computed" | "reused", info)`` or ``("error", ...)``."""
    from data_prep.stages import prepare_entry

    return prepare_entry(
        item, out, params, algorithm=ALGORITHM, plan=lambda: _plan(item), used=lambda path: [path],
        compute=lambda path: ({"flow": read_flow_png(path, item.sample_id, item.size)},
                              {"sample": item.sample_id, "source": path.name}))


# --------------------------------------------------------------------------------------------------
# The import

def import_flow_images(images, labels, out, problems: Optional[Problems] = None, *,
                       progress: bool = False):
    """Write one cache entry per labelled flow PNG, then the cache's index and ``cache.json``.

    Runs on the stage engine (:func:`data_prep.stages.prepare_cache`): entries whose provenance
    still matches and whose arrays are sound are reused, the rest written again.

    Args:
        images: the folder of PNGs.
        labels: the label CSV (see the module docstring).
        out: the cache folder to write.
        problems: where missing, unreadable or odd-sized PNGs go (default lenient); strict raises
            at the first. The size every PNG must have is the one most of them have.
        progress: show progress on stderr (a bar on a terminal, lines in a log).

    Returns:
        A :class:`data_prep.stages.CacheSummary` (``computed`` = entries written).

    Raises:
        AnnotationError: no image folder, or a label list that cannot be read or lists a sample
            twice.
        SampleError: the first bad PNG, when ``problems`` is strict.
    """
    from data_prep.stages import prepare_cache

    images, labels, out = Path(images), Path(labels), Path(out)
    if not images.is_dir():
        raise AnnotationError(images, "flow image folder not found")
    items = listed_images(labels, lambda row: png_candidates(images, row["subject"], row["clip"]))
    items = _with_common_size(items)
    return prepare_cache([(item, item.emotion) for item in items], out, params=PARAMS,
                         prepare_one=_prepare_one, kind=KIND, workers=1, problems=problems,
                         progress=progress, protocol="cde", classes=COMPOSITE_CLASSES,
                         meta={"source": str(images), "labels": str(labels)})


def main_import(args) -> int:
    """``python -m data_prep import-flow-images --images DIR --labels CSV --out DIR [--strict]``."""
    from data_prep.index import count_table

    problems = Problems(strict=bool(getattr(args, "strict", False)))
    summary = import_flow_images(args.images, args.labels, args.out, problems)
    print(count_table(summary.rows, COMPOSITE_CLASSES))
    print(summary.report())
    if not summary.rows:
        print("error: no flow image could be imported", file=sys.stderr)
        return 2
    return 0
