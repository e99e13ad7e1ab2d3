"""Frames -> STRCN model inputs: ``python -m data_prep strcn``.

STRCN (Z. Xia, X. Hong, X. Gao, X. Feng, G. Zhao, "Spatiotemporal recurrent convolutional networks
for recognizing spontaneous micro-expressions", IEEE Trans. Multimedia 22(3) (2020) 626-640,
doi:10.1109/TMM.2019.2931351), Sec III-B, III-C, III-E, IV-A. For every sample of a protocol, all
frames onset..offset are read in COLOUR (RGB; gray frames become three equal channels), the face box
found on the onset frame is cut from every frame, and one cache entry holds

* ``appearance``: uint8, ``length`` x H x W x 3 (default 30 x 64 x 48 x 3), STRCN-A's input before
  the dataset-wide mask of Eq. (4) (a training-time choice, PAPER_NOTES 5.7-4): the crops resized
  to ``appearance_size``, EVM-magnified at alpha = 8 (:mod:`data_prep.magnify`), all frames,
  linearly resampled to ``length`` frames (:func:`data_prep.temporal.normalize_length`);
* ``geometry``: float16, H x W x 2 (default 300 x 245 x 2), STRCN-G's input: the crops resized to
  ``geometry_size`` in gray, magnified at alpha = 8, apex by Eq. (5)
  (:func:`data_prep.temporal.std_apex`), TV-L1 flow onset -> apex (u, v in pixels of that grid);
* ``appearance_aug`` (K x length x H x W x 3 uint8) and ``geometry_aug`` (K x H x W x 2 float16):
  the K training augmentations of Sec III-E. Version k uses ``(alpha_k, f_k)`` of
  :func:`augmentation_grid`: magnify at alpha_k, THEN keep a share f_k of the frames
  (:func:`data_prep.temporal.keep_fraction`, onset always kept, seeded from the sample id and k),
  then detect the apex / normalise the length on the kept frames (PAPER_NOTES 5.7-5). The same kept
  frames serve both branches. The test-time arrays use alpha = 8 and all frames.

Documented deviations from the paper:

* Crop and alignment: the paper detects the eyes [57], fits a 68-point ASM, crops by Eq. (1) from
  the eye centres and aligns each frame with a local weighted mean warp (Eq. 2). No landmarks are
  available here, so the face box comes from :mod:`data_prep.face` (Haar cascade on the onset frame,
  the same box on every frame, no alignment), as in the flow stage.
* Order: the crops are resized to the network sizes BEFORE magnification (the paper magnifies the
  aligned crops, then resizes in Sec IV-A). EVM's per-level bound depends on the image size, so
  this gives every sample the same per-level gains whatever its face box, and is cheaper.
* Optical flow: Sun-Roth-Black's Classic(-L / +NL) [60] is not in OpenCV; OpenCV's Dual TV-L1
  (:mod:`data_prep.flow`, its defaults recorded) is the substitute PAPER_NOTES 5.7-10 allows.
* The annotated apex is not used (STRCN always finds it by Eq. 5); it is kept in the provenance and
  in the ``annotated_apex`` index column. ``apex`` in ``index.csv`` is the Eq. (5) apex of the
  test-time geometry branch, ``apex_source`` ``"std-eq5"``.

Entries, ``index.csv``, ``cache.json`` (``"kind": "strcn"``), provenance keys, reuse of valid
entries, atomic writes, the spawn pool and strict / lenient handling of bad samples are those of
the stage engine (:mod:`data_prep.stages`), as for the flow stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from data_prep import face, flow, magnify, stages, temporal
from data_prep.errors import Problems, SampleError
from data_prep.images import read_image
from data_prep.samples import Sample

ALGORITHM = "strcn"
KIND = "strcn"
#: STRCN's training magnification factors, Sec III-E: "alpha_k = [5, 14]".
ALPHA_GRID = tuple(range(5, 15))
#: STRCN's frame-keeping shares, Sec III-E.
KEEP_GRID = temporal.KEEP_FRACTIONS
APEX_SOURCE = "std-eq5"


# --------------------------------------------------------------------------------------------------
# Parameters

def augmentation_grid(count: int, alphas: Sequence[float] = ALPHA_GRID,
                      fractions: Sequence[float] = KEEP_GRID) -> list[tuple[float, float]]:
    """The ``(alpha_k, keep_fraction_k)`` of the first ``count`` augmentations.

    Version k uses ``alphas[k % A]`` and ``fractions[(k % A + k // A) % F]`` (A = 10 alphas, F = 5
    fractions): the first 10 use each alpha once with the fractions cycling 1.0, 0.9, ..., 0.6, 1.0,
    ...; each further block of 10 shifts the fractions by one, so ``count = 50`` is the paper's full
    10 x 5 grid, each pair once, and any prefix is spread over both axes.

    Raises:
        ValueError: ``count`` outside ``0..A*F``.
    """
    total = len(alphas) * len(fractions)
    if not 0 <= count <= total:
        raise ValueError(f"augment must be within 0..{total} (the {len(alphas)} x "
                         f"{len(fractions)} grid), got {count}")
    grid = []
    for k in range(count):
        i, block = k % len(alphas), k // len(alphas)
        grid.append((alphas[i], fractions[(i + block) % len(fractions)]))
    return grid


def parse_size(text: str) -> tuple[int, int]:
    """``"64x48"`` -> ``(64, 48)``: height x width."""
    try:
        height, width = (int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"a size is HEIGHTxWIDTH (e.g. 64x48), got {text!r}") from None
    return height, width


def strcn_params(*, appearance_size=(64, 48), geometry_size=(300, 245), length: int = 30,
                 augment: int = 10, alpha: float = 8, face_detector: str = "haar",
                 lambda_c: float = 16, low: float = 0.05, high: float = 0.4,
                 chrom_attenuation: float = 1.0, tvl1: Optional[Mapping] = None,
                 haar: Optional[Mapping] = None) -> dict:
    """The complete, JSON-ready parameter record of an STRCN cache (part of every entry's key).

    Args:
        appearance_size: (H, W) of STRCN-A's frames (Sec IV-A: 64 x 48).
        geometry_size: (H, W) of STRCN-G's flow (Sec IV-A: 300 x 245).
        length: frames of the temporally normalised appearance clip (Sec IV-A: 30).
        augment: training augmentations per sample, 0..50 (:func:`augmentation_grid`).
        alpha: test-time magnification (Sec IV-A: 8).
        face_detector: ``"haar"`` or ``"none"`` (frames are already crops).
        lambda_c, low, high, chrom_attenuation: EVM settings (:func:`data_prep.magnify.magnify`).
        tvl1: TV-L1 parameters overriding OpenCV's defaults (all of them are recorded).
        haar: Haar detector settings overriding :data:`data_prep.face.HAAR_DEFAULTS`.

    Raises:
        ValueError: a size or choice out of range, with the allowed values.
    """
    sizes = {}
    for name, size in (("appearance_size", appearance_size), ("geometry_size", geometry_size)):
        size = parse_size(size) if isinstance(size, str) else tuple(int(v) for v in size)
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"{name} must be (height, width), each at least 8, got {size}")
        sizes[name] = list(size)
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    grid = augmentation_grid(augment)
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"need 0 < low < high <= 1, got low={low}, high={high}")
    if face_detector not in face.FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {face.FACE_DETECTORS}, "
                         f"got {face_detector!r}")
    tvl1_values = flow.tvl1_defaults()
    unknown = sorted(set(tvl1 or {}) - set(tvl1_values))
    if unknown:
        raise ValueError(f"unknown TV-L1 parameters {unknown}; known: {list(tvl1_values)}")
    tvl1_values.update(tvl1 or {})
    haar_values = dict(face.HAAR_DEFAULTS, **(haar or {}))
    return {
        **sizes,
        "length": int(length),
        "augment": int(augment),
        "augment_alphas": [float(a) for a, _ in grid],
        "augment_fractions": [float(f) for _, f in grid],
        "alpha": float(alpha),
        "evm": {"lambda_c": float(lambda_c), "low": float(low), "high": float(high),
                "chrom_attenuation": float(chrom_attenuation),
                "exaggeration": magnify.EXAGGERATION, "pyramid": "laplacian, maxPyrHt levels"},
        "face_detector": face_detector,
        "haar": haar_values if face_detector == "haar" else None,
        "tvl1": tvl1_values,
        "colour": "cv2.imread(IMREAD_COLOR) -> RGB",
        "geometry_gray": "cv2.cvtColor(RGB2GRAY) of the crop",
        "resize": "INTER_AREA (INTER_LINEAR when enlarging), before magnification",
        "temporal_normalisation": "linear interpolation along time",
        "subsampling_seed": "sha256(sample_id) + augmentation index",
        "apex_rule": "Eq. (5) argmax_t std(I(t) - I(0)) on the magnified gray frames",
        "values": "geometry: TV-L1 u, v in pixels of the geometry grid, raw, float16",
    }


# --------------------------------------------------------------------------------------------------
# One sample

@dataclasses.dataclass
class _Plan:
    sample_id: str
    frames_dir: Path
    onset: int
    offset: int
    clip: list                     # (number, path) onset..offset


def _plan(sample: Sample) -> _Plan:
    sid = sample.sample_id
    found = stages.clip_frames(sample)    # as the flow stage: the onset frame must be there
    frames_dir, onset, offset, clip = found.frames_dir, found.onset, found.offset, found.clip
    if len(clip) < 2:
        raise SampleError(sid, frames_dir, f"too few frames: onset..offset ({onset}..{offset}) "
                                           "holds 1 frame; STRCN needs at least 2")
    return _Plan(sid, frames_dir, onset, offset, clip)


def read_rgb(path, sample_id: str) -> np.ndarray:
    """One frame as H x W x 3 uint8 RGB (a gray file gives three equal channels).

    Raises:
        SampleError: the file is truncated or OpenCV cannot decode it; names the sample and the
            file.
    """
    return read_image(path, sample_id, mode="rgb")


def crop_resize(image: np.ndarray, box: face.FaceBox, size: Sequence[int]) -> np.ndarray:
    """Cut ``box`` from ``image`` (clipped to the frame) and resize it to ``size`` = (H, W)."""
    x, y, w, h = box
    patch = image[max(0, y): y + h, max(0, x): x + w]
    if patch.size == 0:
        raise ValueError(f"box {tuple(box)} lies outside a frame of shape {image.shape}")
    height, width = size
    enlarging = patch.shape[0] < height or patch.shape[1] < width
    interpolation = cv2.INTER_LINEAR if enlarging else cv2.INTER_AREA
    return cv2.resize(patch, (int(width), int(height)), interpolation=interpolation)


def sample_seed(sample_id: str) -> int:
    """A seed from the sample id (stable across runs and machines, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(sample_id.encode("utf-8")).digest()[:8], "little")


def _read_clip(plan: _Plan, params: Mapping) -> tuple[np.ndarray, np.ndarray, face.FaceBox, str]:
    """Crops of every frame: appearance (T x H x W x 3 uint8) and geometry (T x H x W uint8 gray).

    Frames are read one at a time and cropped at once, so a long full-HD clip never sits in memory.
    """
    sid = plan.sample_id
    onset = read_rgb(plan.clip[0][1], sid)
    onset_gray = cv2.cvtColor(onset, cv2.COLOR_RGB2GRAY)
    box, box_source = face.face_box(onset_gray, params["face_detector"],
                                    **{k: v for k, v in (params["haar"] or {}).items()})
    appearance, geometry = [], []
    for position, (_, path) in enumerate(plan.clip):
        image = onset if position == 0 else read_rgb(path, sid)
        if image.shape != onset.shape:
            raise SampleError(sid, path, f"frame size differs: {image.shape[1::-1]} here, "
                                         f"{onset.shape[1::-1]} on the onset frame")
        appearance.append(crop_resize(image, box, params["appearance_size"]))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        geometry.append(crop_resize(gray, box, params["geometry_size"]))
    return np.stack(appearance), np.stack(geometry), box, box_source


def _evm(params: Mapping) -> dict:
    evm = params["evm"]
    return {"lambda_c": evm["lambda_c"], "chrom_attenuation": evm["chrom_attenuation"],
            "exaggeration": evm["exaggeration"]}


def _geometry(frames: np.ndarray, solver) -> tuple[np.ndarray, int]:
    """Eq. (5) apex of magnified gray frames and the TV-L1 onset -> apex flow (float16)."""
    apex = temporal.std_apex(frames)
    uv = flow.tvl1_flow(frames[0], frames[apex], solver)
    return uv.astype(np.float16), apex


def compute_strcn(appearance: np.ndarray, geometry: np.ndarray, params: Mapping,
                  sample_id: str, solver=None) -> tuple[dict, dict]:
    """The arrays of one entry from its crops, and what was chosen (apex positions, kept frames).

    Args:
        appearance: T x H x W x 3 uint8 crops at ``appearance_size``.
        geometry: T x H x W uint8 gray crops at ``geometry_size``.
        params: from :func:`strcn_params`.
        sample_id: seeds the frame subsampling.
        solver: a TV-L1 instance (made from ``params["tvl1"]`` when ``None``).

    Returns:
        ``(arrays, chosen)``; ``chosen`` holds ``apex_position`` (0-based in the clip),
        ``augment_apex_positions`` and ``augment_kept`` (clip positions kept per version).
    """
    evm, band = _evm(params), params["evm"]
    solver = flow.make_tvl1(params["tvl1"]) if solver is None else solver
    bands_a = magnify.bandpassed_levels(appearance, low=band["low"], high=band["high"],
                                        chrom_attenuation=band["chrom_attenuation"])
    bands_g = magnify.bandpassed_levels(geometry, low=band["low"], high=band["high"])
    test_alpha = params["alpha"]

    def at(alpha):      # only the test-time clips are kept: a long 300 x 245 clip is large
        return (magnify.recombine(bands_a, alpha, **evm), magnify.recombine(bands_g, alpha, **evm))

    length = params["length"]
    test_clips = app, geo = at(test_alpha)
    geometry_uv, apex = _geometry(geo, solver)
    arrays = {"appearance": temporal.normalize_length(app, length), "geometry": geometry_uv}
    chosen = {"apex_position": apex, "augment_apex_positions": [], "augment_kept": []}
    height_a, width_a = params["appearance_size"]
    height_g, width_g = params["geometry_size"]
    app_aug = np.zeros((params["augment"], length, height_a, width_a, 3), np.uint8)
    geo_aug = np.zeros((params["augment"], height_g, width_g, 2), np.float16)
    seed = sample_seed(sample_id)
    for k, (alpha, fraction) in enumerate(zip(params["augment_alphas"],
                                              params["augment_fractions"])):
        kept = temporal.keep_fraction(len(appearance), fraction, np.random.default_rng([seed, k]))
        app, geo = test_clips if alpha == test_alpha else at(alpha)
        app_aug[k] = temporal.normalize_length(app[kept], length)
        geo_aug[k], apex_k = _geometry(geo[kept], solver)
        chosen["augment_apex_positions"].append(int(kept[apex_k]))
        chosen["augment_kept"].append([int(p) for p in kept])
    arrays["appearance_aug"] = app_aug
    arrays["geometry_aug"] = geo_aug
    return arrays, chosen


def _compute(sample: Sample, plan: _Plan, params: Mapping) -> tuple[dict, dict]:
    """One entry's arrays and its provenance beyond the parameters (face box, apexes, kept
    frames of every augmentation)."""
    appearance, geometry, box, box_source = _read_clip(plan, params)
    arrays, chosen = compute_strcn(appearance, geometry, params, plan.sample_id)
    numbers = [n for n, _ in plan.clip]
    used = [p for _, p in plan.clip]
    extra = {
        "sample": plan.sample_id,
        "face_box": [int(v) for v in box],
        "face_box_source": box_source,
        "onset": int(plan.onset),
        "apex": int(numbers[chosen["apex_position"]]),
        "offset": int(plan.offset),
        "apex_source": APEX_SOURCE,
        "annotated_apex": None if sample.apex is None else int(sample.apex),
        "annotated_apex_source": sample.apex_source,
        "frames": [str(p.relative_to(plan.frames_dir)) for p in used],
        "augment_alphas": params["augment_alphas"],
        "augment_fractions": params["augment_fractions"],
        "augment_apex": [int(numbers[p]) for p in chosen["augment_apex_positions"]],
        "augment_kept_frames": [[int(numbers[p]) for p in kept]
                                for kept in chosen["augment_kept"]],
    }
    if params["face_detector"] == "haar":
        extra["face_cascade_file"] = str(face.haar_cascade_path(params["haar"]["cascade"]))
    return arrays, extra


def _prepare_one(sample: Sample, out: str, params: Mapping) -> tuple[str, object]:
    """Worker: one sample -> ``("computed" | "reused", info)`` or ``("error", fields)``."""
    return stages.prepare_entry(
        sample, out, params, algorithm=ALGORITHM, plan=lambda: _plan(sample),
        used=lambda plan: [p for _, p in plan.clip],
        compute=lambda plan: _compute(sample, plan, params), info_columns=("annotated_apex",))


# --------------------------------------------------------------------------------------------------
# The cache

def prepare_strcn_cache(items: Sequence[tuple], out, *, params: Mapping, workers: int = 0,
                        problems: Optional[Problems] = None, progress: bool = True,
                        protocol: str = "custom",
                        classes: Optional[Sequence[str]] = None,
                        excluded: Sequence[Mapping] = ()) -> stages.CacheSummary:
    """Prepare (or bring up to date) an STRCN cache for ``items``.

    Args:
        items: ``(sample, label)`` pairs, or ``(sample, label, row)`` whose extra index columns are
            kept in ``index.csv``. Each sample needs ``frames_dir``.
        out: the cache folder (created).
        params: from :func:`strcn_params`.
        workers: processes; 0 = ``os.cpu_count()``; 1 = in this process.
        problems: collects dropped samples; strict ones raise at the first bad sample.
        progress: show progress on stderr (a bar on a terminal, lines in a log).
        protocol, classes: written to ``cache.json``.
        excluded: the samples the protocol's index left out, with their reasons (reported and
            listed in ``cache.json``).
    """
    return stages.prepare_cache(
        items, out, params=params, prepare_one=_prepare_one, kind=KIND,
        extra_columns=("annotated_apex",), workers=workers, problems=problems,
        progress=progress, protocol=protocol, classes=classes, excluded=excluded)


# --------------------------------------------------------------------------------------------------
# Command line

def main_strcn(args) -> int:
    """``python -m data_prep strcn``: index the given databases, then prepare the STRCN cache.

    Returns 0 on success; 2 with one ``error:`` line (naming the sample and the file where there is
    one) on bad input or when no sample is left.
    """
    def make_params(args):
        return strcn_params(
            appearance_size=args.appearance_size, geometry_size=args.geometry_size,
            length=args.length, augment=args.augment, face_detector=args.face_detector,
            tvl1=getattr(args, "tvl1", None))

    return stages.cache_command(args, make_params, prepare_strcn_cache)
