"""Training throughput of the fold engines, FR and OFF-ApexNet, in one run (not a test).

For each model and each engine (``per_fold_fit``: a model built, compiled and fitted per fold, the
path every run took before; ``compile_once``; ``fold_parallel``) a fresh process trains the same
LOSO folds of a random CDE-sized cache (442 samples of 68 subjects, 28 x 28 u/v) with the
experiment's own config (batch, optimizer, losses), timed from the first build to the last
prediction: building and compiling are included, the TensorFlow import is not. The same run
measures the machine's fp32 matmul peak, so every ratio is of one run on one machine.

Columns: ``model, mode, samples_per_s`` (training samples x epochs per second),
``seconds_per_fold``, ``gflops`` (achieved: 3 x the forward FLOPs of convolutions and dense layers,
per training sample), ``peak_gflops`` (TF fp32 matmul, 2048 x 2048), then ``epochs, folds, width``.

Usage::

    python benchmarks/bench_training.py [--quick] --out DIR

``--quick`` (a few minutes on 2 cores): FR 10 epochs, OFF-ApexNet 30 epochs, 4 folds. Without it:
FR 40 epochs (its config), OFF-ApexNet 100 epochs, 8 folds. Results go in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODES = ("per_fold_fit", "compile_once", "fold_parallel")
COLUMNS = ("model", "mode", "samples_per_s", "seconds_per_fold", "gflops", "peak_gflops",
           "epochs", "folds", "width")


def fake_cache(n_subjects: int = 68, n_samples: int = 442, seed: int = 0):
    """A CDE-sized in-memory cache of random 28 x 28 x 3 flows (speed only, nothing to learn)."""
    from data_prep.cache import CacheData
    rng = np.random.default_rng(seed)
    subjects = np.array([f"db/s{i % n_subjects:02d}" for i in range(n_samples)])
    labels = rng.integers(0, 3, n_samples)
    index = [{"sample": f"c{i}", "subject": s, "database": "db", "label": int(y)}
             for i, (s, y) in enumerate(zip(subjects, labels))]
    return CacheData(arrays={"flow": rng.random((n_samples, 28, 28, 3), dtype=np.float32)},
                     index=index, classes=("negative", "positive", "surprise"), labels=labels,
                     subjects=subjects, databases=np.array(["db"] * n_samples), meta={},
                     fingerprint="bench")


def model_config(model: str, epochs: int):
    sys.path.insert(0, str(REPO))
    if model == "fr":
        from experiments.fr_cde import train_config
        return train_config(epochs=epochs)
    from experiments.off_apexnet_cde import train_config
    return train_config(epochs=epochs, snapshot_epochs=())


def forward_flops(model) -> float:
    """Multiply-adds x 2 of every convolution and dense layer, per sample."""
    import keras
    from mer_keras.layers import ExpressionAttention
    total = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2.0 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * np.prod(layer.kernel.shape)
        elif isinstance(layer, ExpressionAttention):
            total += 2.0 * np.prod(layer.kernel.shape)
    return total


def one(model: str, mode: str, epochs: int, folds: int, width: int) -> dict:
    """Train ``folds`` folds with ``mode``; the measurement of one process."""
    if mode == "fold_parallel":
        from mer_keras.training.workers import configure_fold_parallel_threads
        configure_fold_parallel_threads()  # as a run's fold-parallel worker does
    from mer_keras.models import get_builder
    from mer_keras.training.config import fold_seed
    from mer_keras.training.run import protocol_folds
    from mer_keras.training.workers import FoldSession

    config = model_config(model, epochs)
    data = fake_cache()
    jobs = [(0, name, train, test, fold_seed(0, 0, name))
            for name, (train, test) in protocol_folds(config, data)[:folds]]
    started = time.perf_counter()
    session = FoldSession(config, data, mode, width)
    results = session.train(jobs)
    seconds = time.perf_counter() - started
    samples = sum(r.n_train * len(r.history["loss"]) for r in results)
    probe = get_builder(config.model)(input_shape=(28, 28, 2), num_classes=3,
                                      **config.model_options)
    return {"model": model, "mode": mode, "samples_per_s": samples / seconds,
            "seconds_per_fold": seconds / len(results),
            "gflops": 3 * forward_flops(probe) * samples / seconds / 1e9,
            "epochs": epochs, "folds": len(results), "width": width if mode == "fold_parallel"
            else 1}


def matmul_peak(size: int = 2048, repeats: int = 20) -> float:
    """TF fp32 matmul GFLOP/s (default threads)."""
    import tensorflow as tf
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.matmul(a, b))
    matmul().numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        out = matmul()
    out.numpy()
    return 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9


def _child(args) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes on 2 cores")
    parser.add_argument("--out", type=Path, help="folder for training.csv")
    parser.add_argument("--models", nargs="+", default=["fr", "off_apexnet"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        result = {"peak_gflops": matmul_peak()} if spec == "peak" else one(**spec)
        print(json.dumps(result))
        return 0
    if args.out is None:
        parser.error("--out is required")
    sizes = {"fr": (10, 4, 4), "off_apexnet": (30, 4, 4)} if args.quick else \
        {"fr": (40, 8, 8), "off_apexnet": (100, 8, 8)}
    print(f"$ {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, {platform.processor() or ''}, "
          f"load average {os.getloadavg()[0]:.2f}, python {platform.python_version()}")
    peak = _child("peak")["peak_gflops"]
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s")
    rows = []
    for model in args.models:
        epochs, folds, width = sizes[model]
        for mode in MODES:
            row = _child({"model": model, "mode": mode, "epochs": epochs, "folds": folds,
                          "width": width})
            row["peak_gflops"] = peak
            rows.append(row)
            print(f"{model:12s} {mode:14s} {row['samples_per_s']:8.0f} samples/s "
                  f"{row['seconds_per_fold']:7.2f} s/fold {row['gflops']:6.1f} GFLOP/s "
                  f"({epochs} epochs, {folds} folds)", flush=True)
        base = next(r for r in rows if r["model"] == model and r["mode"] == "per_fold_fit")
        for row in rows:
            if row["model"] == model and row is not base:
                print(f"  {row['mode']}: {row['samples_per_s'] / base['samples_per_s']:.2f}x "
                      f"samples/s, {base['seconds_per_fold'] / row['seconds_per_fold']:.2f}x "
                      "seconds per fold, against per_fold_fit")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "training.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)
    print(f"written to {args.out / 'training.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
