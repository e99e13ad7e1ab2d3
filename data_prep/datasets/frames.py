"""Frame files on disk: numeric ordering, frame look-up, and finding a database's frame folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from data_prep.errors import SampleError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path) -> Optional[int]:
    """The last integer in a frame's name (``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562)."""
    match = _LAST_INT.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frames(frames_dir) -> list[tuple[int, Path]]:
    """The image frames of one clip folder, sorted numerically by the last integer in the name.

    ``img2.jpg`` comes before ``img10.jpg`` (a plain string sort would put it after). Files that are
    not .jpg/.jpeg/.png/.bmp, hidden files and names without a number are ignored.

    Args:
        frames_dir: the clip's folder.

    Returns:
        ``(frame number, path)`` pairs in frame order; empty if the folder is missing or empty.
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
