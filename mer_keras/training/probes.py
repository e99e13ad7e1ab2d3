"""Per-epoch probes of a model's internals, measured on each fold's own training samples.

A model that registers a probe here (FR: :class:`mer_keras.models.fr_probe.FRProbe`) is measured
before its first epoch (epoch 0) and after every epoch, by the stacked engines, on up to
:data:`PROBE_SAMPLES` of the fold's training samples; never on its test subject. A probe reads the
weights and changes nothing: no random draw, no weight, so a run's predictions are the same with
or without it. The numbers go into each fold's side file (``probes``), then, averaged over the
folds and rounds, into ``metrics_by_epoch.csv`` (``pooling`` = :data:`POOLING`) and
``probes_by_epoch.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from mer_keras.figures import save_png

#: training samples a fold is probed on (evenly spaced over its training rows)
PROBE_SAMPLES = 128
#: the ``pooling`` of probe rows in ``metrics_by_epoch.csv``
POOLING = "training_probe"


def make_probe(model_name: str, model):
    """The probe of a built model, or None where its model registers none."""
    if model_name == "fr":
        from mer_keras.models.fr_probe import FRProbe
        return FRProbe.for_model(model)
    return None


def probe_rows(fit_rows: np.ndarray, count: int = PROBE_SAMPLES) -> np.ndarray:
    """Up to ``count`` of a fold's training rows, evenly spaced (no random draw)."""
    fit_rows = np.asarray(fit_rows)
    if len(fit_rows) <= count:
        return fit_rows
    return fit_rows[np.linspace(0, len(fit_rows) - 1, count).round().astype(int)]


def epoch_rows(fold_probes: Sequence[tuple[int, Mapping[str, Sequence[float]]]]) -> list[dict]:
    """``metrics_by_epoch.csv`` rows: each probe value per epoch, the mean over the folds that
    reached that epoch; ``fold_probes`` holds ``(round, probes)`` per fold, and ``n_rounds``
    counts the rounds whose folds were probed (rounds trained before the probes have none)."""
    rows = []
    n_rounds = len({round_index for round_index, _ in fold_probes})
    names = list(dict.fromkeys(name for _, probes in fold_probes for name in probes))
    for name in names:
        series = [probes[name] for _, probes in fold_probes if name in probes]
        for epoch in range(max(len(s) for s in series)):
            values = [s[epoch] for s in series if len(s) > epoch and np.isfinite(s[epoch])]
            if values:
                rows.append({"epoch": epoch, "database": "all", "metric": name,
                             "pooling": POOLING, "value": float(np.mean(values)),
                             "n_rounds": n_rounds})
    return rows


def plot_probes(path, rows: Sequence[Mapping], title: str = "") -> Optional[Path]:
    """``probes_by_epoch.png``: attention perplexity and largest weight per branch, ``||z'||/||z||``
    and z's dead units, against the epoch. Returns the path, or None where no row is a probe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, list] = {}
    for row in rows:
        if row["pooling"] == POOLING:
            series.setdefault(row["metric"], []).append((int(row["epoch"]), float(row["value"])))
    if not series:
        return None
    panels = [("attention perplexity (features attended)", "attention_perplexity_", True),
              ("largest attention weight", "attention_max_", False),
              ("||z'|| / ||z||", "fused_to_shared_norm", True),
              ("dead units of z", "shared_dead_fraction", False)]
    panels = [p for p in panels if any(name.startswith(p[1]) for name in series)]
    figure = Figure(figsize=(3.8 * len(panels), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (label, prefix, log) in zip(figure.subplots(1, len(panels), squeeze=False)[0],
                                        panels):
        for name in sorted(n for n in series if n.startswith(prefix)):
            points = sorted(series[name])
            branch = name[len(prefix):]
            ax.plot([e for e, _ in points], [v for _, v in points], marker=".",
                    label=f"branch {branch}" if branch else None)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch (0: initialisation)")
        ax.set_title(label, fontsize=10)
        if prefix.endswith("_"):
            ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return save_png(figure, path)
