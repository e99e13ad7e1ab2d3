"""Onset->apex TV-L1 throughput of the flow pipeline, one process vs all cores (not a test).

Measures ``data_prep.pipeline.prepare_flow_cache`` end to end (read the two frames, Haar face box on
the onset, crop to 128, TV-L1 at 128 x 128 with OpenCV's defaults, strain, resize to 28, write the
``.npz`` entry) in pairs per second, on clips with an annotated apex (CASME II and SAMM) of the
synthetic data set (``data_prep.synthetic.write_synthetic``). Each run writes a fresh cache, so
nothing is reused. A second line times the bare ``flow_and_strain`` call in this process
(one OpenCV thread) to separate the flow from the I/O and the process start-up.

Usage::

    python benchmarks/flow_throughput.py [--pairs 48] [--workers 1 0] [--data DIR]

``--workers 0`` means all cores. ``--data`` reuses a synthetic set written earlier (otherwise one is
written to a temporary folder, limited to a few subjects). Results go in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from data_prep import __version__, flow
from data_prep.errors import Problems
from data_prep.index import build_index
from data_prep.pipeline import flow_params, prepare_flow_cache
from data_prep.synthetic import write_synthetic

SUBJECTS = ("casme2/17", "casme2/26", "samm/011", "samm/006", "smic/1")


def machine_info() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{platform.system()} {platform.machine()}, CPU {cpu}, {os.cpu_count()} cores, load "
            f"average {load}; Python {platform.python_version()}, OpenCV {cv2.__version__}, "
            f"data_prep {__version__}")


def annotated_items(roots: dict, pairs: int) -> list:
    result = build_index("cde", problems=Problems(), **roots)
    items = [(sample, row["label"]) for row, sample in zip(result.rows, result.samples)
             if sample.apex_source == "annotation" and sample.frames_dir]
    if len(items) < pairs:
        raise SystemExit(f"only {len(items)} annotated samples in the data; lower --pairs")
    return items[:pairs]


def time_pipeline(items, workers: int, params) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = prepare_flow_cache(items, out, params=params, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
    assert summary.computed == len(items), summary.report()
    return elapsed


def time_bare_flow(repeats: int = 10, size: int = 128) -> float:
    rng = np.random.default_rng(0)
    first = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.uint8), (0, 0), 2)
    second = np.roll(first, 1, axis=1)
    cv2.setNumThreads(1)
    solver = flow.make_tvl1()
    flow.flow_and_strain(first, second, flow_size=28, solver=solver)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        flow.flow_and_strain(first, second, flow_size=28, solver=solver)
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48, help="samples per run (default 48)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0],
                        help="worker counts to compare; 0 = all cores (default: 1 0)")
    parser.add_argument("--data", type=Path, help="an existing synthetic set (python -m data_prep "
                                                  "synth --out DIR)")
    args = parser.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print("machine:", machine_info())
    with tempfile.TemporaryDirectory() as scratch:
        if args.data:
            roots = {name: args.data / folder for name, folder in
                     (("casme2", "CASME2"), ("samm", "SAMM"), ("smic", "SMIC"))}
        else:
            roots = write_synthetic(Path(scratch) / "synth", progress=False, subjects=SUBJECTS)
        items = annotated_items(roots, args.pairs)
        params = flow_params()  # defaults: haar, face 128, flow 28, OpenCV TV-L1 defaults
        print(f"pairs: {len(items)} onset->apex (face {params['face_size']}, flow "
              f"{params['flow_size']}, detector {params['face_detector']})")
        for workers in args.workers:
            n = workers or os.cpu_count()
            elapsed = time_pipeline(items, workers, params)
            print(f"pipeline, {n} process(es): {len(items) / elapsed:.2f} pairs/s "
                  f"({elapsed:.1f} s for {len(items)})")
    per_pair = time_bare_flow()
    print(f"bare flow_and_strain at 128x128, 1 thread: {1 / per_pair:.2f} pairs/s "
          f"({per_pair * 1000:.0f} ms per pair)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
