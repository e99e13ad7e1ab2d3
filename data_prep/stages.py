"""The stage engine: reuse-or-compute one cache entry per sample, in parallel, and write the index.

Every cache stage runs on it: the flow stage (:mod:`data_prep.pipeline`), STRCN
(:mod:`data_prep.strcn`), apex frames and the apex-image import (:mod:`data_prep.apex_frames`),
macro faces (:mod:`data_prep.macro`) and the flow-image import
(:mod:`data_prep.datasets.flow_images`). A stage gives three things per sample: ``plan`` (check the
sample, find its files), ``used`` (the source files, hashed into the provenance key) and ``compute``
(the arrays and the provenance beyond the key). The engine

* reuses an entry whose provenance key still matches and whose arrays still hash to the checksum
  recorded when it was written (:func:`data_prep.cache.entry_problem`); anything else (missing,
  stale, unreadable, damaged) is computed again and written atomically;
* runs the samples in this process or in a ``spawn`` pool whose workers die with their parent
  (Linux), one OpenCV thread each; the temporary files a killed run left are removed first;
* collects bad samples as :class:`data_prep.errors.SampleError` (strict: the first one stops the
  run), and writes ``index.csv`` then ``cache.json`` (kind, protocol, classes, parameters, the
  dropped samples, the samples the index left out, the samples that left the index since the last
  run);
* says in its :class:`CacheSummary` report how many entries were computed, reused, dropped, left
  out by the index, and which samples left the previous index (their entries stay on disk and are
  reused when they come back).
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

from data_prep import cache, face
from data_prep.atomic import remove_stale_temporaries
from data_prep.datasets.frames import frame_for, list_frames, warn_frame_gaps
from data_prep.errors import DataPrepError, Problems, SampleError
from data_prep.samples import Sample


# --------------------------------------------------------------------------------------------------
# A sample's frames

@dataclasses.dataclass
class ClipFrames:
    """A sample's frames on disk, checked: what every frame-based stage starts from.

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
    frames = list_frames(frames_dir, sid)
    if not frames:
        raise SampleError(sid, frames_dir, "no frames: the clip folder holds no image frames")
    onset = sample.onset if sample.onset is not None else frames[0][0]
    offset = sample.offset if sample.offset is not None else frames[-1][0]
    if offset < onset:
        raise SampleError(sid, frames_dir, f"offset before onset: {offset} < {onset}")
    onset_path = frame_for(frames, onset, sid, frames_dir)
    clip = [(n, p) for n, p in frames if onset <= n <= offset]
    return ClipFrames(frames_dir, frames, onset, offset, onset_path, clip)


# --------------------------------------------------------------------------------------------------
# One entry

#: the index columns every cache entry's provenance gives (``prepare_cache`` adds ``entry``).
INFO_COLUMNS = ("onset", "apex", "offset", "apex_source", "face_box_source")


def prepare_entry(sample, out: str, params: Mapping, *, algorithm: str, plan, used,
                  compute, info_columns: Sequence[str] = ()) -> tuple[str, object]:
    """One cache entry, reused when its provenance key still matches and its arrays are sound,
    else computed and written.

    ``plan()`` checks the sample and returns what ``used(plan)`` (the source files, hashed into the
    key) and ``compute(plan)`` (``(arrays, extra provenance)``) need. Returns ``("computed" |
    "reused", info)`` with :data:`INFO_COLUMNS` plus ``info_columns`` and ``entry`` (a column the
    provenance lacks is the sample's attribute of that name, or ``None``; ``repaired`` says why an
    existing file was not reusable when it was unreadable or damaged), or ``("error", (sample,
    path, reason))``: a ``SampleError`` does not survive pickling (its ``__init__`` takes three
    arguments), so errors travel back as fields and are rebuilt in the parent.
    """
    def info(relpath, provenance, repaired=None):
        columns = (*INFO_COLUMNS, *info_columns)
        values = {key: provenance[key] if key in provenance else getattr(sample, key, None)
                  for key in columns}
        return values | {"entry": relpath, "repaired": repaired}

    try:
        checked = plan()
        relpath = cache.entry_relpath(sample.subject, sample.clip)
        path = Path(out) / relpath
        source_sha256 = cache.hash_files(used(checked))
        key = cache.provenance_key(algorithm, params, source_sha256)
        problem = cache.entry_problem(path, key)
        if problem is None:
            return "reused", info(relpath, cache.read_provenance(path) or {})
        arrays, extra = compute(checked)
        provenance = cache.make_provenance(algorithm, params, source_sha256=source_sha256, **extra)
        cache.write_entry(path, arrays, provenance)
        repaired = problem if problem.startswith(("unreadable", "damaged")) else None
        return "computed", info(relpath, provenance, repaired)
    except SampleError as error:
        return "error", (error.sample, error.path, error.reason)
    except cv2.error as error:
        reason = " ".join(str(error).split())
        return "error", (sample.sample_id, sample.frames_dir or "?", f"OpenCV failed: {reason}")


def _init_worker(parent: int) -> None:
    """Pool initializer: one OpenCV thread per process; Ctrl-C is the parent's to handle; on Linux
    the worker ends with its parent (a killed run leaves no orphan computing on, and the
    resource tracker, whose pipe the workers hold, then ends too)."""
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:   # the parent died before prctl: no signal will come
            os._exit(1)


# --------------------------------------------------------------------------------------------------
# The cache

@dataclasses.dataclass
class CacheSummary:
    """What a :func:`prepare_cache` run (any stage) did.

    Attributes:
        out: the cache folder.
        computed: entries computed in this run.
        reused: entries whose provenance key still matched and whose arrays were sound, kept.
        problems: the dropped samples (``len(problems)`` of them) and why.
        full_frame: samples whose onset frame had no detectable face (whole frame used).
        rows: the index rows written, in input order.
        kind: the cache's ``kind`` (``"flow"``, ``"strcn"``, ...), for the report line.
        excluded: the samples the protocol's index left out before this stage (not dropped
            here), each ``{"sample", "reason", "source"}``; also in ``cache.json``.
        left: the samples of the previous ``index.csv`` that are not in this one, each
            ``{"sample", "entry", "reason"}``; their entries stay on disk.
        previous: the previous index's row count (``None``: there was none).
        repaired: ``"<sample>: <why>"`` for each existing entry recomputed because it was
            unreadable or damaged.
    """

    out: Path
    computed: int
    reused: int
    problems: Problems
    full_frame: int
    rows: list
    kind: str = "flow"
    excluded: list = dataclasses.field(default_factory=list)
    left: list = dataclasses.field(default_factory=list)
    previous: Optional[int] = None
    repaired: list = dataclasses.field(default_factory=list)

    @property
    def dropped(self) -> int:
        return len(self.problems)

    def report(self) -> str:
        head = (f"{self.kind} cache {self.out}: {len(self.rows)} entries "
                f"({self.computed} computed, {self.reused} reused), {self.dropped} dropped")
        lines = [head + (f", {len(self.excluded)} left out by the index" if self.excluded
                         else "")]
        if self.repaired:
            lines.append(f"{len(self.repaired)} unreadable or damaged entry file(s) "
                         "recomputed:")
            lines += [f"  - {line}" for line in self.repaired]
        if self.full_frame:
            lines.append(f"{self.full_frame} sample(s) with no face found on the onset frame: "
                         "whole frame used (face_box_source=full-frame)")
        if self.dropped or getattr(self.problems, "warnings", None):
            lines.append(self.problems.summary())
        if self.excluded:
            lines.append(f"{len(self.excluded)} sample(s) left out by the index (cache.json "
                         "\"excluded\"):")
            lines += [f"  {count} x {reason}" for reason, count in _by_reason(self.excluded)]
            lines += [f"  - {row['sample']}: {row['reason']}" for row in self.excluded]
        if self.left:
            lines.append(f"warning: the index shrank from {self.previous} to {len(self.rows)} "
                         f"samples: {len(self.left)} sample(s) of the previous index left it "
                         "(their entries stay on disk and are reused when they come back):")
            lines += [f"  - {row['sample']}: {row['reason']}" for row in self.left]
        return "\n".join(lines)


def _by_reason(rows) -> list:
    counts: dict[str, int] = {}
    for row in rows:
        key = row["reason"].split(":")[0].split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


def _workers(workers: int) -> int:
    return workers if workers and workers > 0 else (os.cpu_count() or 1)


def run_samples(samples, out, params: Mapping, prepare_one, on_result, *, workers: int,
                progress: bool, desc: str) -> None:
    """``on_result(position, prepare_one(sample, out, params))`` for every sample, in this process
    (``workers == 1``) or in a spawn pool of ``workers`` processes, with a progress bar on a
    terminal (a line per twentieth of the samples in a log file).

    ``prepare_one`` must be a module-level function (the pool pickles it). On a strict failure or
    Ctrl-C, what has not started is dropped; running samples finish and their entries (written
    atomically) are kept for the next run.
    """
    from data_prep.progress import Progress

    with Progress(len(samples), desc=desc, unit="clip", enabled=progress,
                  every=max(1, len(samples) // 20)) as bar:
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
            initializer=_init_worker, initargs=(os.getpid(),))
        try:
            futures = {pool.submit(prepare_one, sample, str(out), params): position
                       for position, sample in enumerate(samples)}
            for future in concurrent.futures.as_completed(futures):
                on_result(futures[future], future.result())
                bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _previous_index(out: Path) -> Optional[list]:
    """The rows of the index a previous run left in ``out`` (``None``: none). A damaged one is read
    as far as it goes: it only serves to say which samples left."""
    path = out / "index.csv"
    if not path.is_file():
        return None
    import csv

    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            return [row for row in csv.DictReader(handle) if row.get("entry")]
    except (OSError, csv.Error):
        return None


def _excluded_rows(excluded, problems: Problems) -> list:
    """The index's left-out samples as ``{"sample", "reason", "source"}``, less those the run
    already counts as dropped (the readers' bad rows are both)."""
    dropped = {error.sample for error in problems}
    rows = []
    for row in excluded or ():
        sample = f"{row['subject']}/{row['sample']}"
        if sample not in dropped:
            rows.append({"sample": sample, "reason": row["reason"],
                         "source": str(row.get("source") or "")})
    return rows


def prepare_cache(items: Sequence[tuple], out, *, params: Mapping, prepare_one, kind: str,
                  extra_columns: Sequence[str] = (), workers: int = 0,
                  problems: Optional[Problems] = None, progress: bool = True,
                  protocol: str = "custom", classes: Optional[Sequence[str]] = None,
                  excluded: Sequence[Mapping] = (),
                  meta: Optional[Mapping] = None) -> CacheSummary:
    """Prepare (or bring up to date) a cache of ``kind`` with ``prepare_one`` per sample.

    Args:
        items: ``(sample, label)`` pairs, or ``(sample, label, row)`` whose index ``row`` columns
            beyond the cache's own are kept in ``index.csv``. A sample has ``database``,
            ``subject`` (prefixed), ``clip``, ``emotion``, ``sample_id`` and ``frames_dir``.
        out: the cache folder (created).
        params: the stage's parameter record (part of every entry's key).
        prepare_one: ``prepare_one(sample, out, params)`` returns ``("computed" | "reused",
            info)`` (:func:`prepare_entry`) or ``("error", SampleError fields)``; module-level.
        kind: the cache's kind for ``cache.json``.
        extra_columns: index columns ``info`` gives beyond :data:`INFO_COLUMNS`.
        workers: processes; 0 = ``os.cpu_count()``; 1 = in this process.
        problems: collects dropped samples; strict ones raise at the first bad sample.
        progress: show progress on stderr (a bar on a terminal, lines in a log).
        protocol, classes: for ``cache.json`` (classes default to the sorted labels).
        excluded: the rows the protocol's index left out, with their ``reason``
            (:attr:`data_prep.index.IndexResult.excluded`): counted, reported and listed in
            ``cache.json``.
        meta: more ``cache.json`` fields (the import's source folder, ...).

    Raises:
        SampleError: the first bad sample, when ``problems`` is strict.
        ValueError: two items with the same cache entry.
    """
    out = Path(out)
    problems = Problems() if problems is None else problems
    items = [(item[0], item[1], dict(item[2]) if len(item) > 2 else {}) for item in items]
    relpaths = [cache.entry_relpath(s.subject, s.clip) for s, _, _ in items]
    duplicates = sorted({r for r in relpaths if relpaths.count(r) > 1})
    if duplicates:
        raise ValueError(f"samples listed twice (same cache entry): {duplicates}")
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)          # what a killed run was writing when it died
    previous = _previous_index(out)
    results: dict[int, tuple[str, object]] = {}

    def on_result(position, result):
        status, payload = result
        results[position] = result
        if status == "error":
            problems.add(SampleError(*payload))

    samples = [sample for sample, _, _ in items]
    warn_frame_gaps(samples, problems)
    run_samples(samples, out, params, prepare_one, on_result,
                workers=min(_workers(workers), max(1, len(items))), progress=progress, desc=kind)

    rows, repaired, counts = [], [], {"computed": 0, "reused": 0, "full-frame": 0}
    for position, (sample, label, extra) in enumerate(items):
        status, info = results[position]
        if status == "error":
            continue
        counts[status] += 1
        counts["full-frame"] += info["face_box_source"] == "full-frame"
        if info.get("repaired"):
            repaired.append(f"{sample.sample_id}: {info['repaired']}")
        row = {
            **extra,
            "database": sample.database, "subject": sample.subject, "sample": sample.clip,
            "label": label, "emotion": sample.emotion, "onset": info["onset"],
            "apex": info["apex"], "offset": info["offset"], "apex_source": info["apex_source"],
            "entry": info["entry"],
            **{column: info[column] for column in extra_columns},
        }
        if info["face_box_source"] is not None:    # the imports have no face box
            row["face_box_source"] = info["face_box_source"]
        rows.append(row)
    excluded_rows = _excluded_rows(excluded, problems)
    left = _left(previous, rows, problems, excluded_rows)
    cache.write_index(out, rows)
    cache.write_cache_meta(out, {
        **dict(meta or {}),
        "kind": kind, "protocol": protocol,
        "classes": list(classes) if classes is not None else sorted({r["label"] for r in rows}),
        "params": dict(params),
        "dropped": [str(error) for error in problems],
        **({"warnings": [str(w) for w in problems.warnings]}
           if getattr(problems, "warnings", None) else {}),
        "excluded": excluded_rows,
        **({"left_index": left} if left else {}),
    })
    return CacheSummary(out=out, computed=counts["computed"], reused=counts["reused"],
                        problems=problems, full_frame=counts["full-frame"], rows=rows, kind=kind,
                        excluded=excluded_rows, left=left,
                        previous=None if previous is None else len(previous), repaired=repaired)


def _left(previous: Optional[list], rows: list, problems: Problems, excluded: list) -> list:
    """The previous index's samples that this one lacks, each with why it left."""
    if not previous:
        return []
    kept = {row["entry"] for row in rows}
    why = {row["sample"]: f"left out by the index: {row['reason']}" for row in excluded}
    why.update({error.sample: f"dropped: {error.reason} ({error.path})" for error in problems})
    left = []
    for row in previous:
        if row["entry"] in kept:
            continue
        sample = f"{row.get('subject')}/{row.get('sample')}"
        left.append({"sample": sample, "entry": row["entry"],
                     "reason": why.get(sample, "not among this run's samples")})
    return left


# --------------------------------------------------------------------------------------------------
# Command line

def cache_command(args, make_params, prepare) -> int:
    """The body of a cache command (``flow``, ``strcn``, ``frames``): check the database roots,
    make the parameters (``make_params(args)``, a ValueError being a usage error), then
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
    ``prepare(items, args.out, params=..., excluded=..., ...)`` and print its report. Returns the
    exit status."""
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
                      progress=True, protocol=protocol, classes=classes,
                      excluded=getattr(result, "excluded", ()))
    print(summary.report())
    if index_dropped:
        print(f"({index_dropped} of the dropped samples were left out by the index)")
    if not summary.rows:
        print("error: no sample could be prepared", file=sys.stderr)
        return 2
    print(f"cache written to {Path(args.out).resolve()}")
    return 0
