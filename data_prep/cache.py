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

The provenance also records ``arrays_sha256``, a SHA-256 of the stored arrays taken when the entry
was written: an entry is valid only if its key matches AND its arrays still hash to it, so damaged
bytes behind an intact provenance are recomputed by a rerun and refused by :func:`load_cache`.
``cache.json`` records the number of rows of ``index.csv`` and its SHA-256 (``samples``,
``index_sha256``), so a cut or edited index is refused too.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from data_prep import __version__
from data_prep.atomic import atomic_write_bytes, atomic_write_csv, atomic_write_text  # noqa: F401
from data_prep.errors import DataPrepError

CACHE_FORMAT = 1
INDEX_COLUMNS = (
    "database", "subject", "sample", "label", "emotion", "onset", "apex", "offset", "apex_source",
    "entry",
)


#: the old private name of :func:`data_prep.atomic.atomic_write_bytes`, kept for callers.
_atomic_write_bytes = atomic_write_bytes


class CacheError(DataPrepError, ValueError):
    """A cache folder that is damaged or inconsistent: the message names the file and says how to
    rebuild it. A ``ValueError`` too, so callers that catch bad values catch it."""


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


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays in name order: each name, dtype, shape and raw bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode("utf-8"))
        digest.update(value)
    return digest.hexdigest()


def write_entry(path, arrays: Mapping[str, np.ndarray], provenance: Mapping) -> None:
    """Write one sample's arrays and provenance to ``path`` atomically.

    The provenance stored gains ``arrays_sha256`` (:func:`arrays_sha256` of ``arrays``).
    """
    if "provenance" in arrays:
        raise ValueError("'provenance' is reserved for the provenance record")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    record = {**dict(provenance), "arrays_sha256": arrays_sha256(arrays)}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, provenance=np.array(json.dumps(record, sort_keys=True, default=str)), **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


#: What reading a damaged ``.npz`` raises is open-ended: ``BadZipFile`` (a cut zip, a bad
#: CRC-32), ``zlib.error``, ``NotImplementedError`` (a flipped compression-method bit), numpy's
#: ``ValueError`` or a tokenizer error on a garbled ``.npy`` header, ``JSONDecodeError``,
#: ``KeyError``, ``OSError``... (found by flipping bytes of real entries), so any ``Exception``
#: counts as damage.
DAMAGED = Exception


def read_entry(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read one entry: ``(arrays, provenance)``.

    Raises:
        Exception: the file is missing (``FileNotFoundError``) or damaged (:data:`DAMAGED`).
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "provenance"}
        provenance = json.loads(str(data["provenance"]))
    return arrays, provenance


def read_provenance(path) -> dict | None:
    """The provenance of an entry, or ``None`` if the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            provenance = json.loads(str(data["provenance"]))
    except DAMAGED:
        return None
    return provenance if isinstance(provenance, dict) else None


def entry_problem(path, key: Optional[str] = None) -> Optional[str]:
    """Why ``path`` is not a sound entry (for provenance key ``key``), or ``None`` if it is.

    Sound: the file decodes, its provenance key equals ``key`` (when given), and its arrays hash
    to the ``arrays_sha256`` its provenance recorded. The arrays are read only once the key
    matches, so a changed parameter costs one small read.
    """
    path = Path(path)
    if not path.is_file():
        return "missing"
    try:
        with np.load(path, allow_pickle=False) as data:
            provenance = json.loads(str(data["provenance"]))
            if key is not None and provenance.get("key") != key:
                return "stale: made from other inputs or parameters"
            recorded = provenance.get("arrays_sha256")
            if recorded is None:
                return "no checksum of its arrays (written before they had one)"
            arrays = {name: data[name] for name in data.files if name != "provenance"}
    except DAMAGED as error:
        return f"unreadable ({type(error).__name__}: {' '.join(str(error).split())})"
    if arrays_sha256(arrays) != recorded:
        return "damaged: its arrays do not match the checksum its provenance records"
    return None


def entry_is_valid(path, key: str) -> bool:
    """True if ``path`` holds a sound entry whose provenance key equals ``key``."""
    return entry_problem(path, key) is None


# --------------------------------------------------------------------------------------------------
# Cache folder

def index_record(cache_dir) -> dict:
    """``{"samples": rows, "index_sha256": ...}`` of the cache's ``index.csv`` as it is on disk."""
    path = Path(cache_dir) / "index.csv"
    data = path.read_bytes()
    return {"samples": len(read_index(cache_dir)), "index_sha256": hashlib.sha256(data).hexdigest()}


def write_cache_meta(cache_dir, meta: Mapping) -> None:
    """Write ``cache.json``: kind, protocol, classes, parameters. The format and version are added,
    and, when ``index.csv`` is written (it is written first), its row count and SHA-256."""
    record = {"format": CACHE_FORMAT, "version": __version__, **dict(meta)}
    record.pop("samples", None), record.pop("index_sha256", None)
    if (Path(cache_dir) / "index.csv").is_file():
        record.update(index_record(cache_dir))
    atomic_write_text(Path(cache_dir) / "cache.json", json.dumps(record, indent=2, sort_keys=True))


def write_index(cache_dir, rows: Iterable[Mapping]) -> None:
    """Write the cache's ``index.csv``; each row names its entry relative to the cache folder."""
    atomic_write_csv(Path(cache_dir) / "index.csv", rows, INDEX_COLUMNS)


def read_index(cache_dir) -> list[dict]:
    """The rows of the cache's ``index.csv``.

    Raises:
        CacheError: a row with more or fewer fields than the header (a cut or edited file).
    """
    path = Path(cache_dir) / "index.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise CacheError(
                    f"{path} line {reader.line_num}: {len(row) - (None in row)} fields where the "
                    f"header has {len(reader.fieldnames)} (the file was cut or edited); rerun the "
                    "preparation to rewrite it")
            rows.append(row)
    return rows


def read_cache_meta(cache_dir) -> dict:
    """``cache.json`` of ``cache_dir``.

    Raises:
        FileNotFoundError: ``cache_dir`` holds no ``cache.json`` (it is no prepared cache).
        CacheError: ``cache.json`` is not a JSON object (cut or edited); the message names it.
    """
    path = Path(cache_dir) / "cache.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {cache_dir} is not a prepared cache (run `python -m data_prep flow` "
            "or `python -m data_prep import-flow-images` first)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CacheError(f"{path}: not valid JSON ({error}); the file was cut or edited: rerun "
                         "the preparation to rewrite it") from error
    if not isinstance(meta, dict):
        raise CacheError(f"{path}: holds a {type(meta).__name__}, not a JSON object; rerun the "
                         "preparation to rewrite it")
    return meta


def check_index(cache_dir, meta: Mapping) -> None:
    """Refuse an ``index.csv`` that is not the one ``cache.json`` recorded (row count, SHA-256).

    Caches written before ``cache.json`` recorded them are not checked.

    Raises:
        CacheError: naming both files and both counts.
    """
    if "index_sha256" not in meta:
        return
    cache_dir = Path(cache_dir)
    path, meta_path = cache_dir / "index.csv", cache_dir / "cache.json"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() == meta["index_sha256"]:
        return
    lines = list(csv.reader(data.decode("utf-8", errors="replace").splitlines()))
    rows = max(0, len(lines) - 1)
    short = bool(lines) and len(lines[-1]) < len(lines[0])
    if rows != meta.get("samples"):
        what = (f"{rows} sample rows{' (the last one cut short)' if short else ''}, where "
                f"{meta_path} records {meta.get('samples')}")
    else:
        what = f"its {rows} rows are not those {meta_path} records (their SHA-256 differs)"
    raise CacheError(f"{path}: {what}; the index was cut or edited after the preparation: rerun "
                     "the preparation to rewrite it")


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

    Raises:
        FileNotFoundError: no ``cache.json``, or an entry is missing.
        CacheError: ``cache.json`` cannot be read, ``index.csv`` is not the one it records, or an
            entry is unreadable or damaged; each names the file and says how to rebuild it.
    """
    cache_dir = Path(cache_dir)
    meta = read_cache_meta(cache_dir)
    check_index(cache_dir, meta)
    index = read_index(cache_dir)
    classes = tuple(meta["classes"])
    collected: dict[str, list] = {name: [] for name in arrays}
    for row in index:
        entry_path = cache_dir / row["entry"]
        sample = f"{row['subject']}/{row['sample']}"
        try:
            values, provenance = read_entry(entry_path)
        except DAMAGED as error:
            if not entry_path.is_file():
                raise FileNotFoundError(f"{sample}: cache entry {entry_path} is missing; rerun "
                                        "the preparation to rebuild it") from error
            raise CacheError(f"{sample}: cache entry {entry_path} is unreadable "
                             f"({type(error).__name__}: {' '.join(str(error).split())}); rerun "
                             "the preparation to rebuild it") from error
        recorded = provenance.get("arrays_sha256") if isinstance(provenance, dict) else None
        if recorded is not None and arrays_sha256(values) != recorded:
            raise CacheError(f"{sample}: cache entry {entry_path} is damaged (its arrays do not "
                             "match the checksum its provenance records); rerun the preparation "
                             "to rebuild it")
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
