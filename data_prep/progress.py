"""Progress on a stream: a tqdm bar on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns; in a log file (``run_fr_cde.sh > log 2>&1``) every
redraw is one more line. Where the stream is not a terminal, :class:`Progress` writes one line per
finished item instead (``every`` items, for many small ones), with the count and the time since
the start::

    fr_cde: 9/68 folds done (round 0 casme2/sub09), 3m12s

No estimate of the time left: the folds of a fold-parallel group finish at one instant, so a rate
over the folds so far misleads until the group's last fold is counted.

Only the standard library and tqdm, in ``data_prep`` so that the data stages (which never import
``mer_keras``) and the training core share it.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A count of finished items out of ``total``: a tqdm bar where ``stream`` is a terminal,
    else one line per ``every`` finished items (and the last one).

    Args:
        total: items in all.
        desc: what the count is of (the bar's label, each line's start).
        unit: one item's name (``"fold"``, ``"clip"``); lines add an ``s``.
        initial: items already finished before (a resumed run).
        stream: where it goes (default ``sys.stderr``).
        enabled: False shows nothing.
        every: in lines, write one after every ``every`` items.
    """

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0,
                 stream: Optional[TextIO] = None, enabled: bool = True, every: int = 1):
        self.total, self.desc, self.unit, self.initial = int(total), desc, unit, int(initial)
        self.stream = sys.stderr if stream is None else stream
        self.enabled, self.every = enabled, max(1, int(every))
        self.done, self.started = self.initial, time.monotonic()
        self.bar = None
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, initial=self.initial, desc=desc, unit=unit,
                            file=self.stream)
        elif enabled and self.initial:
            self._line(f"{self.initial}/{self.total} {unit}s already done")

    def _line(self, text: str) -> None:
        self.stream.write(f"{self.desc}: {text}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """What is under way now (the bar's postfix; lines say what finished instead)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def update(self, n: int = 1, *, finished: str = "") -> None:
        """``n`` more items finished; ``finished`` names them (in lines)."""
        before, self.done = self.done, self.done + n
        if self.bar is not None:
            self.bar.update(n)
            return
        if not self.enabled or (self.done // self.every == before // self.every
                                and self.done < self.total):
            return
        self._line(f"{self.done}/{self.total} {self.unit}s done"
                   + (f" ({finished})" if finished else "")
                   + f", {_duration(time.monotonic() - self.started)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
