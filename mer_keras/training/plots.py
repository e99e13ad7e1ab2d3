"""The run's picture: pooled confusion matrices, one panel per database (Agg canvas, no pyplot)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from mer_keras.figures import save_png


def plot_confusion_matrices(path, matrices: Mapping[str, np.ndarray], classes: Sequence[str],
                            title: str = "") -> None:
    """Save one confusion matrix per entry of ``matrices`` side by side (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.6 * len(matrices), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, cm) in zip(axes, matrices.items()):
        ax.imshow(cm, cmap="Blues")
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, str(int(count)), ha="center", va="center",
                    color="white" if count > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    if title:
        figure.suptitle(title)
    save_png(figure, path)
