"""Errors for bad input, each naming the sample and the file it came from."""

from __future__ import annotations

import sys


class DataPrepError(Exception):
    """Base class of every error ``data_prep`` raises on bad input."""


class AnnotationError(DataPrepError):
    """A coding file that cannot be read at all: truncated, foreign or missing columns.

    Args:
        path: the annotation file.
        reason: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SampleError(DataPrepError):
    """One bad sample: a missing frame, an unreadable image, an impossible apex, an unknown label.

    Args:
        sample: the sample's full id, ``database/subject/clip`` (e.g. ``casme2/sub04/EP12_01f``).
        path: the file that shows the problem (a frame, or the coding file and its row).
        reason: what is wrong, in words a user can act on.
    """

    def __init__(self, sample: str, path, reason: str):
        self.sample = sample
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{sample}: {reason} ({self.path})")


class Problems:
    """Collects bad samples; raises at the first one when ``strict``.

    A reader or a pipeline stage calls :meth:`add` for each bad sample. In strict mode that raises the
    error at once; otherwise the sample is recorded as dropped and the run goes on, and
    :meth:`summary` says how many were dropped and why. :meth:`warn` records a doubt that does not
    drop the sample (a gap in its frames), in either mode.
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.errors: list[SampleError] = []
        self.warnings: list[SampleError] = []

    def add(self, error: SampleError) -> None:
        if self.strict:
            raise error
        self.errors.append(error)

    def warn(self, warning: SampleError) -> None:
        """Record a problem that keeps the sample, and print it at once as ``warning: ...`` on
        stderr (a stage's report may come much later, or only list drops). Never raises."""
        self.warnings.append(warning)
        print(f"warning: {warning}", file=sys.stderr)

    def extend(self, other: "Problems") -> None:
        for error in other.errors:
            self.add(error)
        self.warnings.extend(other.warnings)

    def __len__(self) -> int:
        return len(self.errors)

    def __iter__(self):
        return iter(self.errors)

    def summary(self) -> str:
        """One line per reason with its count, then one line per dropped sample; then the
        warnings' count by reason (each was printed when it was found)."""
        lines = ["no sample dropped"]
        if self.errors:
            lines = [f"{len(self.errors)} sample(s) dropped:"]
            lines += [f"  {count} x {reason}" for reason, count in _by_reason(self.errors)]
            lines += [f"  - {error}" for error in self.errors]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s), samples kept: " + ", ".join(
                f"{count} x {reason}" for reason, count in _by_reason(self.warnings)))
        return "\n".join(lines)


def _by_reason(errors) -> list[tuple[str, int]]:
    """``(reason, count)`` sorted by reason; a reason is the text before its first colon."""
    counts: dict[str, int] = {}
    for error in errors:
        key = error.reason.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())
