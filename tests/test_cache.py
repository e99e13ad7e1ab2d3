"""The .npz cache format: atomic entries, provenance keys, loading, fingerprints."""

import json

import numpy as np
import pytest

from data_prep import cache


def _write_tiny_cache(tmp_path, labels=("negative", "positive", "surprise", "negative")):
    rows = []
    for i, label in enumerate(labels):
        subject = f"casme2/sub0{i % 2 + 1}"
        rel = cache.entry_relpath(subject, f"EP0{i}_01")
        provenance = cache.make_provenance("tvl1", {"flow_size": 4}, source_sha256=f"src{i}")
        cache.write_entry(tmp_path / rel, {"flow": np.full((4, 4, 3), i, np.float32)}, provenance)
        rows.append({"database": "casme2", "subject": subject, "sample": f"EP0{i}_01",
                     "label": label, "entry": rel})
    cache.write_index(tmp_path, rows)
    cache.write_cache_meta(tmp_path, {"kind": "flow", "protocol": "cde",
                                      "classes": ["negative", "positive", "surprise"]})
    return rows


def test_entry_round_trip_keeps_arrays_and_provenance(tmp_path):
    provenance = cache.make_provenance("tvl1", {"tau": 0.25}, source_sha256="abc")
    flow = np.random.rand(28, 28, 3).astype(np.float32)
    cache.write_entry(tmp_path / "e.npz", {"flow": flow}, provenance)
    arrays, read_back = cache.read_entry(tmp_path / "e.npz")
    np.testing.assert_array_equal(arrays["flow"], flow)
    assert read_back["params"] == {"tau": 0.25}
    assert read_back["source_sha256"] == "abc"
    assert read_back["version"]
    assert cache.entry_is_valid(tmp_path / "e.npz", provenance["key"])


def test_entry_is_invalid_when_a_parameter_changes(tmp_path):
    provenance = cache.make_provenance("tvl1", {"tau": 0.25}, source_sha256="abc")
    cache.write_entry(tmp_path / "e.npz", {"flow": np.zeros(3)}, provenance)
    other = cache.provenance_key("tvl1", {"tau": 0.3}, "abc")
    assert not cache.entry_is_valid(tmp_path / "e.npz", other)
    assert not cache.entry_is_valid(tmp_path / "missing.npz", provenance["key"])


def test_a_truncated_entry_is_invalid_not_an_exception(tmp_path):
    provenance = cache.make_provenance("tvl1", {}, source_sha256="abc")
    cache.write_entry(tmp_path / "e.npz", {"flow": np.zeros((28, 28, 3))}, provenance)
    data = (tmp_path / "e.npz").read_bytes()
    (tmp_path / "e.npz").write_bytes(data[: len(data) // 2])
    assert not cache.entry_is_valid(tmp_path / "e.npz", provenance["key"])


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    cache.atomic_write_text(tmp_path / "a.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_load_cache_stacks_entries_in_index_order(tmp_path):
    _write_tiny_cache(tmp_path)
    data = cache.load_cache(tmp_path)
    assert data.arrays["flow"].shape == (4, 4, 4, 3)
    assert data.arrays["flow"][:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert data.labels.tolist() == [0, 1, 2, 0]
    assert data.classes == ("negative", "positive", "surprise")
    assert data.subjects.tolist() == ["casme2/sub01", "casme2/sub02"] * 2


def test_fingerprint_changes_with_an_entry(tmp_path):
    _write_tiny_cache(tmp_path)
    before = cache.fingerprint(tmp_path)
    assert before == cache.fingerprint(tmp_path)
    rel = cache.entry_relpath("casme2/sub01", "EP00_01")
    cache.write_entry(tmp_path / rel, {"flow": np.ones((4, 4, 3), np.float32)},
                      cache.make_provenance("tvl1", {"flow_size": 5}, source_sha256="src0"))
    assert cache.fingerprint(tmp_path) != before


def test_load_cache_names_a_missing_entry(tmp_path):
    rows = _write_tiny_cache(tmp_path)
    (tmp_path / rows[1]["entry"]).unlink()
    with pytest.raises(FileNotFoundError, match="casme2/sub02/EP01_01"):
        cache.load_cache(tmp_path)


def test_load_cache_rejects_a_folder_that_is_no_cache(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared cache"):
        cache.load_cache(tmp_path)


def test_cache_meta_records_format_and_version(tmp_path):
    cache.write_cache_meta(tmp_path, {"kind": "flow", "classes": ["a"]})
    meta = json.loads((tmp_path / "cache.json").read_text())
    assert meta["format"] == cache.CACHE_FORMAT and meta["version"]
