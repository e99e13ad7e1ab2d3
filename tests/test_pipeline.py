"""The cached flow pipeline on tiny synthetic clips drawn in tmp_path (face detector "none")."""

import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep import cache, pipeline
from data_prep.__main__ import main as cli_main
from data_prep.errors import Problems, SampleError
from data_prep.samples import Sample

SIZE = 48
FRAMES = range(10, 18)          # frame numbers of every clip
PEAK = 14                       # the frame where the blob is furthest from its onset position


def _frame(shift):
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    blob = np.exp(-((x - 24 - shift) ** 2 + (y - 24) ** 2) / (2 * 5.0 ** 2))
    return (40 + 180 * blob).astype(np.uint8)


def _clip(folder, peak=PEAK):
    folder.mkdir(parents=True)
    for n in FRAMES:
        shift = 3.0 * (1 - abs(n - peak) / 4) if abs(n - peak) < 4 else 0.0
        cv2.imwrite(str(folder / f"img{n}.png"), _frame(shift))
    return folder


def _sample(root, subject, clip, *, apex=PEAK, apex_source="annotation", database="casme2"):
    frames_dir = _clip(root / subject / clip)
    return Sample(database=database, subject=f"{database}/{subject}", clip=clip, onset=10,
                  apex=apex, offset=17, emotion="happiness", apex_source=apex_source,
                  frames_dir=str(frames_dir), source="test")


@pytest.fixture
def items(tmp_path):
    root = tmp_path / "frames"
    return [
        (_sample(root, "sub01", "EP01_01"), "positive"),
        (_sample(root, "sub02", "EP02_01"), "negative"),
        (_sample(root, "s1", "s1_po_01", apex=None, apex_source="none", database="smic"),
         "positive"),
    ]


def _params(**overrides):
    kwargs = dict(face_size=32, flow_size=8, sequence_length=3, face_detector="none")
    kwargs.update(overrides)
    return pipeline.flow_params(**kwargs)


def _run(items, out, **kwargs):
    kwargs.setdefault("params", _params())
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("progress", False)
    return pipeline.prepare_flow_cache(items, out, **kwargs)


def test_first_run_writes_a_loadable_cache(items, tmp_path):
    out = tmp_path / "cache"
    summary = _run(items, out, protocol="cde", classes=["negative", "positive", "surprise"])
    assert (summary.computed, summary.reused, summary.dropped) == (3, 0, 0)
    data = cache.load_cache(out, arrays=("flow", "onset_face", "apex_face", "sequence_flow"))
    assert data.arrays["flow"].shape == (3, 8, 8, 3) and data.arrays["flow"].dtype == np.float32
    assert data.arrays["onset_face"].shape == (3, 32, 32)
    assert data.arrays["onset_face"].dtype == np.uint8
    assert data.arrays["sequence_flow"].shape == (3, 3, 8, 8, 2)
    assert data.labels.tolist() == [1, 0, 1]
    assert data.meta["params"]["tvl1"]["tau"] == pytest.approx(0.25)
    # The blob moves right by 3 px of the 48-px frame, i.e. 2 px of the 32-px crop grid: raw u.
    assert data.arrays["flow"][0, 3:5, 3:5, 0].mean() > 1.0
    _, provenance = cache.read_entry(out / data.index[0]["entry"])
    assert provenance["face_box_source"] == "input-crop"
    assert provenance["apex"] == PEAK and provenance["apex_source"] == "annotation"
    assert "no min-max" in provenance["params"]["values"]
    assert provenance["sequence_frames"] == [10, 14, 17]


def test_smic_sample_gets_the_interframe_diff_apex(items, tmp_path):
    summary = _run(items, tmp_path / "cache")
    smic = summary.rows[2]
    assert (smic["apex"], smic["apex_source"]) == (PEAK, "interframe-diff")
    index = cache.read_index(tmp_path / "cache")
    assert index[2]["apex"] == str(PEAK) and index[2]["apex_source"] == "interframe-diff"
    assert index[0]["apex_source"] == "annotation"
    middle = _run(items, tmp_path / "cache2", params=_params(apex_rule="middle"))
    assert (middle.rows[2]["apex"], middle.rows[2]["apex_source"]) == (13, "middle")


def test_rerun_reuses_every_entry(items, tmp_path):
    out = tmp_path / "cache"
    _run(items, out)
    before = cache.fingerprint(out)
    again = _run(items, out)
    assert (again.computed, again.reused) == (0, 3)
    assert again.rows[2]["apex"] == PEAK  # the estimated apex is read back from the provenance
    assert cache.fingerprint(out) == before


def test_changed_parameter_or_frame_invalidates(items, tmp_path):
    out = tmp_path / "cache"
    _run(items, out)
    changed = _run(items, out, params=_params(flow_size=4))
    assert (changed.computed, changed.reused) == (3, 0)
    assert cache.load_cache(out).arrays["flow"].shape == (3, 4, 4, 3)
    cv2.imwrite(str(Path(items[1][0].frames_dir) / f"img{PEAK}.png"), _frame(1.0))
    after_edit = _run(items, out, params=_params(flow_size=4))
    assert (after_edit.computed, after_edit.reused) == (1, 2)


def test_interrupted_run_resumes(items, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    real_compute = pipeline._compute
    calls = []

    def compute_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_compute(*args)

    monkeypatch.setattr(pipeline, "_compute", compute_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(items, out)
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert written == ["EP01_01.npz"]  # one finished entry, no temporary file, no index yet
    monkeypatch.setattr(pipeline, "_compute", real_compute)
    resumed = _run(items, out)
    assert (resumed.computed, resumed.reused) == (2, 1)


def _break(items, kind):
    """Break the second sample: delete its apex frame, or make its onset frame undecodable."""
    folder = Path(items[1][0].frames_dir)
    if kind == "missing":
        (folder / f"img{PEAK}.png").unlink()
    else:
        (folder / "img10.png").write_bytes(b"not an image")


@pytest.mark.parametrize("kind, reason, file_part", [
    ("missing", "frame missing", "sub02/EP02_01"),
    ("unreadable", "unreadable image", "img10.png"),
])
def test_bad_frame_lenient_drops_and_strict_stops(items, tmp_path, kind, reason, file_part):
    _break(items, kind)
    problems = Problems()
    summary = _run(items, tmp_path / "lenient", problems=problems)
    assert (summary.computed, summary.dropped) == (2, 1)
    assert [row["sample"] for row in summary.rows] == ["EP01_01", "s1_po_01"]
    error = problems.errors[0]
    assert error.sample == "casme2/sub02/EP02_01" and reason in error.reason
    assert file_part in error.path
    assert "1 sample(s) dropped" in summary.report()
    assert "casme2/sub02/EP02_01" in summary.report()
    assert json.loads((tmp_path / "lenient" / "cache.json").read_text())["dropped"]
    with pytest.raises(SampleError, match=f"casme2/sub02/EP02_01: {reason}"):
        _run(items, tmp_path / "strict", problems=Problems(strict=True))


def test_errors_cross_the_process_boundary(items, tmp_path):
    _break(items, "unreadable")
    problems = Problems()
    summary = _run(items, tmp_path / "pool", workers=2, problems=problems)
    assert (summary.computed, summary.dropped) == (2, 1)
    assert isinstance(problems.errors[0], SampleError)
    assert problems.errors[0].path.endswith("img10.png")
    with pytest.raises(SampleError, match="unreadable image"):
        _run(items, tmp_path / "pool-strict", workers=2, problems=Problems(strict=True))


def test_sample_without_frames_is_named(tmp_path):
    bare = Sample(database="samm", subject="samm/006", clip="006_1_2", onset=1, apex=2, offset=3,
                  emotion="anger", source="codes.xlsx row 14")
    problems = Problems()
    summary = _run([(bare, "negative")], tmp_path / "cache", problems=problems)
    assert summary.dropped == 1 and summary.rows == []
    assert "samm/006/006_1_2: no frame folder" in str(problems.errors[0])
    assert "codes.xlsx row 14" in str(problems.errors[0])


def test_missing_or_empty_frame_folder_is_named(items, tmp_path):
    gone = items[0][0].replace(frames_dir=str(tmp_path / "nowhere"))
    empty = items[1][0].replace(frames_dir=str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    problems = Problems()
    _run([(gone, "positive"), (empty, "negative")], tmp_path / "cache", problems=problems)
    reasons = [(e.sample, e.reason.split(":")[0], e.path) for e in problems]
    assert reasons == [("casme2/sub01/EP01_01", "frame folder missing", str(tmp_path / "nowhere")),
                       ("casme2/sub02/EP02_01", "no frames", str(tmp_path / "empty"))]


def test_flow_params_reject_bad_values():
    with pytest.raises(ValueError, match="flow_size"):
        pipeline.flow_params(face_size=32, flow_size=64)
    with pytest.raises(ValueError, match="apex_rule"):
        pipeline.flow_params(apex_rule="d&c-rois")


def _fake_index(monkeypatch, items):
    module = types.ModuleType("data_prep.index")

    def build_index(protocol, *, casme2=None, samm=None, smic=None, problems=None):
        rows = [{"label": label, "apex": "from the index", "objective_class": 1}
                for _, label in items]
        protocol = types.SimpleNamespace(name="cde", classes=("negative", "positive", "surprise"))
        return types.SimpleNamespace(rows=rows, samples=[s for s, _ in items], protocol=protocol)

    module.build_index = build_index
    monkeypatch.setitem(sys.modules, "data_prep.index", module)


def _cli(out, *extra):
    return ["flow", "--casme2", str(out), "--out", str(out / "cache"), "--face-size", "32",
            "--flow-size", "8", "--face-detector", "none", "--workers", "1", *extra]


def test_main_flow_success_prints_counts_and_location(items, tmp_path, monkeypatch, capsys):
    _fake_index(monkeypatch, items)
    assert cli_main(_cli(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "3 computed, 0 reused), 0 dropped" in printed
    assert str((tmp_path / "cache").resolve()) in printed
    meta = cache.read_cache_meta(tmp_path / "cache")
    assert meta["classes"] == ["negative", "positive", "surprise"] and meta["protocol"] == "cde"
    index = cache.read_index(tmp_path / "cache")
    assert index[0]["objective_class"] == "1"  # the index's own columns are kept
    assert index[2]["apex"] == str(PEAK)       # but the pipeline's resolved apex wins


def test_main_flow_strict_bad_sample_exits_2_without_traceback(items, tmp_path, monkeypatch,
                                                              capsys):
    _break(items, "unreadable")
    _fake_index(monkeypatch, items)
    assert cli_main(_cli(tmp_path, "--strict")) == 2
    err = capsys.readouterr().err  # also holds the progress bar
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: casme2/sub02/EP02_01: unreadable image")
    assert "img10.png" in errors[0] and "Traceback" not in err


def test_main_flow_usage_errors_exit_2(tmp_path, monkeypatch, capsys):
    assert cli_main(["flow", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.startswith("error: give at least one database root")
    assert cli_main(_cli(tmp_path, "--flow-size", "64")) == 2
    assert capsys.readouterr().err.startswith("error: flow_size")
    from data_prep import face

    def no_cascade(name=face.HAAR_CASCADE):
        raise face.MissingCascadeError("no Haar cascade (test)")

    monkeypatch.setattr(face, "_cascade", no_cascade)
    args = [a if a != "none" else "haar" for a in _cli(tmp_path)]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Haar cascade") and "Traceback" not in err


@pytest.mark.parametrize("boxes, source", [([[8, 8, 24, 24]], "haar"), ([], "full-frame")])
def test_haar_box_or_full_frame_is_recorded_and_counted(items, tmp_path, monkeypatch, boxes,
                                                        source):
    from data_prep import face

    class FakeCascade:
        def detectMultiScale(self, gray, **kwargs):
            return np.array(boxes).reshape(-1, 4)

    monkeypatch.setattr(face, "_cascade", lambda name=face.HAAR_CASCADE: FakeCascade())
    monkeypatch.setattr(face, "haar_cascade_path", lambda name=face.HAAR_CASCADE: "fake.xml")
    summary = _run(items, tmp_path / "cache", params=_params(face_detector="haar"))
    assert summary.full_frame == (3 if source == "full-frame" else 0)
    assert ("no face found" in summary.report()) == (source == "full-frame")
    _, provenance = cache.read_entry(tmp_path / "cache" / summary.rows[0]["entry"])
    assert provenance["face_box_source"] == source
    assert provenance["face_box"] == ([6, 6, 28, 28] if boxes else [0, 0, SIZE, SIZE])
    assert provenance["face_cascade_file"] == "fake.xml"
    assert summary.rows[0]["face_box_source"] == source


@pytest.mark.slow
def test_cli_end_to_end_on_a_synthetic_subset(tmp_path, capsys):
    """Readers, index, Haar detection and flow together on four clips of the synthetic set."""
    from data_prep import face
    from data_prep.synthetic import write_synthetic

    try:
        face.haar_cascade_path()
    except face.MissingCascadeError as error:
        pytest.skip(str(error))
    roots = write_synthetic(tmp_path / "synth", progress=False,
                            subjects=("casme2/08", "samm/019", "smic/5"))
    args = ["flow", "--protocol", "cde", "--out", str(tmp_path / "cache"), "--workers", "2",
            "--sequence-length", "4"]
    for name, root in roots.items():
        args += [f"--{name}", str(root)]
    assert cli_main(args) == 0
    assert "4 computed, 0 reused), 0 dropped" in capsys.readouterr().out
    data = cache.load_cache(tmp_path / "cache", arrays=("flow", "sequence_flow", "apex_face"))
    assert data.arrays["flow"].shape == (4, 28, 28, 3)
    assert data.arrays["sequence_flow"].shape == (4, 4, 28, 28, 2)
    assert sorted(set(data.databases)) == ["casme2", "samm", "smic"]
    assert {row["face_box_source"] for row in data.index} == {"haar"}
    assert cli_main(args) == 0
    assert "0 computed, 4 reused" in capsys.readouterr().out
