"""The apex-frame cache (``frames``) and the import of the MEGC2019 apex crops
(``import-apex-images``): tiny hand-written clips and JPGs in tmp_path, and the 442 real crops."""

from __future__ import annotations

import collections
import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep import apex_frames, cache, pipeline
from data_prep.__main__ import build_parser
from data_prep.__main__ import main as cli_main
from data_prep.datasets.flow_images import import_flow_images
from data_prep.errors import AnnotationError, Problems, SampleError
from data_prep.samples import Sample

WIDTH, HEIGHT = 64, 48
FRAMES = range(10, 18)          # frame numbers of every clip (onset 10, offset 17)
HTNET = "wangzhifengharrison_HTNet"


def colour(n: int) -> tuple[int, int, int]:
    """The RGB colour of frame ``n``: each frame is one flat colour, so a crop names its frame."""
    return (10 * n, 100, 250 - 5 * n)


def _clip(folder: Path, gray: bool = False) -> Path:
    folder.mkdir(parents=True)
    for n in FRAMES:
        if gray:
            image = np.full((HEIGHT, WIDTH), 10 * n, np.uint8)
        else:
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = colour(n)[::-1]          # OpenCV writes BGR
        assert cv2.imwrite(str(folder / f"img{n}.png"), image)
    return folder


def _sample(root, subject, clip, *, apex=14, database="casme2", gray=False):
    frames_dir = _clip(root / subject / clip, gray=gray)
    return Sample(database=database, subject=f"{database}/{subject}", clip=clip, onset=10,
                  apex=apex, offset=17, emotion="happiness",
                  apex_source="annotation" if apex is not None else "none",
                  frames_dir=str(frames_dir), source="test")


@pytest.fixture
def items(tmp_path):
    root = tmp_path / "frames"
    return [
        (_sample(root, "sub01", "EP01_01"), "positive"),             # apex inside the clip
        (_sample(root, "sub02", "EP02_01", apex=11), "negative"),     # apex next to the onset
        (_sample(root, "s1", "s1_po_01", apex=None, database="smic", gray=True), "positive"),
    ]


def _run(items, out, **kwargs):
    params = apex_frames.frames_params(**{"face_size": 32, "face_detector": "none",
                                          **kwargs.pop("params", {})})
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("progress", False)
    return apex_frames.prepare_frames_cache(items, out, params=params, **kwargs)


def _frame_numbers(frames: np.ndarray) -> list[int]:
    """Which frame each RGB crop of one entry shows (the first channel is 10 x the number)."""
    return [int(crop[0, 0, 0]) // 10 for crop in frames]


def test_apex_window_is_centred_and_clamped():
    assert apex_frames.apex_window(14, 10, 17, 1) == [14]
    assert apex_frames.apex_window(14, 10, 17, 5) == [12, 13, 14, 15, 16]
    assert apex_frames.apex_window(10, 10, 17, 5) == [10, 10, 10, 11, 12]
    assert apex_frames.apex_window(17, 10, 17, 5) == [15, 16, 17, 17, 17]
    assert apex_frames.apex_window(11, 10, 11, 5) == [10, 10, 11, 11, 11]   # clip of 2 frames
    assert apex_frames.apex_window(14, 10, 17, 4) == [12, 13, 14, 15]
    with pytest.raises(ValueError, match="at least 1"):
        apex_frames.apex_window(14, 10, 17, 0)
    with pytest.raises(ValueError, match="not within"):
        apex_frames.apex_window(18, 10, 17, 1)


def test_params_record_the_choices_and_reject_bad_values():
    params = apex_frames.frames_params()
    assert (params["frames"], params["face_size"], params["apex_rule"]) == (1, 224, "middle")
    assert params["has_neutral"] is True and params["colour"] == "RGB uint8"
    assert params["haar"]["margin"] == 0.1
    assert apex_frames.frames_params(face_detector="none")["haar"] is None
    for bad in ({"frames": 0}, {"face_size": 8}, {"face_detector": "dlib"},
                {"apex_rule": "peak"}):
        with pytest.raises(ValueError):
            apex_frames.frames_params(**bad)


def test_one_apex_frame_and_the_onset_as_neutral(items, tmp_path):
    out = tmp_path / "cache"
    summary = _run(items, out, protocol="cde", classes=["negative", "positive", "surprise"])
    assert (summary.computed, summary.reused, summary.dropped) == (3, 0, 0)
    data = cache.load_cache(out, arrays=("frames", "neutral"))
    frames, neutral = data.arrays["frames"], data.arrays["neutral"]
    assert frames.shape == (3, 1, 32, 32, 3) and frames.dtype == np.uint8
    assert neutral.shape == (3, 32, 32, 3) and neutral.dtype == np.uint8
    assert np.all(frames[0, 0] == colour(14))            # RGB, not OpenCV's BGR
    assert np.all(neutral[0] == colour(10))              # the onset frame
    assert [_frame_numbers(f) for f in frames] == [[14], [11], [13]]   # SMIC: middle of 10..17
    gray = frames[2, 0]
    assert np.all(gray[..., 0] == gray[..., 1]) and np.all(gray[..., 1] == gray[..., 2])
    assert data.meta["kind"] == "frames" and data.meta["protocol"] == "cde"
    assert data.meta["params"]["frames"] == 1 and data.meta["params"]["has_neutral"] is True
    assert data.classes == ("negative", "positive", "surprise")
    assert [row["apex_source"] for row in data.index] == ["annotation", "annotation", "middle"]
    assert [row["apex"] for row in data.index] == ["14", "11", "13"]
    _, provenance = cache.read_entry(out / data.index[2]["entry"])
    assert provenance["frame_numbers"] == [13] and provenance["neutral_frame"] == 10
    assert provenance["frames"] == ["img10.png", "img13.png"]
    assert provenance["face_box_source"] == "input-crop"


def test_five_frames_clamped_at_the_clip_ends(items, tmp_path):
    out = tmp_path / "cache"
    _run(items, out, params={"frames": 5})
    data = cache.load_cache(out, arrays=("frames", "neutral"))
    assert data.arrays["frames"].shape == (3, 5, 32, 32, 3)
    assert [_frame_numbers(f) for f in data.arrays["frames"]] == [
        [12, 13, 14, 15, 16], [10, 10, 11, 12, 13], [11, 12, 13, 14, 15]]
    _, provenance = cache.read_entry(out / data.index[1]["entry"])
    assert provenance["frame_numbers"] == [10, 10, 11, 12, 13]


def test_smic_apex_by_interframe_diff_hashes_the_whole_clip(items, tmp_path):
    """The gray SMIC frames grow brighter with the frame number: the last differs most."""
    summary = _run(items, tmp_path / "cache", params={"frames": 5, "apex_rule": "interframe-diff"})
    smic = summary.rows[2]
    assert (smic["apex"], smic["apex_source"]) == (17, "interframe-diff")
    data = cache.load_cache(tmp_path / "cache", arrays=("frames",))
    assert _frame_numbers(data.arrays["frames"][2]) == [15, 16, 17, 17, 17]
    _, provenance = cache.read_entry(tmp_path / "cache" / data.index[2]["entry"])
    assert provenance["frames"] == [f"img{n}.png" for n in FRAMES]


def test_index_is_the_flow_stage_index(items, tmp_path):
    _run(items, tmp_path / "frames", params={"frames": 5})
    pipeline.prepare_flow_cache(items, tmp_path / "flow", workers=1, progress=False,
                                params=pipeline.flow_params(face_size=32, flow_size=8,
                                                            face_detector="none",
                                                            apex_rule="middle"))
    flow_index = (tmp_path / "flow" / "index.csv").read_text()
    assert (tmp_path / "frames" / "index.csv").read_text() == flow_index


def test_rerun_reuses_and_a_changed_frame_count_or_file_invalidates(items, tmp_path):
    out = tmp_path / "cache"
    _run(items, out)
    before = cache.fingerprint(out)
    again = _run(items, out)
    assert (again.computed, again.reused) == (0, 3)
    assert again.rows[2]["apex"] == 13                  # read back from the provenance
    assert cache.fingerprint(out) == before
    five = _run(items, out, params={"frames": 5})
    assert (five.computed, five.reused) == (3, 0)
    assert cache.load_cache(out, arrays=("frames",)).arrays["frames"].shape[1] == 5
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    cv2.imwrite(str(Path(items[0][0].frames_dir) / "img15.png"), image)   # in sub01's window
    edited = _run(items, out, params={"frames": 5})
    assert (edited.computed, edited.reused) == (1, 2)


@pytest.mark.parametrize("kind, reason", [("size", "frame size differs"),
                                          ("garbage", "unreadable image"),
                                          ("missing", "frame missing: no frame 13")])
def test_bad_window_frame_names_sample_and_file(items, tmp_path, kind, reason):
    path = Path(items[0][0].frames_dir) / "img13.png"
    if kind == "size":
        cv2.imwrite(str(path), np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8))
    elif kind == "garbage":
        path.write_bytes(b"not an image")
    else:
        path.unlink()
    summary = _run(items, tmp_path / "cache", params={"frames": 3})
    assert summary.dropped == 1 and len(summary.rows) == 2
    message = str(next(iter(summary.problems)))
    assert message.startswith("casme2/sub01/EP01_01:") and reason in message
    assert str(path if kind != "missing" else path.parent) in message
    assert [row["sample"] for row in cache.read_index(tmp_path / "cache")] == [
        "EP02_01", "s1_po_01"]
    with pytest.raises(SampleError, match=reason):
        _run(items, tmp_path / "strict", params={"frames": 3}, problems=Problems(strict=True))
    # a single apex frame (14) does not need frame 13
    assert _run(items, tmp_path / "one", params={"frames": 1}).dropped == 0


def test_parser_defaults_and_usage_errors_exit_2(tmp_path, capsys):
    args = build_parser().parse_args(["frames", "--protocol", "cde", "--out", "x"])
    assert (args.frames, args.face_size, args.face_detector, args.apex_rule, args.workers) == (
        1, 224, "haar", "middle", 0)
    imported = build_parser().parse_args(["import-apex-images", "--images", "i", "--labels", "l",
                                          "--out", "o"])
    assert imported.face_size == 224 and imported.strict is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["frames", "--protocol", "cde", "--out", "x",
                                   "--apex-rule", "peak"])
    capsys.readouterr()
    assert cli_main(["frames", "--protocol", "smic_3class", "--smic", str(tmp_path),
                     "--out", str(tmp_path / "c"), "--frames", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: frames must be at least 1, got 0"]
    assert cli_main(["frames", "--protocol", "smic_3class", "--out", str(tmp_path / "c")]) == 2
    assert "give at least one database root" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# import-apex-images

def write_labels(path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "sub", "filename_o", "label", "apex", "imagename",
                         "sub_filename"])
        writer.writerows(rows)


@pytest.fixture
def fake(tmp_path):
    """Three 24 x 24 JPGs named as HTNet names them (SMIC unpadded; one name left blank in the
    list, found as ``<subject>_<clip>.jpg``), their label list, and matching flow PNGs."""
    images, flows = tmp_path / "images", tmp_path / "flows"
    images.mkdir()
    flows.mkdir()
    rng = np.random.default_rng(0)
    for name in ("sub01_EP02_01f.jpg", "006_006_1_2.jpg", "s01_s1_ne_01.jpg"):
        assert cv2.imwrite(str(images / name), rng.integers(0, 256, (24, 24, 3), np.uint8))
    for name in ("sub01_EP02_01f .png", "006_006_1_2 .png", "s01_s01_ne_01 .png"):
        assert cv2.imwrite(str(flows / name), rng.integers(0, 256, (4, 4, 3), np.uint8))
    labels = tmp_path / "labels.csv"
    write_labels(labels, [["casme2", "sub01", "EP02_01f", 1, "", "sub01_EP02_01f.jpg", ""],
                          ["samm", "006", "006_1_2", 0, "", "", ""],
                          ["smic", "s01", "s01_ne_01", 2, "", "s01_s1_ne_01.jpg", ""]])
    return images, labels, flows


def test_import_fake_apex_images(fake, tmp_path):
    images, labels, flows = fake
    out = tmp_path / "cache"
    result = apex_frames.import_apex_images(images, labels, out, face_size=24)
    assert (result.computed, result.reused, result.dropped) == (3, 0, 0)
    data = cache.load_cache(out, arrays=("frames",))
    frames = data.arrays["frames"]
    assert frames.shape == (3, 1, 24, 24, 3) and frames.dtype == np.uint8
    decoded = cv2.imread(str(images / "s01_s1_ne_01.jpg"))[:, :, ::-1]
    np.testing.assert_array_equal(frames[2, 0], decoded)           # RGB, kept as it is
    assert data.meta["kind"] == "imported-apex-images" and data.meta["protocol"] == "cde"
    assert data.meta["params"]["has_neutral"] is False and data.meta["params"]["frames"] == 1
    assert data.labels.tolist() == [1, 0, 2]
    with pytest.raises(KeyError, match="neutral"):
        cache.load_cache(out, arrays=("frames", "neutral"))
    _, provenance = cache.read_entry(out / data.index[1]["entry"])
    assert provenance["source"] == "006_006_1_2.jpg"
    # the same ids in the same order as the flow-image import of the same list
    import_flow_images(flows, labels, tmp_path / "flow")
    assert cache.read_index(out) == cache.read_index(tmp_path / "flow")
    again = apex_frames.import_apex_images(images, labels, out, face_size=24)
    assert (again.computed, again.reused) == (0, 3)
    smaller = apex_frames.import_apex_images(images, labels, out, face_size=16)
    assert smaller.computed == 3
    assert cache.load_cache(out, arrays=("frames",)).arrays["frames"].shape == (3, 1, 16, 16, 3)


def test_import_missing_image_lenient_drops_strict_names_the_file(fake, tmp_path):
    images, labels, _ = fake
    (images / "s01_s1_ne_01.jpg").unlink()
    (images / "006_006_1_2.jpg").write_bytes(b"not a jpg")
    problems = Problems()
    result = apex_frames.import_apex_images(images, labels, tmp_path / "cache", problems)
    assert result.dropped == 2 and [row["sample"] for row in result.rows] == ["EP02_01f"]
    messages = {error.sample: str(error) for error in problems}
    assert "apex image missing" in messages["smic/s01/s01_ne_01"]
    assert str(images / "s01_s1_ne_01.jpg") in messages["smic/s01/s01_ne_01"]
    assert "unreadable apex image" in messages["samm/006/006_1_2"]
    assert cache.read_cache_meta(tmp_path / "cache")["dropped"] == [str(e) for e in problems]
    with pytest.raises(SampleError, match="samm/006/006_1_2"):
        apex_frames.import_apex_images(images, labels, tmp_path / "c2", Problems(strict=True))
    with pytest.raises(AnnotationError, match="apex image folder not found"):
        apex_frames.import_apex_images(tmp_path / "nowhere", labels, tmp_path / "c3")


def test_cli_import_strict_missing_image_exits_2_with_one_error_line(fake, tmp_path):
    images, labels, _ = fake
    (images / "sub01_EP02_01f.jpg").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "import-apex-images", "--images", str(images),
         "--labels", str(labels), "--out", str(tmp_path / "cache"), "--strict"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: casme2/sub01/EP02_01f: apex image")
    assert "sub01_EP02_01f.jpg" in lines[0]


def test_real_subset_default_size_and_names(shared_data_dir, tmp_path):
    """Ten real rows (SMIC named without zero padding) at the default 224: the files as they are."""
    folder = shared_data_dir / HTNET
    with open(folder / "combined_3_class2_for_optical_flow.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    chosen = [rows[0]] + [row for row in rows[1:] if row[0] == "casme2"][:3] + \
        [row for row in rows[1:] if row[0] == "samm"][:3] + \
        [row for row in rows[1:] if row[0] == "smic"][:4]
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as handle:
        csv.writer(handle).writerows(chosen)
    images = folder / "datasets" / "combined_datasets_whole"
    result = apex_frames.import_apex_images(images, labels, tmp_path / "cache")
    assert (result.computed, result.dropped) == (10, 0)
    data = cache.load_cache(tmp_path / "cache", arrays=("frames",))
    assert data.arrays["frames"].shape == (10, 1, 224, 224, 3)
    smic = [i for i, row in enumerate(data.index) if row["sample"] == "s01_ne_01"][0]
    decoded = cv2.imread(str(images / "s01_s1_ne_01.jpg"))[:, :, ::-1]
    np.testing.assert_array_equal(data.arrays["frames"][smic, 0], decoded)


def _check_real_442(shared_data_dir, tmp_path, face_size):
    folder = shared_data_dir / HTNET
    labels = folder / "combined_3_class2_for_optical_flow.csv"
    result = apex_frames.import_apex_images(folder / "datasets" / "combined_datasets_whole",
                                            labels, tmp_path / "apex", face_size=face_size)
    assert (result.computed, result.dropped) == (442, 0)
    data = cache.load_cache(tmp_path / "apex", arrays=("frames",))
    assert data.arrays["frames"].shape == (442, 1, face_size, face_size, 3)
    assert collections.Counter(data.labels.tolist()) == {0: 250, 1: 109, 2: 83}
    assert collections.Counter(data.databases.tolist()) == {"casme2": 145, "samm": 133,
                                                            "smic": 164}
    assert len(set(data.subjects.tolist())) == 68
    import_flow_images(folder / "datasets" / "STSNet_whole_norm_u_v_os", labels, tmp_path / "flow")
    assert cache.read_index(tmp_path / "apex") == cache.read_index(tmp_path / "flow")


def test_real_442_import_matches_the_flow_import(shared_data_dir, tmp_path):
    """All 442 crops, stored at 32 px to keep the test cheap (the compression of 224 px crops is
    what takes the time); the default size is checked on a subset above and in full when slow."""
    _check_real_442(shared_data_dir, tmp_path, 32)


@pytest.mark.slow
def test_real_442_import_at_224(shared_data_dir, tmp_path):
    _check_real_442(shared_data_dir, tmp_path, 224)


# --------------------------------------------------------------------------------------------------
# End to end

def test_cli_frames_on_a_synthetic_smic_subject_cuts_the_flow_stage_face_box(tmp_path, capsys):
    """synth -> frames (Haar) -> load_cache; the face boxes are the flow stage's."""
    from data_prep import face

    try:
        face.haar_cascade_path()
    except face.MissingCascadeError as error:
        pytest.skip(str(error))
    assert cli_main(["synth", "--out", str(tmp_path / "synth"), "--subjects", "smic/1"]) == 0
    roots = ["--protocol", "smic_3class", "--smic", str(tmp_path / "synth" / "SMIC"),
             "--workers", "1"]
    args = ["frames", *roots, "--out", str(tmp_path / "frames"), "--frames", "5",
            "--face-size", "32"]
    assert cli_main(args) == 0
    assert cli_main(["flow", *roots, "--out", str(tmp_path / "flow"), "--face-size", "32",
                     "--flow-size", "8", "--apex-rule", "middle"]) == 0
    data = cache.load_cache(tmp_path / "frames", arrays=("frames", "neutral"))
    count = len(data)
    assert count >= 2 and data.arrays["frames"].shape == (count, 5, 32, 32, 3)
    assert {row["apex_source"] for row in data.index} == {"middle"}
    assert (tmp_path / "frames" / "index.csv").read_text() == \
        (tmp_path / "flow" / "index.csv").read_text()
    for row in data.index:
        _, mine = cache.read_entry(tmp_path / "frames" / row["entry"])
        _, theirs = cache.read_entry(tmp_path / "flow" / row["entry"])
        assert mine["face_box"] == theirs["face_box"] and mine["face_box_source"] == "haar"
        assert mine["frame_numbers"] == apex_frames.apex_window(
            mine["apex"], mine["onset"], mine["offset"], 5)
    capsys.readouterr()
    assert cli_main(args) == 0
    assert f"0 computed, {count} reused" in capsys.readouterr().out
