"""The ``.npz`` cache that ``data_prep`` writes and ``mer_keras`` reads.

Layout of a cache folder::

    CACHE/
      cache.json                    what made it: kind, protocol, classes, parameters, package version
      index.csv                     one row per sample: database, subject, sample, label, ... , entry
      entries/<database>/<subject>/<clip>.npz

Each entry is one sample's arrays (``flow``: H x W x 3 float32 u, v, optical strain; optionally
``sequence_flow``, ``onset_face``, ``apex_face``) plus ``provenance``: a JSON string holding the
algorithm, its parameters, a SHA-256 of the source frames and the package version. Entries are read
with ``allow_pickle=False`` and every file is written atomically (temporary name, then rename), so a
killed run leaves no half-written file and a rerun keeps every entry whose provenance still matches.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from data_prep import __version__

CACHE_FORMAT = 1
INDEX_COLUMNS = (
    "database", "subject", "sample", "label", "emotion", "onset", "apex", "offset", "apex_source",
    "entry",
)


# --------------------------------------------------------------------------------------------------
# Atomic writes

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the whole new one."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


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


# --------------------------------------------------------------------------------------------------
# Provenance

def provenance_key(algorithm: str, params: Mapping, source_sha256: str) -> str:
    """The hash that decides whether a cached entry is still valid for these inputs."""
    blob = json.dumps(
        {"algorithm": algorithm, "params": params, "source_sha256": source_sha256},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def make_provenance(algorithm: str, params: Mapping, source_sha256: str, **extra) -> dict:
    """The provenance record stored in every entry."""
    return {
        "algorithm": algorithm,
        "params": dict(params),
        "source_sha256": source_sha256,
        "version": __version__,
        "key": provenance_key(algorithm, params, source_sha256),
        **extra,
    }


def hash_files(paths: Iterable) -> str:
    """SHA-256 over the bytes of ``paths`` in the given order (the source frames of a sample)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode("utf-8"))
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Entries

def entry_relpath(subject: str, clip: str) -> str:
    """``entries/<database>/<subject>/<clip>.npz`` for a prefixed subject id like ``casme2/sub01``."""
    safe_clip = clip.replace("/", "_").replace(" ", "_")
    return f"entries/{subject}/{safe_clip}.npz"


def write_entry(path, arrays: Mapping[str, np.ndarray], provenance: Mapping) -> None:
    """Write one sample's arrays and provenance to ``path`` atomically."""
    if "provenance" in arrays:
        raise ValueError("'provenance' is reserved for the provenance record")
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        provenance=np.array(json.dumps(dict(provenance), sort_keys=True, default=str)),
        **{name: np.asarray(value) for name, value in arrays.items()},
    )
    _atomic_write_bytes(Path(path), buffer.getvalue())


def read_entry(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read one entry: ``(arrays, provenance)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "provenance"}
        provenance = json.loads(str(data["provenance"]))
    return arrays, provenance


def read_provenance(path) -> dict | None:
    """The provenance of an entry, or ``None`` if the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["provenance"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def entry_is_valid(path, key: str) -> bool:
    """True if ``path`` holds a complete entry whose provenance key equals ``key``."""
    provenance = read_provenance(path)
    return provenance is not None and provenance.get("key") == key


# --------------------------------------------------------------------------------------------------
# Cache folder

def write_cache_meta(cache_dir, meta: Mapping) -> None:
    """Write ``cache.json``: kind, protocol, classes, parameters. The format and version are added."""
    record = {"format": CACHE_FORMAT, "version": __version__, **dict(meta)}
    atomic_write_text(Path(cache_dir) / "cache.json", json.dumps(record, indent=2, sort_keys=True))


def write_index(cache_dir, rows: Iterable[Mapping]) -> None:
    """Write the cache's ``index.csv``; each row names its entry relative to the cache folder."""
    atomic_write_csv(Path(cache_dir) / "index.csv", rows, INDEX_COLUMNS)


def read_index(cache_dir) -> list[dict]:
    path = Path(cache_dir) / "index.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_cache_meta(cache_dir) -> dict:
    path = Path(cache_dir) / "cache.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {cache_dir} is not a prepared cache (run `python -m data_prep flow` "
            "or `python -m data_prep import-flow-images` first)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def fingerprint(cache_dir) -> str:
    """A SHA-256 over ``index.csv`` and every entry's provenance key: equal caches, equal prints."""
    cache_dir = Path(cache_dir)
    digest = hashlib.sha256((cache_dir / "index.csv").read_bytes())
    for row in read_index(cache_dir):
        provenance = read_provenance(cache_dir / row["entry"]) or {}
        digest.update(row["entry"].encode("utf-8"))
        digest.update(str(provenance.get("key")).encode("utf-8"))
    return digest.hexdigest()


@dataclasses.dataclass
class CacheData:
    """A whole cache in memory, in ``index.csv`` order.

    Attributes:
        arrays: name -> array stacked over samples (``arrays["flow"]`` is N x H x W x 3). An array
            whose shape varies between samples is kept as a list.
        index: the rows of ``index.csv``.
        classes: the protocol's class names; ``labels`` index into it.
        labels: N integer labels.
        subjects: N prefixed subject ids (``"casme2/sub01"``), the LOSO groups.
        databases: N database names.
        meta: ``cache.json``.
        fingerprint: see :func:`fingerprint`.
    """

    arrays: dict
    index: list
    classes: tuple
    labels: np.ndarray
    subjects: np.ndarray
    databases: np.ndarray
    meta: dict
    fingerprint: str

    def __len__(self) -> int:
        return len(self.index)


def load_cache(cache_dir, arrays: Sequence[str] = ("flow",)) -> CacheData:
    """Load a prepared cache: the named arrays of every entry, labels and LOSO groups.

    Args:
        cache_dir: a folder written by ``python -m data_prep flow`` or ``import-flow-images``.
        arrays: which arrays to load from each entry.
    """
    cache_dir = Path(cache_dir)
    meta = read_cache_meta(cache_dir)
    index = read_index(cache_dir)
    classes = tuple(meta["classes"])
    collected: dict[str, list] = {name: [] for name in arrays}
    for row in index:
        entry_path = cache_dir / row["entry"]
        try:
            values, _ = read_entry(entry_path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise FileNotFoundError(
                f"{row['subject']}/{row['sample']}: cache entry {entry_path} is missing or "
                f"unreadable ({error}); rerun the preparation to rebuild it"
            ) from error
        for name in arrays:
            if name not in values:
                raise KeyError(f"{row['subject']}/{row['sample']}: entry {entry_path} has no "
                               f"array {name!r} (it has {sorted(values)})")
            collected[name].append(values[name])
    stacked = {}
    for name, items in collected.items():
        shapes = {item.shape for item in items}
        stacked[name] = np.stack(items) if len(shapes) <= 1 and items else items
    unknown = sorted({row["label"] for row in index} - set(classes))
    if unknown:
        raise ValueError(f"{cache_dir / 'index.csv'}: labels {unknown} are not among the "
                         f"protocol's classes {list(classes)}")
    return CacheData(
        arrays=stacked,
        index=index,
        classes=classes,
        labels=np.array([classes.index(row["label"]) for row in index], dtype=np.int64),
        subjects=np.array([row["subject"] for row in index]),
        databases=np.array([row["database"] for row in index]),
        meta=meta,
        fingerprint=fingerprint(cache_dir),
    )
