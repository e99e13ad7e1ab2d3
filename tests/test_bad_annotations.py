"""Bad annotation input (issue item 7): one clear message naming the sample and the file.

Each broken coding file is written into tmp_path with openpyxl (or as a .csv), then read in strict
mode (the first bad row raises) and in lenient mode (it is recorded and skipped).
"""

from __future__ import annotations

import subprocess
import sys

import openpyxl
import pytest

from data_prep.datasets import casme2, samm, smic
from data_prep.errors import AnnotationError, Problems, SampleError
from data_prep.index import build_index

HEADER = ["Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "",
          "Action Units", "Estimated Emotion"]
GOOD = ["01", "EP02_01f", "", 46, 59, 86, "", "12", "happiness"]


def write_xlsx(path, rows):
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def coding_with(tmp_path, bad_row, name="CASME2-coding-20140508.xlsx"):
    return write_xlsx(tmp_path / name, [HEADER, GOOD, bad_row])


BAD_ROWS = {
    "apex missing": (["02", "EP03_02", "", 10, "/", 20, "", "4", "disgust"], "apex missing"),
    "apex after offset": (["02", "EP03_02", "", 10, 25, 20, "", "4", "disgust"],
                          "apex outside onset..offset"),
    "apex before onset": (["02", "EP03_02", "", 10, 5, 20, "", "4", "disgust"],
                          "apex outside onset..offset"),
    "onset equals apex": (["02", "EP03_02", "", 10, 10, 20, "", "4", "disgust"],
                          "onset equals apex"),
    "unknown emotion": (["02", "EP03_02", "", 10, 15, 20, "", "4", "joyful"],
                        "unknown emotion label 'joyful'"),
    "frame not a number": (["02", "EP03_02", "", "ten", 15, 20, "", "4", "disgust"],
                           "bad frame number"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_strict_raises_naming_sample_and_file(tmp_path, case):
    row, reason = BAD_ROWS[case]
    path = coding_with(tmp_path, row)
    with pytest.raises(SampleError) as info:
        casme2.read(path, Problems(strict=True))
    error = info.value
    assert error.sample == "casme2/sub02/EP03_02"
    assert reason in error.reason
    message = str(error)
    assert "casme2/sub02/EP03_02" in message and str(path) in message and "row 3" in message


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_lenient_records_and_skips(tmp_path, case):
    row, reason = BAD_ROWS[case]
    path = coding_with(tmp_path, row)
    problems = Problems()
    samples = casme2.read(path, problems)
    assert [s.sample_id for s in samples] == ["casme2/sub01/EP02_01f"]
    assert len(problems) == 1
    assert reason in problems.errors[0].reason
    summary = problems.summary()
    assert "1 sample(s) dropped" in summary and "casme2/sub02/EP03_02" in summary
    assert str(path) in summary


def test_samm_apex_outside_range_names_sample_and_file(tmp_path):
    path = tmp_path / "SAMM_Micro_FACS_Codes_v2.csv"
    path.write_text("Subject,Filename,Inducement Code,Onset Frame,Apex Frame,Offset Frame,"
                    "Duration,Micro,Action Units,Estimated Emotion,Objective Classes,Notes\n"
                    "028,028_4_1,4,1071,1143,1134,64,Micro - 1/2,A14C,Contempt,7,Blinks\n"
                    "006,006_1_2,1,5562,5588,5632,71,Micro - 1/2,4+7,Anger,3,\n")
    with pytest.raises(SampleError, match=r"samm/028/028_4_1: apex outside onset\.\.offset"):
        samm.read(path, Problems(strict=True))
    problems = Problems()
    assert [s.clip for s in samm.read(path, problems)] == ["006_1_2"]
    assert str(path) in str(problems.errors[0])


@pytest.mark.parametrize("strict", [False, True])
def test_index_leaves_bad_apex_out_of_cde_and_unknown_emotion_is_an_error(tmp_path, strict):
    path = write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [
        HEADER, GOOD, BAD_ROWS["apex missing"][0],
        ["03", "EP01_01", "", 10, 12, 20, "", "", "others"]])
    samm_path = tmp_path / "SAMM_Micro_FACS_Codes_v2.csv"
    samm_path.write_text("Subject,Filename,Onset Frame,Apex Frame,Offset Frame,Estimated Emotion\n"
                         "006,006_1_2,5562,5588,5632,Anger\n")
    smic_path = tmp_path / "combined_3_class_gt.csv"
    smic_path.write_text("data,subject,clip,label\nsmic,s01,s01_ne_01,0\n")
    result = build_index("cde", casme2=path, samm=samm_path, smic=smic_path,
                         problems=Problems(strict=strict))
    assert [r["sample"] for r in result.rows] == ["EP02_01f", "006_1_2", "s01_ne_01"]
    reasons = {r["sample"]: r["reason"] for r in result.excluded}
    assert "apex missing" in reasons["EP03_02"]
    assert "'others' is not in protocol cde" in reasons["EP01_01"]
    assert len(result.problems) == 0
    # an unknown emotion is a bad row: strict raises, lenient leaves it out with the reason
    bad = write_xlsx(tmp_path / "bad.xlsx", [HEADER, GOOD, BAD_ROWS["unknown emotion"][0]])
    if strict:
        with pytest.raises(SampleError, match="unknown emotion"):
            build_index("casme2_4class", casme2=bad, problems=Problems(strict=True))
    else:
        lenient = build_index("casme2_4class", casme2=bad)
        assert [r["sample"] for r in lenient.excluded] == ["EP03_02"]
        assert lenient.excluded[0]["reason"].startswith("bad row: unknown emotion")
        assert len(lenient.problems) == 1


# --------------------------------------------------------------------------------------------------
# Whole files that cannot be read: AnnotationError naming the file, in both modes

def _truncated(tmp_path):
    good = write_xlsx(tmp_path / "full.xlsx", [HEADER, GOOD])
    path = tmp_path / "CASME2-coding-20140508.xlsx"
    path.write_bytes(good.read_bytes()[:300])
    return path


def _foreign(tmp_path):
    path = tmp_path / "CASME2-coding-20140508.xlsx"
    path.write_text("this is a plain text file, not a workbook\n")
    return path


def _empty(tmp_path):
    path = tmp_path / "CASME2-coding-20140508.xlsx"
    path.write_bytes(b"")
    return path


def _empty_sheet(tmp_path):
    return write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [])


def _missing_columns(tmp_path):
    return write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx",
                      [["Subject", "Filename", "OnsetFrame"], ["01", "EP02_01f", 46]])


def _header_only(tmp_path):
    return write_xlsx(tmp_path / "CASME2-coding-20140508.xlsx", [HEADER])


def _wrong_database(tmp_path):
    path = tmp_path / "CASME2-coding-20140508.csv"
    path.write_text("Subject,Filename,Onset Frame,Apex Frame,Offset Frame,Estimated Emotion\n"
                    "006,006_1_2,1,2,3,Anger\n")
    return path


BROKEN = {
    "truncated xlsx": (_truncated, "not a readable .xlsx"),
    "not an xlsx": (_foreign, "not a readable .xlsx"),
    "empty file": (_empty, "empty"),
    "empty sheet": (_empty_sheet, "no rows"),
    "missing columns": (_missing_columns, "missing column(s)"),
    "header only": (_header_only, "no data rows"),
    "SAMM file given as CASME II": (_wrong_database, "missing column(s)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("strict", [False, True])
def test_unreadable_coding_file_is_an_annotation_error(tmp_path, case, strict):
    make, reason = BROKEN[case]
    path = make(tmp_path)
    with pytest.raises(AnnotationError) as info:
        casme2.read(path, Problems(strict=strict))
    assert info.value.path == str(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_missing_columns_message_says_which(tmp_path):
    with pytest.raises(AnnotationError) as info:
        casme2.read(_missing_columns(tmp_path), Problems())
    assert "ApexFrame" in info.value.reason and "Estimated Emotion" in info.value.reason


def test_root_without_coding_file(tmp_path):
    with pytest.raises(AnnotationError, match="no CASME II coding file"):
        casme2.read(tmp_path, Problems())
    with pytest.raises(AnnotationError, match="no SAMM coding file"):
        samm.read(tmp_path, Problems())


def test_bad_composite_list_row_names_file_and_row(tmp_path):
    path = tmp_path / "combined_3_class_gt.csv"
    path.write_text("data,subject,clip,label\nsmic,s01,s01_ne_01,0\nsmic,s01,s01_ne_02,7\n")
    with pytest.raises(AnnotationError) as info:
        smic.read(path, Problems())
    assert f"{path} row 3" in str(info.value) and "label 7" in str(info.value)


@pytest.mark.parametrize("case", ["truncated xlsx", "missing columns"])
def test_cli_index_on_broken_file_exits_2_with_one_error_line(tmp_path, case):
    path = BROKEN[case][0](tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "index", "--protocol", "casme2_5class", "--casme2",
         str(path), "--out", str(tmp_path / "index.csv")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and str(path) in lines[0]
    assert not (tmp_path / "index.csv").exists()


def test_cli_index_strict_bad_row_exits_2_naming_sample(tmp_path):
    path = coding_with(tmp_path, BAD_ROWS["unknown emotion"][0])
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "index", "--protocol", "casme2_5class", "--casme2",
         str(path), "--out", str(tmp_path / "index.csv"), "--strict"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: casme2/sub02/EP03_02: unknown emotion label 'joyful'")
    assert str(path) in lines[0]
