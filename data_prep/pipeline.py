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

Work runs in parallel over processes (``spawn``: safe when TensorFlow is loaded in the caller), one
OpenCV thread each. Bad input (a missing frame, an unreadable image) becomes a ``SampleError``
naming the sample and the file; it crosses the process boundary as plain fields, and the run stops
(strict) or drops the sample and reports it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import signal
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from data_prep import apex as apex_rules
from data_prep import cache, face, flow
from data_prep.datasets.frames import frame_for, list_frames
from data_prep.errors import DataPrepError, Problems, SampleError
from data_prep.samples import Sample

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
    if face_size < 16:
        raise ValueError(f"face_size must be at least 16, got {face_size}")
    if not 1 <= flow_size <= face_size:
        raise ValueError(f"flow_size must be within 1..face_size ({face_size}), got {flow_size}")
    if sequence_length < 0:
        raise ValueError(f"sequence_length must be 0 (off) or positive, got {sequence_length}")
    if face_detector not in face.FACE_DETECTORS:
        raise ValueError(f"face_detector must be one of {face.FACE_DETECTORS}, "
                         f"got {face_detector!r}")
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


@dataclasses.dataclass
class ClipFrames:
    """A sample's frames on disk, checked: what every cache stage starts from.

    Attributes:
        frames_dir: the clip folder.
        frames: every ``(number, path)`` in it, sorted.
        onset, offset: the sample's (the first / last frame where the release gives none).
        onset_path: the onset frame's file.
        clip: the ``(number, path)`` of onset..offset.
    """

    frames_dir: Path
    frames: list
    onset: int
    offset: int
    onset_path: Path
    clip: list


def clip_frames(sample: Sample) -> ClipFrames:
    """Find and check ``sample``'s frames.

    Raises:
        SampleError: no frame folder (an index from annotations alone), a missing or empty folder,
            offset before onset, or no onset frame; naming the sample and the folder.
    """
    sid = sample.sample_id
    if not sample.frames_dir:
        raise SampleError(sid, sample.source or "?", "no frame folder: the index was built from "
                          "annotation files alone; give the database root")
    frames_dir = Path(sample.frames_dir)
    if not frames_dir.is_dir():
        raise SampleError(sid, frames_dir, "frame folder missing: no such folder")
    frames = list_frames(frames_dir)
    if not frames:
        raise SampleError(sid, frames_dir, "no frames: the clip folder holds no image frames")
    onset = sample.onset if sample.onset is not None else frames[0][0]
    offset = sample.offset if sample.offset is not None else frames[-1][0]
    if offset < onset:
        raise SampleError(sid, frames_dir, f"offset before onset: {offset} < {onset}")
    onset_path = frame_for(frames, onset, sid, frames_dir)
    clip = [(n, p) for n, p in frames if onset <= n <= offset]
    return ClipFrames(frames_dir, frames, onset, offset, onset_path, clip)


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
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SampleError(sample_id, path, "unreadable image: OpenCV cannot decode this frame")
    return image


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


#: the index columns every cache entry's provenance gives (``prepare_cache`` adds ``entry``).
INFO_COLUMNS = ("onset", "apex", "offset", "apex_source", "face_box_source")


def prepare_entry(sample: Sample, out: str, params: Mapping, *, algorithm: str, plan, used,
                  compute, info_columns: Sequence[str] = ()) -> tuple[str, object]:
    """One cache entry, reused when its provenance key still matches, else computed and written.

    ``plan()`` checks the sample and returns what ``used(plan)`` (the source files, hashed into the
    key) and ``compute(plan)`` (``(arrays, extra provenance)``) need. Returns ``("computed" |
    "reused", info)`` with :data:`INFO_COLUMNS` plus ``info_columns`` and ``entry``, or ``("error",
    (sample, path, reason))``: a ``SampleError`` does not survive pickling (its ``__init__`` takes
    three arguments), so errors travel back as fields and are rebuilt in the parent.
    """
    def info(relpath, provenance):
        return {key: provenance.get(key) for key in (*INFO_COLUMNS, *info_columns)} | {
            "entry": relpath}

    try:
        checked = plan()
        relpath = cache.entry_relpath(sample.subject, sample.clip)
        path = Path(out) / relpath
        source_sha256 = cache.hash_files(used(checked))
        key = cache.provenance_key(algorithm, params, source_sha256)
        if cache.entry_is_valid(path, key):
            return "reused", info(relpath, cache.read_provenance(path) or {})
        arrays, extra = compute(checked)
        provenance = cache.make_provenance(algorithm, params, source_sha256=source_sha256, **extra)
        cache.write_entry(path, arrays, provenance)
        return "computed", info(relpath, provenance)
    except SampleError as error:
        return "error", (error.sample, error.path, error.reason)
    except cv2.error as error:
        reason = " ".join(str(error).split())
        return "error", (sample.sample_id, sample.frames_dir or "?", f"OpenCV failed: {reason}")


def _init_worker() -> None:
    """Pool initializer: one OpenCV thread per process; Ctrl-C is the parent's to handle."""
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --------------------------------------------------------------------------------------------------
# The cache

@dataclasses.dataclass
class CacheSummary:
    """What a :func:`prepare_cache` run (flow or STRCN stage) did.

    Attributes:
        out: the cache folder.
        computed: entries computed in this run.
        reused: entries whose provenance key still matched, kept as they were.
        problems: the dropped samples (``len(problems)`` of them) and why.
        full_frame: samples whose onset frame had no detectable face (whole frame used).
        rows: the index rows written, in input order.
        kind: the cache's ``kind`` (``"flow"``, ``"strcn"``), for the report line.
    """

    out: Path
    computed: int
    reused: int
    problems: Problems
    full_frame: int
    rows: list
    kind: str = "flow"

    @property
    def dropped(self) -> int:
        return len(self.problems)

    def report(self) -> str:
        lines = [f"{self.kind} cache {self.out}: {len(self.rows)} entries "
                 f"({self.computed} computed, {self.reused} reused), {self.dropped} dropped"]
        if self.full_frame:
            lines.append(f"{self.full_frame} sample(s) with no face found on the onset frame: "
                         "whole frame used (face_box_source=full-frame)")
        if self.dropped:
            lines.append(self.problems.summary())
        return "\n".join(lines)


def _workers(workers: int) -> int:
    return workers if workers and workers > 0 else (os.cpu_count() or 1)


def run_samples(samples, out, params: Mapping, prepare_one, on_result, *, workers: int,
                progress: bool, desc: str) -> None:
    """``on_result(position, prepare_one(sample, out, params))`` for every sample, in this process
    (``workers == 1``) or in a spawn pool of ``workers`` processes, with a tqdm bar.

    ``prepare_one`` must be a module-level function (the pool pickles it). On a strict failure or
    Ctrl-C, what has not started is dropped; running samples finish and their entries (written
    atomically) are kept for the next run.
    """
    from tqdm import tqdm

    with tqdm(total=len(samples), desc=desc, unit="clip", disable=not progress,
              file=sys.stderr) as bar:
        if workers == 1:
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                for position, sample in enumerate(samples):
                    on_result(position, prepare_one(sample, str(out), params))
                    bar.update(1)
            finally:
                cv2.setNumThreads(threads)
            return
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker)
        try:
            futures = {pool.submit(prepare_one, sample, str(out), params): position
                       for position, sample in enumerate(samples)}
            for future in concurrent.futures.as_completed(futures):
                on_result(futures[future], future.result())
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def prepare_cache(items: Sequence[tuple], out, *, params: Mapping, prepare_one, kind: str,
                  extra_columns: Sequence[str] = (), workers: int = 0,
                  problems: Optional[Problems] = None, progress: bool = True,
                  protocol: str = "custom",
                  classes: Optional[Sequence[str]] = None) -> CacheSummary:
    """Prepare (or bring up to date) a cache of ``kind`` with ``prepare_one`` per sample.

    ``prepare_one(sample, out, params)`` returns ``("computed" | "reused", info)`` or ``("error",
    SampleError fields)``; ``info`` holds the index columns (``onset``, ``apex``, ``offset``,
    ``apex_source``, ``entry``, ``face_box_source`` and ``extra_columns``). The other arguments
    are :func:`prepare_flow_cache`'s.
    """
    out = Path(out)
    problems = Problems() if problems is None else problems
    items = [(item[0], item[1], dict(item[2]) if len(item) > 2 else {}) for item in items]
    relpaths = [cache.entry_relpath(s.subject, s.clip) for s, _, _ in items]
    duplicates = sorted({r for r in relpaths if relpaths.count(r) > 1})
    if duplicates:
        raise ValueError(f"samples listed twice (same cache entry): {duplicates}")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, tuple[str, object]] = {}

    def on_result(position, result):
        status, payload = result
        results[position] = result
        if status == "error":
            problems.add(SampleError(*payload))

    samples = [sample for sample, _, _ in items]
    run_samples(samples, out, params, prepare_one, on_result,
                workers=min(_workers(workers), max(1, len(items))), progress=progress, desc=kind)

    rows, counts = [], {"computed": 0, "reused": 0, "full-frame": 0}
    for position, (sample, label, extra) in enumerate(items):
        status, info = results[position]
        if status == "error":
            continue
        counts[status] += 1
        counts["full-frame"] += info["face_box_source"] == "full-frame"
        rows.append({
            **extra,
            "database": sample.database, "subject": sample.subject, "sample": sample.clip,
            "label": label, "emotion": sample.emotion, "onset": info["onset"],
            "apex": info["apex"], "offset": info["offset"], "apex_source": info["apex_source"],
            "entry": info["entry"], "face_box_source": info["face_box_source"],
            **{column: info[column] for column in extra_columns},
        })
    cache.write_index(out, rows)
    cache.write_cache_meta(out, {
        "kind": kind, "protocol": protocol,
        "classes": list(classes) if classes is not None else sorted({r["label"] for r in rows}),
        "params": dict(params),
        "dropped": [str(error) for error in problems],
    })
    return CacheSummary(out=out, computed=counts["computed"], reused=counts["reused"],
                        problems=problems, full_frame=counts["full-frame"], rows=rows, kind=kind)


def prepare_flow_cache(items: Sequence[tuple], out, *, params: Mapping,
                       workers: int = 0, problems: Optional[Problems] = None,
                       progress: bool = True, protocol: str = "custom",
                       classes: Optional[Sequence[str]] = None) -> CacheSummary:
    """Prepare (or bring up to date) a flow cache for ``items``.

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

    Returns:
        A :class:`CacheSummary`; ``index.csv`` and ``cache.json`` are written in ``out``.

    Raises:
        SampleError: the first bad sample, when ``problems`` is strict.
        face.MissingCascadeError: ``face_detector="haar"`` and no cascade file on this machine.
    """
    face.check_detector(params["face_detector"], (params.get("haar") or {}).get(
        "cascade", face.HAAR_CASCADE))
    return prepare_cache(items, out, params=params, prepare_one=_prepare_one, kind="flow",
                         workers=workers, problems=problems, progress=progress,
                         protocol=protocol, classes=classes)


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


def cache_command(args, make_params, prepare) -> int:
    """The body of a cache command (``flow``, ``strcn``): check the database roots, make the
    parameters (``make_params(args)``, a ValueError being a usage error), then
    :func:`index_and_prepare`. Returns 0, or 2 after one ``error:`` line on stderr."""
    try:
        roots = {name: getattr(args, name, None) for name in ("casme2", "samm", "smic")}
        if not any(roots.values()):
            print("error: give at least one database root (--casme2, --samm, --smic)",
                  file=sys.stderr)
            return 2
        try:
            params = make_params(args)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return index_and_prepare(args, params, prepare)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def index_and_prepare(args, params: Mapping, prepare) -> int:
    """The rest of a cache command: index ``args``' database roots under ``args.protocol``, then
    ``prepare(items, args.out, params=..., ...)`` and print its report. Returns the exit status."""
    face.check_detector(params["face_detector"])
    from data_prep.index import build_index

    roots = {name: getattr(args, name, None) for name in ("casme2", "samm", "smic")}
    problems = Problems(strict=bool(getattr(args, "strict", False)))
    result = build_index(args.protocol, problems=problems, **roots)
    index_dropped = len(problems)
    items = [(sample, row["label"], row) for row, sample in zip(result.rows, result.samples)]
    if not items:
        print(f"error: the {args.protocol} index of the given roots holds no sample",
              file=sys.stderr)
        return 2
    classes = getattr(getattr(result, "protocol", None), "classes", None)
    protocol = getattr(getattr(result, "protocol", None), "name", args.protocol)
    summary = prepare(items, args.out, params=params, workers=args.workers, problems=problems,
                      progress=True, protocol=protocol, classes=classes)
    print(summary.report())
    if index_dropped:
        print(f"({index_dropped} of the dropped samples were left out by the index)")
    if not summary.rows:
        print("error: no sample could be prepared", file=sys.stderr)
        return 2
    print(f"cache written to {Path(args.out).resolve()}")
    return 0
