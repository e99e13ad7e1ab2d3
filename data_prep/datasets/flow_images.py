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

import sys
from pathlib import Path
from typing import Optional

import numpy as np

from data_prep import cache
from data_prep.datasets.smic import COMPOSITE_CLASSES, read_composite_list
from data_prep.errors import Problems, SampleError

ALGORITHM = "imported-flow-image"
PARAMS = {
    "source_format": "STSTNet u/v/strain PNG, per-image min-max to 0..255",
    "channels": "R=u, G=v, B=optical strain (onset->apex)",
    "scaling": "float32 pixel/255",
}


def png_candidates(images, subject: str, clip: str) -> list[Path]:
    """The file names a sample's PNG may have: ``<subject>_<clip> .png``, then without the space."""
    images = Path(images)
    return [images / f"{subject}_{clip} .png", images / f"{subject}_{clip}.png"]


def read_flow_png(path, sample: str = "?") -> np.ndarray:
    """One flow PNG as float32 H x W x 3 in [0, 1] (R, G, B = u, v, strain).

    Raises:
        SampleError: the file is missing, unreadable or not a 3-channel image.
    """
    import cv2  # imported here: the rest of data_prep.datasets does not need OpenCV

    path = Path(path)
    if not path.is_file():
        raise SampleError(sample, path, "flow image missing")
    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SampleError(sample, path, "unreadable flow image: not a PNG OpenCV can decode")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SampleError(sample, path, f"flow image has shape {image.shape}, expected H x W x 3 "
                                        "(R=u, G=v, B=strain)")
    if image.dtype != np.uint8:
        raise SampleError(sample, path, f"flow image is {image.dtype}, expected 8-bit")
    rgb = image[:, :, 2::-1]  # OpenCV decodes BGR(A); the file's channel order is R, G, B
    return (rgb.astype(np.float32) / 255.0).copy()


def import_flow_images(images, labels, out, problems: Optional[Problems] = None) -> dict:
    """Write one cache entry per labelled flow PNG, then the cache's index and ``cache.json``.

    Args:
        images: the folder of PNGs.
        labels: the label CSV (see the module docstring).
        out: the cache folder to write; entries whose provenance still matches are reused.
        problems: where missing or unreadable PNGs go (default lenient); strict raises at the first.

    Returns:
        ``{"rows": index rows, "written": n, "reused": n, "dropped": n, "problems": Problems}``.
    """
    images, labels, out = Path(images), Path(labels), Path(out)
    problems = Problems() if problems is None else problems
    if not images.is_dir():
        from data_prep.errors import AnnotationError
        raise AnnotationError(images, "flow image folder not found")
    rows, written, reused, dropped = [], 0, 0, 0
    for item in read_composite_list(labels):
        database, clip = item["database"], item["clip"]
        subject = f"{database}/{item['subject']}"
        sample = f"{subject}/{clip}"
        candidates = png_candidates(images, item["subject"], clip)
        png = next((path for path in candidates if path.is_file()), None)
        try:
            if png is None:
                raise SampleError(sample, candidates[0], f"flow image missing (listed in "
                                  f"{item['where']}; also tried {candidates[1].name!r})")
            relpath = cache.entry_relpath(subject, clip)
            source_sha256 = cache.hash_files([png])
            key = cache.provenance_key(ALGORITHM, PARAMS, source_sha256)
            if cache.entry_is_valid(out / relpath, key):
                reused += 1
            else:
                flow = read_flow_png(png, sample)
                provenance = cache.make_provenance(ALGORITHM, PARAMS, source_sha256=source_sha256,
                                                   source=png.name)
                cache.write_entry(out / relpath, {"flow": flow}, provenance)
                written += 1
        except SampleError as error:
            problems.add(error)
            dropped += 1
            continue
        label = COMPOSITE_CLASSES[item["label"]]
        rows.append({"database": database, "subject": subject, "sample": clip, "label": label,
                     "emotion": label, "onset": "", "apex": "", "offset": "",
                     "apex_source": "unknown", "entry": relpath})
    cache.write_index(out, rows)
    cache.write_cache_meta(out, {
        "kind": "imported-flow-images", "protocol": "cde", "classes": list(COMPOSITE_CLASSES),
        "source": str(images), "labels": str(labels), "params": PARAMS,
    })
    return {"rows": rows, "written": written, "reused": reused, "dropped": dropped,
            "problems": problems}


def main_import(args) -> int:
    """``python -m data_prep import-flow-images --images DIR --labels CSV --out DIR [--strict]``."""
    from data_prep.index import count_table

    problems = Problems(strict=bool(getattr(args, "strict", False)))
    result = import_flow_images(args.images, args.labels, args.out, problems)
    print(count_table(result["rows"], COMPOSITE_CLASSES))
    print(f"wrote {args.out}: {len(result['rows'])} samples ({result['written']} written, "
          f"{result['reused']} reused, {result['dropped']} dropped)")
    if len(problems):
        print(problems.summary(), file=sys.stderr)
    return 0
