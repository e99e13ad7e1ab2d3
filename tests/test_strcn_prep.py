"""The STRCN cache stage (data_prep.strcn) on tiny clips drawn in tmp_path, and its CLI."""

import json

import cv2
import numpy as np
import pytest

from data_prep import cache, strcn
from data_prep.__main__ import build_parser
from data_prep.__main__ import main as cli_main
from data_prep.apex import APEX_RULES
from data_prep.errors import Problems, SampleError
from data_prep.samples import Sample

SIZE = 40
FRAMES = range(10, 20)          # frame numbers of every clip
PEAK = 15                       # the frame where the blob is furthest from its onset position


def _frame(shift, colour=False):
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    blob = np.exp(-((x - 20 - shift) ** 2 + (y - 20) ** 2) / (2 * 4.0 ** 2))
    gray = (40 + 180 * blob).astype(np.uint8)
    if not colour:
        return gray
    return np.dstack([gray, (0.5 * gray).astype(np.uint8), 255 - gray])   # BGR


def _clip(folder, colour=False):
    folder.mkdir(parents=True)
    for n in FRAMES:
        shift = 4.0 * (1 - abs(n - PEAK) / 5) if abs(n - PEAK) < 5 else 0.0
        cv2.imwrite(str(folder / f"img{n}.png"), _frame(shift, colour))
    return folder


def _sample(root, subject, clip, *, colour=False, database="casme2", apex=PEAK):
    frames_dir = _clip(root / subject / clip, colour)
    return Sample(database=database, subject=f"{database}/{subject}", clip=clip, onset=10,
                  apex=apex, offset=19, emotion="happiness", frames_dir=str(frames_dir),
                  source="test")


@pytest.fixture
def items(tmp_path):
    root = tmp_path / "frames"
    return [
        (_sample(root, "sub01", "EP01_01"), "positive"),
        (_sample(root, "sub02", "EP02_01", colour=True), "negative"),
        (_sample(root, "s1", "s1_po_01", database="smic", apex=None), "positive"),
    ]


def _params(**overrides):
    kwargs = dict(appearance_size=(16, 12), geometry_size=(24, 20), length=6, augment=2,
                  face_detector="none")
    kwargs.update(overrides)
    return strcn.strcn_params(**kwargs)


def _run(items, out, **kwargs):
    kwargs.setdefault("params", _params())
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("progress", False)
    return strcn.prepare_strcn_cache(items, out, **kwargs)


def test_augmentation_grid_spreads_and_covers_the_paper_grid():
    ten = strcn.augmentation_grid(10)
    assert [a for a, _ in ten] == list(range(5, 15))
    assert [f for _, f in ten] == [1.0, 0.9, 0.8, 0.7, 0.6] * 2
    full = strcn.augmentation_grid(50)
    assert len(set(full)) == 50
    assert set(full) == {(a, f) for a in range(5, 15) for f in (1.0, 0.9, 0.8, 0.7, 0.6)}
    assert strcn.augmentation_grid(0) == []
    with pytest.raises(ValueError, match="0..50"):
        strcn.augmentation_grid(51)


def test_params_record_the_choices_and_reject_bad_values():
    params = strcn.strcn_params(augment=3)
    assert params["appearance_size"] == [64, 48] and params["geometry_size"] == [300, 245]
    assert params["augment_alphas"] == [5.0, 6.0, 7.0]
    assert params["augment_fractions"] == [1.0, 0.9, 0.8]
    assert params["alpha"] == 8.0 and params["evm"]["lambda_c"] == 16.0
    json.dumps(params)
    assert strcn.parse_size("60x49") == (60, 49)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        strcn.parse_size("60")
    with pytest.raises(ValueError, match="geometry_size"):
        strcn.strcn_params(geometry_size=(4, 4))
    with pytest.raises(ValueError, match="face_detector"):
        strcn.strcn_params(face_detector="dlib")
    with pytest.raises(ValueError, match="length"):
        strcn.strcn_params(length=1)


def test_cache_has_the_arrays_shapes_and_provenance(items, tmp_path):
    summary = _run(items, tmp_path / "cache", protocol="test", classes=("negative", "positive"))
    assert (summary.computed, summary.reused, summary.dropped) == (3, 0, 0)
    assert "strcn cache" in summary.report()
    data = cache.load_cache(tmp_path / "cache", arrays=(
        "appearance", "geometry", "appearance_aug", "geometry_aug"))
    assert data.arrays["appearance"].shape == (3, 6, 16, 12, 3)
    assert data.arrays["appearance"].dtype == np.uint8
    assert data.arrays["geometry"].shape == (3, 24, 20, 2)
    assert data.arrays["geometry"].dtype == np.float16
    assert data.arrays["appearance_aug"].shape == (3, 2, 6, 16, 12, 3)
    assert data.arrays["geometry_aug"].shape == (3, 2, 24, 20, 2)
    assert data.meta["kind"] == "strcn" and data.meta["protocol"] == "test"
    assert data.classes == ("negative", "positive")
    assert data.labels.tolist() == [1, 0, 1]
    # the blob moves right: the flow to the apex points right
    assert float(data.arrays["geometry"][0, ..., 0].astype(np.float32).max()) > 0.5
    # gray frames become three equal channels; the colour clip keeps its colours
    gray_clip, colour_clip = data.arrays["appearance"][0], data.arrays["appearance"][1]
    assert np.array_equal(gray_clip[..., 0], gray_clip[..., 2])
    assert not np.array_equal(colour_clip[..., 0], colour_clip[..., 2])
    for row in data.index:
        _, provenance = cache.read_entry(tmp_path / "cache" / row["entry"])
        assert provenance["augment_alphas"] == [5.0, 6.0]
        assert provenance["augment_fractions"] == [1.0, 0.9]
        assert provenance["apex_source"] == "std-eq5" == row["apex_source"]
        assert int(row["apex"]) == PEAK
        assert all(a in k for a, k in zip(provenance["augment_apex"],
                                          provenance["augment_kept_frames"]))
        assert len(provenance["frames"]) == 10
        kept = provenance["augment_kept_frames"]
        assert len(kept[0]) == 10 and len(kept[1]) == 9 and kept[1][0] == 10
    assert data.index[0]["annotated_apex"] == str(PEAK) and data.index[2]["annotated_apex"] == ""


def test_entries_are_deterministic_and_reused(items, tmp_path):
    _run(items, tmp_path / "a")
    _run(items, tmp_path / "b", workers=2)
    for relpath in ("entries/casme2/sub01/EP01_01.npz", "entries/smic/s1/s1_po_01.npz"):
        first, _ = cache.read_entry(tmp_path / "a" / relpath)
        second, _ = cache.read_entry(tmp_path / "b" / relpath)
        for name in first:
            np.testing.assert_array_equal(first[name], second[name])
    again = _run(items, tmp_path / "a")
    assert (again.computed, again.reused) == (0, 3)
    changed = _run(items, tmp_path / "a", params=_params(augment=1))
    assert (changed.computed, changed.reused) == (3, 0)


def test_zero_augmentations_write_empty_arrays(items, tmp_path):
    _run(items[:1], tmp_path / "cache", params=_params(augment=0))
    arrays, _ = cache.read_entry(tmp_path / "cache" / "entries/casme2/sub01/EP01_01.npz")
    assert arrays["appearance_aug"].shape == (0, 6, 16, 12, 3)
    assert arrays["geometry_aug"].shape == (0, 24, 20, 2)


@pytest.mark.parametrize("kind, reason, file_part", [
    ("unreadable", "unreadable image", "img13.png"),
    ("missing-onset", "frame missing: no frame 10", "EP02_01"),
    ("size", "frame size differs", "img12.png"),
    ("short", "too few frames", "EP02_01"),
])
def test_bad_sample_lenient_drops_and_strict_names_sample_and_file(items, tmp_path, kind, reason,
                                                                  file_part):
    sample = items[1][0]
    folder = tmp_path / "frames" / "sub02" / "EP02_01"
    if kind == "unreadable":
        (folder / "img13.png").write_bytes(b"not a png")
    elif kind == "missing-onset":
        (folder / "img10.png").unlink()
    elif kind == "size":
        cv2.imwrite(str(folder / "img12.png"), np.zeros((SIZE, SIZE + 2), np.uint8))
    else:
        items[1] = (sample.replace(offset=10), items[1][1])
    summary = _run(items, tmp_path / "cache")
    assert summary.dropped == 1 and len(summary.rows) == 2
    error = summary.problems.errors[0]
    assert error.sample == "casme2/sub02/EP02_01"
    assert reason in error.reason and file_part in error.path
    assert "casme2/sub02/EP02_01" in summary.report()
    with pytest.raises(SampleError, match=reason):
        _run(items, tmp_path / "strict", problems=Problems(strict=True))


def test_parser_has_strcn_and_flow_apex_rule():
    parser = build_parser()
    args = parser.parse_args(["strcn", "--protocol", "smic_3class", "--out", "x",
                              "--geometry-size", "60x49"])
    assert args.geometry_size == (60, 49) and args.appearance_size == (64, 48)
    assert (args.augment, args.length, args.face_detector) == (10, 30, "haar")
    flow_args = parser.parse_args(["flow", "--out", "x", "--apex-rule", APEX_RULES[-1]])
    assert flow_args.apex_rule == APEX_RULES[-1]
    assert parser.parse_args(["flow", "--out", "x"]).apex_rule == "interframe-diff"
    with pytest.raises(SystemExit):
        parser.parse_args(["flow", "--out", "x", "--apex-rule", "nonsense"])
    with pytest.raises(SystemExit):
        parser.parse_args(["strcn", "--protocol", "p", "--out", "x", "--geometry-size", "big"])
    quick = parser.parse_args(["strcn", "--protocol", "p", "--out", "x", "--tvl1", '{"warps": 1}'])
    assert quick.tvl1 == {"warps": 1} and args.tvl1 is None
    for bad in ("warps=1", "[1]"):
        with pytest.raises(SystemExit):
            parser.parse_args(["strcn", "--protocol", "p", "--out", "x", "--tvl1", bad])


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert cli_main(["strcn", "--protocol", "smic_3class", "--out", str(tmp_path / "c")]) == 2
    assert "give at least one database root" in capsys.readouterr().err
    assert cli_main(["strcn", "--protocol", "smic_3class", "--smic", str(tmp_path),
                     "--out", str(tmp_path / "c"), "--augment", "51"]) == 2
    assert "augment must be within 0..50" in capsys.readouterr().err
    assert cli_main(["strcn", "--protocol", "smic_3class", "--smic", str(tmp_path),
                     "--out", str(tmp_path / "c"), "--tvl1", '{"wraps": 1}']) == 2
    assert "unknown TV-L1 parameters ['wraps']" in capsys.readouterr().err


def test_cli_end_to_end_on_two_synthetic_smic_subjects(tmp_path, capsys):
    """synth -> strcn -> load_cache on SMIC subjects 1 and 2 (Haar detection, default A size)."""
    from data_prep import face

    try:
        face.haar_cascade_path()
    except face.MissingCascadeError as error:
        pytest.skip(str(error))
    assert cli_main(["synth", "--out", str(tmp_path / "synth"),
                     "--subjects", "smic/1", "smic/2"]) == 0
    args = ["strcn", "--protocol", "smic_3class", "--smic", str(tmp_path / "synth" / "SMIC"),
            "--out", str(tmp_path / "cache"), "--augment", "2", "--geometry-size", "60x49",
            "--workers", "1", "--tvl1", '{"warps": 2}']
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "computed, 0 reused), 0 dropped" in out
    data = cache.load_cache(tmp_path / "cache", arrays=("appearance", "geometry_aug"))
    count = len(data)
    assert count >= 2 and f"{count} entries ({count} computed" in out
    assert data.arrays["appearance"].shape == (count, 30, 64, 48, 3)
    assert data.arrays["geometry_aug"].shape == (count, 2, 60, 49, 2)
    assert set(data.subjects) == {"smic/s01", "smic/s02"}
    assert data.meta["kind"] == "strcn" and data.meta["protocol"] == "smic_3class"
    assert data.meta["params"]["tvl1"]["warps"] == 2  # the override is recorded
    assert data.classes == ("negative", "positive", "surprise")
    assert cli_main(args) == 0
    assert f"0 computed, {count} reused" in capsys.readouterr().out
