"""Database readers on tiny fake trees in the real layouts; the CK+ reader on the real CK+48."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from data_prep.datasets import casme2, ckplus, samm, smic
from data_prep.datasets.frames import frame_for, list_frames
from data_prep.errors import AnnotationError, Problems, SampleError

CASME2_HEADER = ["Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "",
                 "Action Units", "Estimated Emotion"]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
               "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
               "Objective Classes", "Notes"]


def write_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path: Path, rows) -> Path:
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def touch_frames(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def casme2_coding_rows():
    return [CASME2_HEADER,
            ["01", "EP02_01f", "", 46, 59, 86, "", "12", "happiness"],
            ["02", "EP03_02", "", 2, 5, 10, "", "4", "disgust"]]


# --------------------------------------------------------------------------------------------------
# frames

def test_list_frames_sorts_numerically_and_ignores_other_files(tmp_path):
    touch_frames(tmp_path, ["img10.jpg", "img2.jpg", "img1.jpg", "notes.txt", ".hidden.jpg",
                            "img100.png"])
    frames = list_frames(tmp_path)
    assert [n for n, _ in frames] == [1, 2, 10, 100]
    assert [p.name for _, p in frames] == ["img1.jpg", "img2.jpg", "img10.jpg", "img100.png"]


def test_list_frames_uses_last_integer_in_name(tmp_path):
    touch_frames(tmp_path, ["006_05562.jpg", "006_05561.jpg", "reg_image000123.bmp"])
    assert [n for n, _ in list_frames(tmp_path)] == [123, 5561, 5562]


def test_frame_for_missing_frame_names_sample_and_folder(tmp_path):
    touch_frames(tmp_path, ["img1.jpg", "img2.jpg"])
    frames = list_frames(tmp_path)
    assert frame_for(frames, 2).name == "img2.jpg"
    with pytest.raises(SampleError) as info:
        frame_for(frames, 7, sample="casme2/sub01/EP02_01f", frames_dir=tmp_path)
    message = str(info.value)
    assert "casme2/sub01/EP02_01f" in message
    assert str(tmp_path) in message
    assert "no frame 7" in message and "1..2" in message


# --------------------------------------------------------------------------------------------------
# CASME II

@pytest.mark.parametrize("frames_at, frame_name, layout", [
    ("CASME2_RAW_selected", "img{}.jpg", None),
    ("CASME2_RAW_selected/CASME2_RAW_selected", "img{}.jpg", None),
    ("Cropped", "reg_img{}.jpg", "cropped"),
])
def test_casme2_root_layouts(tmp_path, frames_at, frame_name, layout):
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", casme2_coding_rows())
    for subject, clip in [("sub01", "EP02_01f"), ("sub02", "EP03_02")]:
        touch_frames(tmp_path / frames_at / subject / clip,
                     [frame_name.format(n) for n in range(1, 90)])
    samples = casme2.read(tmp_path, Problems(), layout=layout)
    assert [s.sample_id for s in samples] == ["casme2/sub01/EP02_01f", "casme2/sub02/EP03_02"]
    first = samples[0]
    assert (first.onset, first.apex, first.offset, first.emotion) == (46, 59, 86, "happiness")
    assert first.database == "casme2" and first.apex_source == "annotation"
    assert Path(first.frames_dir) == tmp_path / frames_at / "sub01" / "EP02_01f"
    assert list_frames(first.frames_dir)[0][1].name == frame_name.format(1)


def test_casme2_prefers_raw_frames_when_both_layouts_exist(tmp_path):
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", casme2_coding_rows())
    for top in ("Cropped", "CASME2_RAW_selected"):
        for subject, clip in [("sub01", "EP02_01f"), ("sub02", "EP03_02")]:
            touch_frames(tmp_path / top / subject / clip, ["img1.jpg"])
    raw = casme2.read(tmp_path, Problems())
    cropped = casme2.read(tmp_path, Problems(), layout="cropped")
    assert Path(raw[0].frames_dir).parts[-3] == "CASME2_RAW_selected"
    assert Path(cropped[0].frames_dir).parts[-3] == "Cropped"


def test_casme2_coding_file_alone_has_no_frames(tmp_path):
    path = write_csv(tmp_path / "CASME2-coding-20140508.csv", casme2_coding_rows())
    samples = casme2.read(path, Problems())
    assert len(samples) == 2
    assert all(s.frames_dir is None for s in samples)
    assert samples[1].subject == "casme2/sub02"
    assert str(path) in samples[1].source and "row 3" in samples[1].source


def test_casme2_missing_clip_folder_is_a_sample_error(tmp_path):
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", casme2_coding_rows())
    touch_frames(tmp_path / "CASME2_RAW_selected" / "sub01" / "EP02_01f", ["img46.jpg"])
    problems = Problems()
    samples = casme2.read(tmp_path, problems)
    assert [s.clip for s in samples] == ["EP02_01f"]
    assert len(problems) == 1
    error = problems.errors[0]
    assert error.sample == "casme2/sub02/EP03_02"
    assert "clip folder missing" in error.reason
    assert error.path.endswith("EP03_02")
    with pytest.raises(SampleError, match="clip folder missing"):
        casme2.read(tmp_path, Problems(strict=True))


def test_casme2_root_with_both_codings_uses_20140508(tmp_path, caplog):
    write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", casme2_coding_rows())
    relabelled = casme2_coding_rows()
    relabelled[0] = CASME2_HEADER + ["Objective Classes"]
    relabelled[2] = ["02", "EP03_02", "", 2, 5, 10, "", "4", "surprise", 2]
    write_xlsx(tmp_path / "CASME2-coding-20190701.xlsx", relabelled)
    with caplog.at_level("WARNING"):
        samples = casme2.read(tmp_path, Problems())
    assert samples[1].emotion == "disgust"
    assert "20140508" in caplog.text and "20190701" in caplog.text
    only_2019 = casme2.read(tmp_path / "CASME2-coding-20190701.xlsx", Problems())
    assert (only_2019[1].emotion, only_2019[1].objective_class) == ("surprise", 2)


def test_casme2_objective_classes_from_the_side_file(tmp_path):
    write_csv(tmp_path / "CASME2-coding-20140508.csv", casme2_coding_rows())
    write_xlsx(tmp_path / "CASME2-ObjectiveClasses.xlsx",
               [["Subject", "Filename", "Objective Class"], ["01", "EP02_01f", 1],
                ["02", "EP03_02", 4]])
    samples = casme2.read(tmp_path / "CASME2-coding-20140508.csv", Problems())
    assert [s.objective_class for s in samples] == [1, 4]


# --------------------------------------------------------------------------------------------------
# SAMM

def samm_rows(preamble: int = 13):
    rows = [["SAMM Dataset - Master FACS Codes"]] + [[] for _ in range(preamble - 1)]
    rows += [SAMM_HEADER,
             ["006", "006_1_2", 1, 5562, 5588, 5632, 71, "Micro - 1/2", "4+7", "Anger", 3, ""],
             ["007", "007_3_1", 1, 10, 12, 20, 11, "Micro - 1/2", "12", "Happiness", 1, ""]]
    return rows


@pytest.mark.parametrize("top", ["SAMM", "SAMM/SAMM"])
def test_samm_root_with_preamble_rows(tmp_path, top):
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", samm_rows())
    touch_frames(tmp_path / top / "006" / "006_1_2", ["006_05562.jpg", "006_05563.jpg"])
    touch_frames(tmp_path / top / "007" / "007_3_1", ["007_00010.jpg"])
    samples = samm.read(tmp_path, Problems())
    assert [s.sample_id for s in samples] == ["samm/006/006_1_2", "samm/007/007_3_1"]
    assert (samples[0].onset, samples[0].apex, samples[0].offset) == (5562, 5588, 5632)
    assert (samples[0].emotion, samples[0].objective_class) == ("anger", 3)
    assert Path(samples[0].frames_dir) == tmp_path / top / "006" / "006_1_2"


def test_samm_csv_without_preamble(tmp_path):
    path = write_csv(tmp_path / "SAMM_Micro_FACS_Codes_v2.csv", samm_rows()[13:])
    samples = samm.read(path, Problems())
    assert [s.subject for s in samples] == ["samm/006", "samm/007"]
    assert samples[1].emotion == "happiness"


# --------------------------------------------------------------------------------------------------
# SMIC

def make_smic(root: Path, variant: str = "HS", prefix: str = "image") -> None:
    clips = {("s1", "negative", "s1_ne_01"): [101, 102, 110],
             ("s1", "surprise", "s1_sur_01"): [7, 8],
             ("s12", "positive", "s12_po_02"): [999998, 999999]}
    for (subject, emotion, clip), numbers in clips.items():
        touch_frames(root / variant / subject / "micro" / emotion / clip,
                     [f"{prefix}{n:06d}.bmp" for n in numbers])
    touch_frames(root / variant / "s1" / "non_micro" / "s1_01", ["image000001.bmp"])
    touch_frames(root / variant / "s3" / "non_micro" / "s3_01", ["image000001.bmp"])


@pytest.mark.parametrize("prefix", ["image", "reg_image"])
def test_smic_folders_skip_non_micro_and_normalise_names(tmp_path, prefix):
    make_smic(tmp_path / "SMIC_all_cropped", prefix=prefix)
    samples = smic.read(tmp_path, Problems())
    assert [s.sample_id for s in samples] == [
        "smic/s01/s01_ne_01", "smic/s01/s01_sur_01", "smic/s12/s12_po_02"]
    first = samples[0]
    assert (first.onset, first.apex, first.offset) == (101, None, 110)
    assert first.apex_source == "none" and first.emotion == "negative"
    assert Path(first.frames_dir).name == "s1_ne_01"


def test_smic_vis_and_nir_variants(tmp_path):
    make_smic(tmp_path, "VIS")
    make_smic(tmp_path, "NIR")
    vis = smic.read(tmp_path, Problems(), variant="vis")
    nir = smic.read(tmp_path / "NIR", Problems(), variant="nir")
    assert {s.subject for s in vis} == {"smic_vis/s01", "smic_vis/s12"}
    assert {s.database for s in nir} == {"smic_nir"}
    with pytest.raises(AnnotationError, match="no SMIC HS folder"):
        smic.read(tmp_path, Problems(), variant="hs")


def test_smic_label_conflict_and_empty_clip_are_sample_errors(tmp_path):
    touch_frames(tmp_path / "HS" / "s2" / "micro" / "positive" / "s2_ne_01", ["image000001.bmp"])
    (tmp_path / "HS" / "s2" / "micro" / "negative" / "s2_ne_02").mkdir(parents=True)
    problems = Problems()
    assert smic.read(tmp_path, problems) == []
    reasons = sorted(error.reason.split(":")[0] for error in problems)
    assert reasons == ["label conflict", "no frames"]
    assert {error.sample for error in problems} == {"smic/s02/s02_ne_01", "smic/s02/s02_ne_02"}


def test_smic_names():
    assert smic.normalise_clip("s1_ne_01") == "s01_ne_01"
    assert smic.normalise_clip("s12_sur_03") == "s12_sur_03"
    assert smic.subject_folder("3") == "s03"
    assert smic.clip_emotion("s18_sur_03") == "surprise"


# --------------------------------------------------------------------------------------------------
# CK+

def test_ckplus_tiny_tree(tmp_path):
    touch_frames(tmp_path / "happy", ["S005_001_00000011.png", "S010_002_00000003.png"])
    touch_frames(tmp_path / "Anger", ["S005_002_00000001.png", "readme.txt"])
    items = ckplus.read_ckplus(tmp_path)
    assert [(i["emotion"], i["subject"]) for i in items] == [
        ("anger", "S005"), ("happy", "S005"), ("happy", "S010")]
    with pytest.raises(AnnotationError):
        ckplus.read_ckplus(tmp_path / "absent")


def test_ckplus_real_ck48(shared_data_dir):
    items = ckplus.read_ckplus(shared_data_dir / "WuJie1010_Facial-Expression-Recognition.Pytorch"
                               / "CK+48")
    assert len(items) == 981
    assert sorted({i["emotion"] for i in items}) == [
        "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    assert len({i["subject"] for i in items}) == 118
    assert all(i["subject"].startswith("S") for i in items)
