"""Import of the MEGC2019 u/v/strain PNGs into the cache: the 442 real images and small fakes."""

from __future__ import annotations

import collections
import csv
import subprocess
import sys

import cv2
import numpy as np
import pytest

from data_prep import cache
from data_prep.datasets.flow_images import import_flow_images
from data_prep.errors import Problems, SampleError

HTNET = "wangzhifengharrison_HTNet"


def write_png(path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])  # OpenCV writes BGR


def write_labels(path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "sub", "filename_o", "label", "apex", "imagename",
                         "sub_filename"])
        writer.writerows(rows)


@pytest.fixture
def fake(tmp_path):
    """Three 4x5 PNGs, one per database, with and without the space before .png."""
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    pixels = {}
    for name in ("sub01_EP02_01f .png", "006_006_1_2.png", "s01_s01_ne_01 .png"):
        pixels[name] = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
        write_png(images / name, pixels[name])
    labels = tmp_path / "labels.csv"
    write_labels(labels, [["casme2", "sub01", "EP02_01f", 1, "", "", ""],
                          ["samm", "006", "006_1_2", 0, "", "", ""],
                          ["smic", "s01", "s01_ne_01", 2, "", "", ""]])
    return images, labels, pixels


def test_import_fake_images(fake, tmp_path):
    images, labels, pixels = fake
    out = tmp_path / "cache"
    result = import_flow_images(images, labels, out)
    assert (result.computed, result.reused, result.dropped) == (3, 0, 0)
    data = cache.load_cache(out)
    assert data.classes == ("negative", "positive", "surprise")
    assert data.labels.tolist() == [1, 0, 2]
    assert data.subjects.tolist() == ["casme2/sub01", "samm/006", "smic/s01"]
    assert [row["sample"] for row in data.index] == ["EP02_01f", "006_1_2", "s01_ne_01"]
    assert {row["apex_source"] for row in data.index} == {"unknown"}
    flow = data.arrays["flow"]
    assert flow.dtype == np.float32 and flow.shape == (3, 4, 5, 3)
    # channel order R, G, B = u, v, strain, scaled by 1/255
    np.testing.assert_allclose(flow[0], pixels["sub01_EP02_01f .png"] / 255.0, atol=1e-7)
    _, provenance = cache.read_entry(out / data.index[1]["entry"])
    assert provenance["algorithm"] == "imported-flow-image"
    assert provenance["source_sha256"] == cache.hash_files([images / "006_006_1_2.png"])
    assert data.meta["kind"] == "imported-flow-images" and data.meta["protocol"] == "cde"


def test_rerun_reuses_valid_entries_and_rewrites_changed_ones(fake, tmp_path):
    images, labels, _ = fake
    out = tmp_path / "cache"
    import_flow_images(images, labels, out)
    write_png(images / "006_006_1_2.png", np.zeros((4, 5, 3), np.uint8))
    again = import_flow_images(images, labels, out)
    assert (again.computed, again.reused) == (1, 2)
    assert cache.load_cache(out).arrays["flow"][1].max() == 0.0


def test_missing_and_unreadable_png(fake, tmp_path):
    images, labels, _ = fake
    (images / "006_006_1_2.png").unlink()
    (images / "s01_s01_ne_01 .png").write_bytes(b"not a png")
    problems = Problems()
    result = import_flow_images(images, labels, tmp_path / "cache", problems)
    assert result.dropped == 2 and len(result.rows) == 1
    messages = {error.sample: str(error) for error in problems}
    assert "flow image missing" in messages["samm/006/006_1_2"]
    assert "006_006_1_2 .png" in messages["samm/006/006_1_2"]
    assert "unreadable flow image" in messages["smic/s01/s01_ne_01"]
    assert "s01_s01_ne_01 .png" in messages["smic/s01/s01_ne_01"]
    with pytest.raises(SampleError, match="samm/006/006_1_2"):
        import_flow_images(images, labels, tmp_path / "cache2", Problems(strict=True))


def test_cli_strict_missing_png_exits_2_with_one_error_line(fake, tmp_path):
    images, labels, _ = fake
    (images / "sub01_EP02_01f .png").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "import-flow-images", "--images", str(images),
         "--labels", str(labels), "--out", str(tmp_path / "cache"), "--strict"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: casme2/sub01/EP02_01f")


@pytest.mark.parametrize("labels_name", ["combined_3_class2_for_optical_flow.csv",
                                         "manifest_442.csv"])
def test_import_real_442_flow_images(shared_data_dir, tmp_path, labels_name):
    folder = shared_data_dir / HTNET
    result = import_flow_images(folder / "datasets" / "STSNet_whole_norm_u_v_os",
                                folder / labels_name, tmp_path / "cache")
    assert (result.computed, result.dropped) == (442, 0)
    data = cache.load_cache(tmp_path / "cache")
    assert len(data) == 442
    assert collections.Counter(data.labels.tolist()) == {0: 250, 1: 109, 2: 83}
    assert len(set(data.subjects.tolist())) == 68
    per_db = collections.Counter(data.databases.tolist())
    assert per_db == {"casme2": 145, "samm": 133, "smic": 164}
    flow = data.arrays["flow"]
    assert flow.shape == (442, 28, 28, 3) and flow.dtype == np.float32
    assert flow.min() == 0.0 and flow.max() == 1.0
    # every channel was min-max stretched per image (PROVENANCE.md)
    assert np.all(flow.min(axis=(1, 2)) == 0.0) and np.all(flow.max(axis=(1, 2)) == 1.0)
    samples = {(row["subject"], row["sample"]) for row in data.index}
    assert ("smic/s01", "s01_ne_01") in samples and ("samm/006", "006_1_2") in samples


def test_cli_index_of_a_prepared_cache(fake, tmp_path):
    images, labels, _ = fake
    import_flow_images(images, labels, tmp_path / "cache")
    out = tmp_path / "index.csv"
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "index", "--protocol", "cde", "--cache",
         str(tmp_path / "cache"), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["sample"] for row in rows] == ["EP02_01f", "006_1_2", "s01_ne_01"]
    assert done.stdout.splitlines()[-2].split() == ["all", "1", "1", "1", "3", "3"]
