"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Each file is written to a temporary name in its own folder, flushed to disk, given the mode the
user's umask gives any new file, and renamed over the target. Both ``data_prep`` (cache entries,
``index.csv``, ``cache.json``) and ``mer_keras`` (run folders, reports) write through these.
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

#: ``.<name>.<host>-<pid>.<random>.tmp``: whose temporary file it is, so that what a killed
#: writer left can be told from what a live one is writing (:func:`remove_stale_temporaries`).
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<host>[^.]*)-(?P<pid>\d+)\.[^.]+\.tmp")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc``).

    Elsewhere it is set and restored at once, as Python offers no other way.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; the parent folders are created.

    ``tempfile.mkstemp`` creates its file with mode 0600: the file is given ``0666 & ~umask``
    before the rename, so a shared cache is as readable as any file its owner writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the whole new one."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def atomic_write_csv(path, rows: Iterable[Mapping], columns: Sequence[str]) -> None:
    """Write dict rows as CSV with the given column order, atomically. Extra keys are kept after."""
    rows = list(rows)
    extra = [k for row in rows for k in row if k not in columns]
    fieldnames = list(columns) + list(dict.fromkeys(extra))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fieldnames})
    atomic_write_text(path, buffer.getvalue())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(folder) -> int:
    """Delete the temporary files under ``folder`` that a killed writer of this machine left
    (its process is gone); a live writer's, or another machine's, are kept. Returns how many."""
    removed, host = 0, _host()
    for path in Path(folder).rglob(".*.tmp"):
        match = _TEMPORARY.fullmatch(path.name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed
