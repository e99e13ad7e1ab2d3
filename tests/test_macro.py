"""Macro-expression data: the CK+, CK+48, Oulu-CASIA and MMI readers on tiny layouts, the label
maps, the subject split, the macro cache and its command line, and the synthetic CK+ set."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep import cache, macro, synthetic
from data_prep.__main__ import main as cli_main
from data_prep.datasets import ckplus, mmi, oulu
from data_prep.datasets.frames import list_frames
from data_prep.errors import AnnotationError, DataPrepError, Problems, SampleError
from data_prep.index import PROTOCOLS

CK48 = ("WuJie1010_Facial-Expression-Recognition.Pytorch", "CK+48")


def image(path: Path, value: int, size: int = 16) -> Path:
    """A small gray image file whose pixels all equal ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size, size), value, np.uint8))
    return path


def make_ckplus(root: Path, sequences) -> Path:
    """CK+ as distributed: ``(subject, sequence, frames, code or None[, labelled frame])``."""
    for subject, sequence, frames, code, *labelled in sequences:
        for number in range(1, frames + 1):
            image(root / "cohn-kanade-images" / subject / sequence
                  / f"{subject}_{sequence}_{number:08d}.png", 10 * number)
        labels = root / "Emotion" / subject / sequence
        labels.mkdir(parents=True, exist_ok=True)
        if code is not None:
            last = labelled[0] if labelled else frames
            (labels / f"{subject}_{sequence}_{last:08d}_emotion.txt").write_text(
                f"   {float(code):.7e}\n")
    return root


def make_ckplus48(root: Path, sequences) -> Path:
    """CK+48: ``(folder, subject, sequence, first frame)``, three images each."""
    for folder, subject, sequence, first in sequences:
        for number in range(first, first + 3):
            image(root / folder / f"{subject}_{sequence}_{number:08d}.png", 5 * number)
    return root


# --------------------------------------------------------------------------------------------------
# CK+ as distributed

def test_ckplus_reads_labelled_sequences_neutral_first_last_frames(tmp_path):
    make_ckplus(tmp_path / "CK+", [("S005", "001", 5, 3), ("S005", "002", 4, None),
                                   ("S010", "001", 6, 5, 5), ("S010", "003", 2, 7)])
    records = ckplus.read_sequences(tmp_path, peak_frames=3)    # a parent of the CK+ folder
    assert [(r["sequence"], r["subject"], r["emotion"]) for r in records] == [
        ("S005_001", "S005", "disgust"), ("S010_001", "S010", "happiness"),
        ("S010_003", "S010", "surprise")]
    first = records[0]
    assert first["neutral"].name == "S005_001_00000001.png" and first["neutral_frame"] == 1
    assert [n for n, _ in first["expression"]] == [3, 4, 5]
    assert first["last_frame"] == 5 and first["rule"] == "last-frames"
    assert first["source"].endswith("S005_001_00000005_emotion.txt")
    # the labelled frame is the peak: frames after it are not expression images
    assert [n for n, _ in records[1]["expression"]] == [3, 4, 5]
    assert [n for n, _ in records[2]["expression"]] == [2]       # 2 frames: neutral + one
    assert [n for n, _ in ckplus.read_sequences(tmp_path, peak_frames=1)[0]["expression"]] == [5]


def test_ckplus_bad_input_names_the_file(tmp_path):
    root = make_ckplus(tmp_path / "CK+", [("S005", "001", 4, 1), ("S006", "001", 4, 2),
                                          ("S007", "001", 4, 3, 9)])
    (root / "Emotion" / "S006" / "001" / "S006_001_00000004_emotion.txt").write_text("anger\n")
    (root / "Emotion" / "S008" / "001").mkdir(parents=True)
    (root / "Emotion" / "S008" / "001" / "S008_001_00000004_emotion.txt").write_text("1.0\n")
    problems = Problems()
    records = ckplus.read_sequences(root, problems)
    assert [r["sequence"] for r in records] == ["S005_001"]
    messages = [str(error) for error in problems]
    assert len(messages) == 3
    assert "unreadable emotion file" in messages[0]
    assert "S006_001_00000004_emotion.txt" in messages[0]
    assert "no frame 9" in messages[1] and str(root / "cohn-kanade-images" / "S007") in messages[1]
    assert "no frames" in messages[2] and "S008" in messages[2]
    with pytest.raises(SampleError, match="S006_001_00000004_emotion.txt"):
        ckplus.read_sequences(root, Problems(strict=True))
    (tmp_path / "images_only" / "cohn-kanade-images" / "S005").mkdir(parents=True)
    with pytest.raises(AnnotationError, match="no Emotion/ label folder") as info:
        ckplus.read_sequences(tmp_path / "images_only")
    assert str(tmp_path / "images_only") in str(info.value)


# --------------------------------------------------------------------------------------------------
# CK+48, Oulu-CASIA, MMI

def test_ckplus48_groups_sequences_with_canonical_emotions(tmp_path):
    make_ckplus48(tmp_path, [("happy", "S005", "001", 9), ("anger", "S010", "002", 1),
                             ("contempt", "S010", "004", 20)])
    image(tmp_path / "happy" / "readme.png", 0)
    problems = Problems()
    records = ckplus.read_ckplus48(tmp_path, problems, peak_frames=2)
    assert [(r["sequence"], r["emotion"]) for r in records] == [
        ("S005_001", "happiness"), ("S010_002", "anger"), ("S010_004", "contempt")]
    assert all(r["neutral"] is None and r["rule"] == "release" for r in records)
    assert [n for n, _ in records[0]["expression"]] == [10, 11]
    assert len(problems) == 1 and "readme.png" in str(next(iter(problems)))


def test_ckplus48_real_folder_counts_under_both_maps(shared_data_dir):
    records = ckplus.read_ckplus48(shared_data_dir.joinpath(*CK48), Problems(strict=True))
    assert len(records) == 327
    assert sum(len(r["expression"]) for r in records) == 981
    assert len({r["subject"] for r in records}) == 118
    images, left_out = macro.select_images(records, "cde")
    assert len(images) == 981 and left_out == {}
    assert collections.Counter(label for _, label in images) == {
        "negative": 135 + 54 + 177 + 75 + 84, "positive": 207, "surprise": 249}
    images, left_out = macro.select_images(records, "megc2018_objective")
    assert len(images) == 852                          # Micro-Attention Sec 4.1: CK+ 852 images
    assert left_out == {"ckplus48": {"contempt": 54, "fear": 75}}
    assert collections.Counter(label for _, label in images) == {
        "I": 207, "II": 249, "III": 135, "IV": 177, "V": 84}
    subjects = {image.subject for image, _ in images}
    split = macro.split_by_subject(subjects, 0.1, 0)
    assert sum(side == "validation" for side in split.values()) == round(0.1 * len(subjects))


def test_oulu_reads_the_vl_strong_set_only(tmp_path):
    strong = tmp_path / "B_OriginalImg" / "OriginalImg" / "VL" / "Strong"
    for emotion in ("Anger", "Happiness"):
        for number in range(5):
            image(strong / "P001" / emotion / f"{number:03d}.jpeg", 40 + 10 * number)
    image(strong / "P002" / "Surprise" / "000.jpeg", 10)
    image(strong / "P002" / "Surprise" / "001.jpeg", 20)
    image(strong / "P002" / "Bored" / "000.jpeg", 10)
    for other in ("NI/Strong", "VL/Weak"):
        image(tmp_path / "B_OriginalImg" / "OriginalImg" / other / "P009" / "Fear" / "000.jpeg", 1)
    problems = Problems()
    records = oulu.read_sequences(tmp_path, problems)
    assert [(r["sequence"], r["subject"], r["emotion"]) for r in records] == [
        ("P001_Anger", "P001", "anger"), ("P001_Happiness", "P001", "happiness"),
        ("P002_Surprise", "P002", "surprise")]
    assert records[0]["neutral"].name == "000.jpeg"
    assert [n for n, _ in records[0]["expression"]] == [2, 3, 4]
    assert len(problems) == 1 and "unknown emotion folder 'Bored'" in str(next(iter(problems)))
    assert len(oulu.read_sequences(strong, Problems())) == 3     # the set folder itself
    with pytest.raises(AnnotationError, match="VL/Strong"):
        oulu.read_sequences(tmp_path / "B_OriginalImg" / "OriginalImg" / "NI")
    images, _ = macro.select_images(records, "cde")
    assert [i.clip for i, _ in images][:2] == ["P001_Anger_002", "P001_Anger_003"]


def _session(folder: Path, session_xml: str, frames: int = 0, files=()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "session.xml").write_text(session_xml)
    for number in range(1, frames + 1):
        image(folder / f"S001-001_{number:04d}.png", 10 * number)
    for name, text in files:
        (folder / name).write_text(text)


def test_mmi_reads_labelled_sessions_middle_frames(tmp_path):
    sessions = tmp_path / "Sessions"
    _session(sessions / "1", '<session sessionId="1"><subject id="1"/></session>', frames=9,
             files=[("S001-001.xml", '<Media><Metatag Name="Emotion" Value="4"/></Media>'),
                    ("S001-001-oao_aucs.xml", '<Metatag Name="Emotion" Value="1"/>')])
    _session(sessions / "2", '<session sessionId="2"><subject id="2"/></session>', frames=5)
    _session(sessions / "3", '<session><Metatag Name="Emotion" Value="2"/></session>',
             files=[("S002-003.avi", "not a video")])
    _session(sessions / "4", '<session><Metatag Name="Emotion" Value="9"/></session>', frames=3)
    _session(sessions / "10", "<session><unclosed></session>", frames=3)
    problems = Problems()
    records = mmi.read_sequences(tmp_path, problems)
    assert len(records) == 1
    record = records[0]
    assert (record["sequence"], record["subject"], record["emotion"]) == ("1", "S001",
                                                                          "happiness")
    assert record["neutral_frame"] == 1 and record["rule"] == "middle-frames"
    assert [n for n, _ in record["expression"]] == [4, 5, 6]  # around the middle of 1..9
    assert record["source"].endswith("S001-001.xml")
    reasons = sorted(str(error) for error in problems)
    assert len(reasons) == 3
    assert any("video only" in r and "S002-003.avi" in r for r in reasons)
    assert any("unknown emotion code '9'" in r for r in reasons)
    assert any("unreadable XML" in r and str(sessions / "10" / "session.xml") in r
               for r in reasons)
    with pytest.raises(AnnotationError, match="no MMI session folders"):
        mmi.read_sequences(tmp_path / "Sessions" / "1")


# --------------------------------------------------------------------------------------------------
# Label maps and the split

def test_label_maps_use_the_micro_protocols_classes():
    for name, mapping in macro.LABEL_MAPS.items():
        classes = macro.protocol_classes(name)
        assert classes == PROTOCOLS[name].classes
        # every class has a macro emotion, but CASME II's repression and others (none exists)
        missing = {"repression", "others"} if name == "casme2_5class" else set()
        assert set(mapping.values()) == set(classes) - missing
        assert set(mapping) <= set(ckplus.EMOTIONS)
    assert set(macro.LABEL_MAPS["cde"]) == set(ckplus.EMOTIONS)
    assert macro.macro_label("cde", "contempt") == "negative"
    assert macro.macro_label("cde", "happiness") == "positive"
    assert [macro.macro_label("megc2018_objective", e) for e in
            ("happiness", "surprise", "anger", "disgust", "sadness", "contempt", "fear")] == [
        "I", "II", "III", "IV", "V", None, None]
    assert macro.macro_label("cde", "neutral") is None
    with pytest.raises(DataPrepError, match="no macro label map"):
        macro.protocol_classes("cdmer_casme2")


def test_split_by_subject_holds_out_a_fraction_of_each_database():
    subjects = [f"ckplus/S{i:03d}" for i in range(40)] + [f"oulu/P{i:03d}" for i in range(10)]
    split = macro.split_by_subject(subjects, 0.1, seed=0)
    assert set(split) == set(subjects) and set(split.values()) == set(macro.SPLITS)
    held = {db: sorted(s for s, side in split.items() if side == "validation" and
                       s.startswith(db)) for db in ("ckplus", "oulu")}
    assert (len(held["ckplus"]), len(held["oulu"])) == (4, 1)
    assert macro.split_by_subject(subjects, 0.1, seed=0) == split
    assert macro.split_by_subject(subjects, 0.1, seed=1) != split
    alone = macro.split_by_subject(subjects[:40], 0.1, seed=0)     # other databases do not matter
    assert alone == {s: split[s] for s in subjects[:40]}
    assert set(macro.split_by_subject(subjects, 0.0).values()) == {"train"}
    pair = macro.split_by_subject(["mmi/S001", "mmi/S002"], 0.01)
    assert sorted(pair.values()) == ["train", "validation"]        # at least one, never all
    with pytest.raises(ValueError, match="fraction"):
        macro.split_by_subject(subjects, 1.0)


# --------------------------------------------------------------------------------------------------
# The cache

def _args(root_option: str, root: Path, out: Path, *extra) -> list:
    return ["macro", "--protocol", "cde", root_option, str(root), "--out", str(out),
            "--face-size", "16", "--face-detector", "none", "--workers", "1", *extra]


def test_macro_cache_from_a_tiny_ckplus(tmp_path, capsys):
    root = make_ckplus(tmp_path / "CK+", [(f"S{s:03d}", f"{q:03d}", 4, code)
                                          for s in range(1, 5) for q, code in ((1, 5), (2, 2))])
    out = tmp_path / "cache"
    args = _args("--ckplus", root, out, "--validation-fraction", "0.25")
    assert cli_main(args) == 0
    assert "24 entries (24 computed, 0 reused), 0 dropped" in capsys.readouterr().out
    data = cache.load_cache(out, arrays=("expression", "neutral"))
    assert data.arrays["expression"].shape == data.arrays["neutral"].shape == (24, 16, 16, 3)
    assert data.arrays["expression"].dtype == np.uint8
    assert (data.arrays["neutral"] == 10).all()                 # every sequence's first frame
    assert sorted(np.unique(data.arrays["expression"])) == [20, 30, 40]
    assert data.meta["kind"] == "macro" and data.meta["has_neutral"] is True
    assert data.meta["classes"] == ["negative", "positive", "surprise"]
    assert data.meta["counts"]["ckplus"] == {"negative": 12, "positive": 12, "surprise": 0,
                                             "images": 24, "sequences": 8, "subjects": 4}
    row = data.index[0]
    assert (row["database"], row["subject"], row["sample"], row["sequence"]) == (
        "ckplus", "ckplus/S001", "S001_001_00000002", "S001_001")
    assert (row["onset"], row["apex"], row["offset"], row["label"], row["emotion"]) == (
        "1", "2", "4", "positive", "happiness")
    sides = collections.defaultdict(set)
    for r in data.index:
        sides[r["subject"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())            # no subject on both sides
    assert sum(s == {"validation"} for s in sides.values()) == 1
    assert cli_main(args) == 0
    assert "0 computed, 24 reused" in capsys.readouterr().out
    # the entries do not depend on the protocol or the split: another map reuses them
    assert cli_main(args[:2] + ["megc2018_objective"] + args[3:]) == 0
    printed = capsys.readouterr().out
    assert "0 computed, 12 reused" in printed and "contempt 12" in printed
    assert cache.read_cache_meta(out)["left_out"] == {"ckplus": {"contempt": 12}}
    image_record = macro.select_images(ckplus.read_sequences(root), "cde")[0][0][0]
    assert pickle.loads(pickle.dumps(image_record)) == image_record   # crosses the process pool


def test_ckplus48_cache_has_no_neutral(tmp_path, capsys):
    root = make_ckplus48(tmp_path / "CK+48", [("happy", "S005", "001", 9),
                                              ("fear", "S010", "002", 1)])
    out = tmp_path / "cache"
    assert cli_main(_args("--ckplus48", root, out)) == 0
    data = cache.load_cache(out, arrays=("expression",))
    assert data.arrays["expression"].shape == (6, 16, 16, 3)
    assert data.meta["has_neutral"] is False
    assert {row["apex_source"] for row in data.index} == {"release"}
    with pytest.raises(KeyError, match="neutral"):
        cache.load_cache(out, arrays=("expression", "neutral"))


def test_cli_bad_input_exits_2_naming_the_file(tmp_path, capsys):
    root = make_ckplus(tmp_path / "CK+", [("S005", "001", 4, 1), ("S006", "001", 4, 5)])
    broken = root / "cohn-kanade-images" / "S006" / "001" / "S006_001_00000004.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "cache"
    assert cli_main(_args("--ckplus", root, out, "--strict")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ckplus/S006/S006_001_00000004: unreadable image")
    assert str(broken) in err[-1]
    assert cli_main(_args("--ckplus", root, out)) == 0
    assert "5 entries (0 computed, 5 reused), 1 dropped" in capsys.readouterr().out
    (tmp_path / "no_labels" / "cohn-kanade-images").mkdir(parents=True)
    assert cli_main(_args("--ckplus", tmp_path / "no_labels", out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Emotion/ label folder" in err[0]
    assert str(tmp_path / "no_labels") in err[0]
    assert cli_main(["macro", "--protocol", "cde", "--out", str(out)]) == 2
    assert "give at least one macro database" in capsys.readouterr().err
    assert cli_main(_args("--ckplus", root, out, "--ckplus48", str(root))) == 2
    assert "not both" in capsys.readouterr().err
    only_contempt = make_ckplus(tmp_path / "contempt", [("S005", "001", 3, 2)])
    args = _args("--ckplus", only_contempt, out)
    assert cli_main(args[:2] + ["megc2018_objective"] + args[3:]) == 2
    assert "no image" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The synthetic macro set

def test_synthetic_macro_set_reads_back_as_ckplus(tmp_path, capsys):
    out = tmp_path / "synth"
    synthetic.write_synthetic(out, progress=False, subjects=["ckplus/S501", "ckplus/S502"])
    planned = [s for s in synthetic.macro_plan(0) if s.subject in ("S501", "S502")]
    records = ckplus.read_sequences(synthetic.macro_root(out), Problems(strict=True))
    labelled = [s for s in planned if s.emotion is not None]
    assert [(r["sequence"], r["emotion"], r["last_frame"]) for r in records] == [
        (f"{s.subject}_{s.name}", s.emotion, s.n_frames) for s in labelled]
    assert {"happiness", "surprise", "anger", "disgust", "sadness"} <= {
        r["emotion"] for r in records}
    # each sequence rises from its neutral first frame to the peak at its last frame, with a
    # large motion: Farneback flow (99.5th percentile) about 3.6 px on average at the peak, where
    # the micro clips' onset->apex flow measures about 1.6 px in the same way
    def motion(a, b):
        flow = cv2.calcOpticalFlowFarneback(cv2.imread(str(a), cv2.IMREAD_GRAYSCALE),
                                            cv2.imread(str(b), cv2.IMREAD_GRAYSCALE), None,
                                            0.5, 3, 15, 3, 5, 1.2, 0)
        return np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 99.5)

    peaks = []
    for record in records[:6]:
        frames = list_frames(record["neutral"].parent)
        first, middle, last = (motion(record["neutral"], frames[i][1])
                               for i in (1, len(frames) // 2, -1))
        assert last > middle > first
        peaks.append(last)
    assert np.mean(peaks) > 2.5
    assert {s.subject for s in synthetic.macro_sequences(0, ["casme2/01"])} == {
        "S501", "S502", "S503"}
    # and through the macro command, with the face found by the Haar cascade where there is one
    from data_prep import face
    try:
        face.haar_cascade_path()
        detector = "haar"
    except face.MissingCascadeError:
        detector = "none"
    cache_dir = tmp_path / "cache"
    assert cli_main(["macro", "--protocol", "megc2018_objective", "--ckplus",
                     str(synthetic.macro_root(out)), "--out", str(cache_dir), "--face-size", "32",
                     "--face-detector", detector, "--workers", "1"]) == 0
    capsys.readouterr()
    data = cache.load_cache(cache_dir, arrays=("expression", "neutral"))
    assert len(data) == 3 * sum(s.emotion in macro.LABEL_MAPS["megc2018_objective"]
                                for s in labelled)
    if detector == "haar":
        assert {row["face_box_source"] for row in data.index} == {"haar"}
