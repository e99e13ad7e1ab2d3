"""One run at a time in a run folder: an exclusive lock on ``<run folder>/.lock``.

Two runs writing into one folder undo each other: one's stale-move takes the other's folds, and
each scores fold files the other rewrote. :func:`run_folder_lock` holds ``fcntl.flock`` on the
folder's ``.lock`` for the whole run; a second run stops at once with a message naming the folder
and the holder (pid, host, start, command), or, with ``wait``, says so and waits for it. The
kernel drops a flock when its process dies, so a run killed with SIGKILL leaves a ``.lock`` file
that blocks nobody; the next run takes it over. The lock is held per open file, and Python opens
files close-on-exec, so the spawn workers do not inherit it. A process that already holds a
folder's lock takes it again at no cost (the experiment command holds it around ``run_protocol``
and the ``summary.csv`` it writes after).

Standard library only: no TensorFlow, nothing of ``mer_keras`` (a test can hold a lock from a
bare interpreter).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded
    fcntl = None

LOCK_NAME = ".lock"

#: resolved run folder -> the file descriptor of each lock this process holds.
_HELD: dict = {}


class RunFolderError(RuntimeError):
    """A run folder that a run cannot use as it is: busy, or changed under the run."""


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock."""


def read_holder(folder) -> dict:
    """What the holder of ``folder``'s lock recorded (pid, host, started, command); ``{}`` if
    nothing readable was recorded (yet)."""
    try:
        holder = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
    if not holder:
        return "a process that has not recorded itself yet"
    text = f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"
    return text + (f": {holder['command']}" if holder.get("command") else "")


def _busy(folder: Path) -> RunFolderBusy:
    return RunFolderBusy(
        f"{folder}: another run is writing into this run folder "
        f"({describe_holder(read_holder(folder))}); wait for it to end (--wait waits), or write "
        "this run to another folder (--name, --out)")


def _open_locked(path: Path, *, blocking: bool) -> int:
    """A descriptor of ``path`` holding its flock; :class:`BlockingIOError` if another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            # a holder unlinks the file on release: a lock taken on the unlinked file guards
            # nothing, so take it again on the file now at ``path``
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def run_folder_lock(folder, *, wait: bool = False,
                    say: Callable[[str], None] = lambda message: None) -> Iterator[Path]:
    """Hold ``folder``'s lock for the ``with`` block (``folder`` is created if needed).

    Args:
        folder: the run folder.
        wait: when another process holds it, say so through ``say`` and wait for it to end;
            else raise :class:`RunFolderBusy` at once.
        say: where the waiting message goes.

    Raises:
        RunFolderBusy: another process holds the lock (and ``wait`` is false).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _HELD or fcntl is None:  # held by this process already (or no flock here)
        yield folder
        return
    path = folder / LOCK_NAME
    try:
        fd = _open_locked(path, blocking=False)
    except BlockingIOError:
        if not wait:
            raise _busy(folder) from None
        say(f"{folder}: another run is writing into this run folder "
            f"({describe_holder(read_holder(folder))}); waiting for it to end")
        fd = _open_locked(path, blocking=True)
    _HELD[key] = fd
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        yield folder
    finally:
        del _HELD[key]
        try:
            os.unlink(path)  # while held: a waiter wakes on the unlinked file and retries
        except OSError:
            pass
        os.close(fd)
