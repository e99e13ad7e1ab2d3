"""Frames -> cached model inputs: ``python -m data_prep flow``.

For every sample: read the frames it needs as 8-bit grayscale, find the face box on the ONSET frame
(:mod:`data_prep.face`), cut that same box from every frame and resize it to ``face_size``, estimate
the apex where the release has none (:mod:`data_prep.apex`), then compute TV-L1 onset->apex flow and
optical strain resized to ``flow_size`` (:mod:`data_prep.flow`). One ``.npz`` entry per sample holds

* ``flow``: S x S x 3 float32 (u, v, strain), RAW values (see :data:`data_prep.flow.VALUES_NOTE`);
* ``onset_face``, ``apex_face``: ``face_size`` x ``face_size`` uint8 grayscale crops;
* ``sequence_flow`` (when ``sequence_length`` > 0): T x S x S x 2 float32 onset->frame t flow for T
  frames spread uniformly over onset..offset, both ends included (so step 0 is onset->onset, zero).

and its provenance: every parameter, the SHA-256 of the frame files used, the face box and its
source, the apex and its source. A rerun reuses every entry whose provenance key still matches and
recomputes the rest, so a changed parameter or frame invalidates, and a killed run resumes.

Reuse-or-compute, the parallel run and the report are the stage engine's (:mod:`data_prep.stages`):
work runs in parallel over processes (``spawn``: safe when TensorFlow is loaded in the caller), one
OpenCV thread each. Bad input (a missing frame, an unreadable image) becomes a ``SampleError``
naming the sample and the file; it crosses the process boundary as plain fields, and the run stops
(strict) or drops the sample and reports it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from data_prep import apex as apex_rules
from data_prep import face, flow
from data_prep.datasets.frames import frame_for
from data_prep.errors import Problems, SampleError
from data_prep.samples import Sample
from data_prep.stages import CacheSummary, cache_command, clip_frames, prepare_cache, prepare_entry

ALGORITHM = "tvl1"


# --------------------------------------------------------------------------------------------------
# Parameters

def flow_params(*, face_size: int = 128, flow_size: int = 28, sequence_length: int = 0,
                face_detector: str = "haar", apex_rule: str = "interframe-diff",
                tvl1: Optional[Mapping] = None, haar: Optional[Mapping] = None) -> dict:
    """The complete, JSON-ready parameter record of a flow cache (part of every entry's key).

    Args:
        face_size: side of the square face crop the flow is computed on.
        flow_size: side of the stored u / v / strain maps (28 in FR and OFF-ApexNet).
        sequence_length: frames of onset->frame flow to store as ``sequence_flow`` (0: none).
        face_detector: ``"haar"`` or ``"none"`` (frames are already crops).
        apex_rule: rule for samples without an annotated apex: ``"interframe-diff"`` (FR Eq. 1),
            ``"middle"`` or ``"dc-rois"`` (OFF-ApexNet's D&C-RoIs, ``data_prep.apex``).
        tvl1: TV-L1 parameters overriding OpenCV's defaults (all of them are recorded).
        haar: Haar detector settings overriding :data:`data_prep.face.HAAR_DEFAULTS`.

    Raises:
        ValueError: a size or choice out of range, with the allowed values.
    """
    face.check_face_settings(face_size, face_detector)
    if not 1 <= flow_size <= face_size:
        raise ValueError(f"flow_size must be within 1..face_size ({face_size}), got {flow_size}")
    if sequence_length < 0:
        raise ValueError(f"sequence_length must be 0 (off) or positive, got {sequence_length}")
    if apex_rule not in apex_rules.APEX_RULES:
        raise ValueError(f"apex_rule must be one of {apex_rules.APEX_RULES}, got {apex_rule!r}")
    tvl1_values = flow.tvl1_defaults()
    unknown = sorted(set(tvl1 or {}) - set(tvl1_values))
    if unknown:
        raise ValueError(f"unknown TV-L1 parameters {unknown}; known: {list(tvl1_values)}")
    tvl1_values.update(tvl1 or {})
    haar_values = dict(face.HAAR_DEFAULTS, **(haar or {}))
    return {
        "face_size": int(face_size),
        "flow_size": int(flow_size),
        "sequence_length": int(sequence_length),
        "face_detector": face_detector,
        "haar": haar_values if face_detector == "haar" else None,
        "apex_rule": apex_rule,
        "tvl1": tvl1_values,
        "grayscale": "cv2.imread(IMREAD_GRAYSCALE)",
        "face_resize": "INTER_AREA (INTER_LINEAR when enlarging)",
        "strain": flow.STRAIN_FORMULA,
        "values": flow.VALUES_NOTE,
    }


# --------------------------------------------------------------------------------------------------
# One sample

@dataclasses.dataclass
class _Plan:
    """Which frames a sample needs, decided from file names alone (no image is decoded)."""

    sample_id: str
    frames_dir: Path
    onset: int
    offset: int
    onset_path: Path
    apex: Optional[int]            # None: estimate it by params["apex_rule"]
    apex_path: Optional[Path]
    clip: list                     # (number, path) from onset to offset, for the apex rule
    sequence: list                 # (number, path) for sequence_flow
    used: list                     # every file read, in a fixed order (hashed for provenance)


def _needs_apex(sample: Sample) -> bool:
    return sample.apex is None or sample.apex_source == "none"


def _plan(sample: Sample, params: Mapping) -> _Plan:
    sid = sample.sample_id
    found = clip_frames(sample)
    frames_dir, frames, onset, offset = found.frames_dir, found.frames, found.onset, found.offset
    onset_path, clip = found.onset_path, found.clip
    apex_number, apex_path, rule_frames = None, None, []
    if not _needs_apex(sample):
        apex_number = int(sample.apex)
        if not onset <= apex_number <= offset:
            raise SampleError(sid, frames_dir, f"apex outside onset..offset: apex {apex_number} "
                                               f"is not within {onset}..{offset}")
        apex_path = frame_for(frames, apex_number, sid, frames_dir)
    elif params["apex_rule"] == "middle":
        apex_number = apex_rules.middle_apex(onset, offset)
        apex_path = frame_for(frames, apex_number, sid, frames_dir)
    else:
        rule_frames = clip
    sequence = []
    if params["sequence_length"]:
        sequence = [clip[i] for i in flow.sequence_positions(len(clip), params["sequence_length"])]
    used = [onset_path] + ([apex_path] if apex_path else []) + [p for _, p in rule_frames]
    used += [p for _, p in sequence]
    return _Plan(sid, frames_dir, onset, offset, onset_path, apex_number, apex_path,
                 clip if rule_frames else [], sequence, list(dict.fromkeys(used)))


def _read_gray(path: Path, sample_id: str) -> np.ndarray:
    from data_prep.images import read_image

    return read_image(path, sample_id, mode="gray")


def _compute(sample: Sample, plan: _Plan, params: Mapping) -> tuple[dict, dict]:
    """The arrays of one entry and the provenance fields that are not the key."""
    sid = plan.sample_id
    gray = {path: _read_gray(path, sid) for path in plan.used}
    onset_gray = gray[plan.onset_path]
    box, box_source = face.face_box(onset_gray, params["face_detector"],
                                    **{k: v for k, v in (params["haar"] or {}).items()})
    size = params["face_size"]
    faces = {}
    for path, image in gray.items():
        if image.shape != onset_gray.shape:
            raise SampleError(sid, path, f"frame size differs: {image.shape[::-1]} here, "
                                         f"{onset_gray.shape[::-1]} on the onset frame")
        faces[path] = face.crop_face(image, box, size)
    apex_number, apex_source = plan.apex, sample.apex_source
    apex_path = plan.apex_path
    if apex_number is None:
        numbers = [n for n, _ in plan.clip]
        apex_number = apex_rules.estimate_apex(
            params["apex_rule"], numbers, [faces[p] for _, p in plan.clip])
        apex_path = dict(plan.clip)[apex_number]
    if _needs_apex(sample):
        apex_source = params["apex_rule"]
    solver = flow.make_tvl1(params["tvl1"])
    arrays = {
        "flow": flow.flow_and_strain(faces[plan.onset_path], faces[apex_path],
                                     flow_size=params["flow_size"], solver=solver),
        "onset_face": faces[plan.onset_path],
        "apex_face": faces[apex_path],
    }
    if plan.sequence:
        arrays["sequence_flow"] = flow.sequence_flow(
            faces[plan.onset_path], [faces[p] for _, p in plan.sequence],
            flow_size=params["flow_size"], solver=solver)
    extra = {
        "sample": sid,
        "face_box": [int(v) for v in box],
        "face_box_source": box_source,
        "onset": int(plan.onset),
        "apex": int(apex_number),
        "offset": int(plan.offset),
        "apex_source": apex_source,
        "frames": [str(p.relative_to(plan.frames_dir)) for p in plan.used],
        "sequence_frames": [int(n) for n, _ in plan.sequence],
    }
    if params["face_detector"] == "haar":  # which file, on this machine (not part of the key)
        extra["face_cascade_file"] = str(face.haar_cascade_path(params["haar"]["cascade"]))
    return arrays, extra


def _prepare_one(sample: Sample, out: str, params: Mapping) -> tuple[str, object]:
    """Worker: one sample -> ``("computed" | "reused", info)`` or ``("error", fields)``."""
    return prepare_entry(sample, out, params, algorithm=ALGORITHM,
                         plan=lambda: _plan(sample, params), used=lambda plan: plan.used,
                         compute=lambda plan: _compute(sample, plan, params))


# --------------------------------------------------------------------------------------------------
# The cache

def prepare_flow_cache(items: Sequence[tuple], out, *, params: Mapping,
                       workers: int = 0, problems: Optional[Problems] = None,
                       progress: bool = True, protocol: str = "custom",
                       classes: Optional[Sequence[str]] = None,
                       excluded: Sequence[Mapping] = ()) -> CacheSummary:
    """Prepare (or bring up to date) a flow cache for ``items`` (on :mod:`data_prep.stages`).

    Args:
        items: ``(sample, label)`` pairs, or ``(sample, label, row)`` whose index ``row``
            columns beyond the cache's own (``objective_class``, ``note``, ...) are kept in
            ``index.csv``. Each sample needs ``frames_dir``. Samples whose ``apex_source`` is
            ``"none"`` (or whose apex is ``None``) get ``params["apex_rule"]``.
        out: the cache folder (created).
        params: from :func:`flow_params`.
        workers: processes; 0 = ``os.cpu_count()``; 1 = in this process.
        problems: collects dropped samples; strict ones raise at the first bad sample.
        progress: show a tqdm bar on stderr.
        protocol: written to ``cache.json``.
        classes: the protocol's class names for ``cache.json`` (default: the sorted labels).
        excluded: the samples the protocol's index left out, with their reasons (reported and
            listed in ``cache.json``).

    Returns:
        A :class:`data_prep.stages.CacheSummary`; ``index.csv`` and ``cache.json`` are written in
        ``out``.

    Raises:
        SampleError: the first bad sample, when ``problems`` is strict.
        face.MissingCascadeError: ``face_detector="haar"`` and no cascade file on this machine.
    """
    face.check_detector(params["face_detector"], (params.get("haar") or {}).get(
        "cascade", face.HAAR_CASCADE))
    return prepare_cache(items, out, params=params, prepare_one=_prepare_one, kind="flow",
                         workers=workers, problems=problems, progress=progress,
                         protocol=protocol, classes=classes, excluded=excluded)


# --------------------------------------------------------------------------------------------------
# Command line

def main_flow(args) -> int:
    """``python -m data_prep flow``: index the given databases, then prepare the flow cache.

    Returns 0 on success; 2 with one ``error:`` line (naming the sample and the file where there is
    one) on bad input or when no sample is left.
    """
    def make_params(args):
        return flow_params(
            face_size=args.face_size, flow_size=args.flow_size,
            sequence_length=args.sequence_length, face_detector=args.face_detector,
            apex_rule=getattr(args, "apex_rule", "interframe-diff"))

    return cache_command(args, make_params, prepare_flow_cache)
