"""Frame files on disk: numeric ordering, frame look-up, gaps, and finding a database's frame
folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from data_prep.errors import Problems, SampleError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path) -> Optional[int]:
    """The last integer in a frame's name (``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562)."""
    match = _LAST_INT.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frames(frames_dir, sample: str = "?") -> list[tuple[int, Path]]:
    """The image frames of one clip folder, sorted numerically by the last integer in the name.

    ``img2.jpg`` comes before ``img10.jpg`` (a plain string sort would put it after). Files that are
    not .jpg/.jpeg/.png/.bmp, hidden files and names without a number are ignored.

    Args:
        frames_dir: the clip's folder.
        sample: the sample id, for the error message.

    Returns:
        ``(frame number, path)`` pairs in frame order; empty if the folder is missing or empty.

    Raises:
        SampleError: two files give the same frame number (``img137.jpg`` and ``img137 .jpg``, or
            ``img137.jpg`` and ``img137.png``): which one is frame 137 cannot be told, so neither is
            picked; the message names the files.
    """
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        return []
    frames = []
    for path in frames_dir.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in FRAME_SUFFIXES:
            continue
        number = frame_number(path)
        if number is not None and path.is_file():
            frames.append((number, path))
    frames.sort(key=lambda item: (item[0], item[1].name))
    clashes = [number for (number, _), (after, _) in zip(frames, frames[1:]) if number == after]
    if clashes:
        first = clashes[0]
        names = [repr(path.name) for number, path in frames if number == first]
        more = sorted(set(clashes))[1:]
        others = f" (so are other files of frame(s) {_ranges(more)})" if more else ""
        raise SampleError(sample, frames_dir, f"ambiguous frame files: {' and '.join(names)} are "
                                              f"{'both' if len(names) == 2 else 'all'} frame "
                                              f"{first}{others}; remove or rename the stray one")
    return frames


def frame_for(frames: list[tuple[int, Path]], number: int, sample: str = "?",
              frames_dir=None) -> Path:
    """The file of frame ``number`` among ``frames`` (from :func:`list_frames`).

    Args:
        frames: ``(number, path)`` pairs of one clip.
        number: the absolute frame number wanted (onset, apex or offset).
        sample: the sample id, for the error message.
        frames_dir: the clip folder, for the error message (defaults to the first frame's folder).

    Raises:
        SampleError: the clip has no frame with that number; the message names the sample, the
            folder and the frame range that is there.
    """
    for frame_no, path in frames:
        if frame_no == number:
            return path
    folder = frames_dir if frames_dir is not None else (frames[0][1].parent if frames else "?")
    if frames:
        have = f"the folder has frames {frames[0][0]}..{frames[-1][0]} ({len(frames)} files)"
    else:
        have = "the folder has no image frames"
    raise SampleError(sample, folder, f"frame missing: no frame {number}; {have}")


def frame_gaps(frames: list[tuple[int, Path]], first: int, last: int) -> list[tuple[int, int]]:
    """The runs of frame numbers within ``first..last`` that ``frames`` lacks, as inclusive
    ``(start, end)`` pairs: ``[(120, 121)]`` when img120 and img121 are missing."""
    gaps, expected = [], first
    for number in sorted({n for n, _ in frames if first <= n <= last}):
        if number > expected:
            gaps.append((expected, number - 1))
        expected = number + 1
    if expected <= last:
        gaps.append((expected, last))
    return gaps


def _ranges(numbers) -> str:
    """``[120, 121, 125]`` or ``[(120, 121), (125, 125)]`` -> ``"120..121, 125"`` (five at most)."""
    runs = [item if isinstance(item, tuple) else (item, item) for item in numbers]
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:5])
    return text + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")


def gap_warning(sample_id: str, frames_dir, frames: list[tuple[int, Path]], onset: int,
                apex: Optional[int], offset: int) -> Optional[SampleError]:
    """The warning for frames missing between the onset and the apex, or ``None``.

    With no apex (``None``: it is to be estimated) the estimate runs over the whole of
    ``onset..offset``, so that span is checked. A missing onset or annotated apex frame is not a
    gap but an error, reported where the frame is looked up (:func:`frame_for`), as is an apex
    outside ``onset..offset``: no warning then.
    """
    estimated = apex is None
    end = offset if estimated else apex
    have = {n for n, _ in frames}
    if onset not in have or not onset <= end <= offset or not (estimated or end in have):
        return None
    gaps = frame_gaps(frames, onset, end)
    if not gaps:
        return None
    missing = sum(b - a + 1 for a, b in gaps)
    span = (f"onset {onset} and offset {offset} (the apex is estimated over the gap)" if estimated
            else f"onset {onset} and apex {apex}")
    return SampleError(sample_id, frames_dir, f"frame gap: no frame {_ranges(gaps)} "
                                              f"({missing} missing) between {span}")


def warn_frame_gaps(samples: Iterable, problems: Problems) -> None:
    """``problems.warn`` each sample whose frames have a gap between onset and apex
    (:func:`gap_warning`); the samples are kept.

    Samples without a frame folder, or whose folder is missing, empty or ambiguous, are skipped:
    the stage reports those as errors when it reads them.
    """
    for sample in samples:
        if not getattr(sample, "frames_dir", None):
            continue
        try:
            frames = list_frames(sample.frames_dir, sample.sample_id)
        except SampleError:
            continue
        if not frames:
            continue
        onset = sample.onset if sample.onset is not None else frames[0][0]
        offset = sample.offset if sample.offset is not None else frames[-1][0]
        apex = None if sample.apex is None or sample.apex_source == "none" else int(sample.apex)
        warning = gap_warning(sample.sample_id, sample.frames_dir, frames, onset, apex, offset)
        if warning is not None:
            problems.warn(warning)


def find_dirs(root, child_pattern: str, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (``root`` included, up to ``max_depth`` levels down) with a child
    folder whose name fully matches ``child_pattern``; shallowest first, then by path.

    This is how a reader finds ``sub01/...`` under ``CASME2_RAW_selected/CASME2_RAW_selected/``.
    """
    pattern = re.compile(child_pattern)

    def visible_folders(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    return [folder for folder, subfolders, _ in _walk(root, max_depth, visible_folders)
            if any(pattern.fullmatch(child.name) for child in subfolders)]


def find_files(root, names: Iterable[str], max_depth: int = 3) -> list[Path]:
    """Files under ``root`` (up to ``max_depth`` levels down) whose name fully matches one of the
    regular expressions ``names`` (case-insensitive); shallowest first, then by path."""
    patterns = [re.compile(name, re.IGNORECASE) for name in names]

    def visible_entries(folder: Path) -> list[Path]:
        return [p for p in sorted(folder.iterdir()) if not p.name.startswith((".", "~$"))]

    return [child for _, _, others in _walk(root, max_depth, visible_entries) for child in others
            if any(p.fullmatch(child.name) for p in patterns)]


def _walk(root, max_depth: int,
          list_children: Callable[[Path], list[Path]]) -> Iterator[tuple[Path, list, list]]:
    """``(folder, subfolders, other entries)`` for ``root`` and the folders below it, up to
    ``max_depth`` levels down, level by level; ``list_children(folder)`` gives a folder's entries in
    order, and a folder it cannot list (``OSError``) is skipped."""
    level = [Path(root)]
    for _ in range(max_depth + 1):
        next_level = []
        for folder in level:
            try:
                children = list_children(folder)
            except OSError:
                continue
            subfolders, others = [], []
            for child in children:
                (subfolders if child.is_dir() else others).append(child)
            yield folder, subfolders, others
            next_level.extend(subfolders)
        level = next_level


def apex_problem(onset: Optional[int], apex: Optional[int], offset: Optional[int]) -> Optional[str]:
    """Why an annotated apex cannot be used, or ``None`` if it can.

    Missing (``/`` in the coding file), outside ``onset..offset``, or equal to the onset (onset and
    apex would be the same frame, so the onset->apex flow is zero). REPORT.md A: these two rules are
    exactly what brings CASME II to the 145 clips of the MEGC2019 composite.
    """
    if apex is None:
        return "apex missing: the coding file gives no apex frame ('/')"
    if onset is not None and offset is not None and not onset <= apex <= offset:
        return f"apex outside onset..offset: apex {apex} is not within {onset}..{offset}"
    if onset is not None and apex == onset:
        return f"onset equals apex: both are frame {apex}, so onset->apex motion is nil"
    return None
