"""Saving a figure the way every result file is saved: atomically, with the umask's mode."""

from __future__ import annotations

import io
from pathlib import Path

from data_prep.atomic import atomic_write_bytes


def save_png(figure, path, dpi: int = 100) -> Path:
    """Render a matplotlib ``figure`` (Agg canvas) to ``path`` as PNG; readers never see half."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
