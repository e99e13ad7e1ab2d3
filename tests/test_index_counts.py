"""Every protocol's counts from the real annotation files, pinned to annotations/REPORT.md."""

from __future__ import annotations

import collections
import csv
import subprocess
import sys

import pytest

from data_prep.datasets import casme2, samm, smic
from data_prep.errors import DataPrepError, Problems
from data_prep.index import PROTOCOLS, build_index, count_table

DAVID = "davidnvq_me_recognition"
MOUATH = "MouathAb_AnalyseMiE"


@pytest.fixture
def files(annotations_dir):
    """The canonical annotation files (REPORT.md recommendation)."""
    david = annotations_dir / DAVID
    return {
        "casme2": david / "CASME2-coding-20140508.xlsx",
        "casme2_2019": annotations_dir / MOUATH / "CASME2-coding-20190701.xlsx",
        "samm": david / "SAMM_Micro_FACS_Codes_v2.xlsx",
        "samm_2022": annotations_dir / MOUATH / "SAMM_Micro_FACS_Codes_v2.csv",
        "cde_list": david / "combined_3_class_gt.csv",
        "smic_e": david / "SMIC-HS-E_annotation_orig.xlsx",
    }


def counts(rows, database=None):
    """``({label: n}, n subjects)`` over ``rows`` (of one database)."""
    part = [r for r in rows if database is None or r["database"] == database]
    return dict(collections.Counter(r["label"] for r in part)), len({r["subject"] for r in part})


def names(rows):
    return {(r["database"], r["subject"].split("/")[1], r["sample"], r["label"]) for r in rows}


def official_cde(path):
    classes = ("negative", "positive", "surprise")
    return {(row["database"], row["subject"], row["clip"], classes[row["label"]])
            for row in smic.read_composite_list(path)}


def test_protocol_registry_is_complete():
    assert set(PROTOCOLS) == {
        "cde", "casme2_5class", "casme2_4class", "samm_5class", "samm_4class", "smic_3class",
        "casme2_samm_4class",
        "cdmer_casme2", "cdmer_smic_hs", "cdmer_smic_vis", "cdmer_smic_nir", "megc2018_objective",
        "casme2_objective"}
    for protocol in PROTOCOLS.values():
        assert protocol.description
        for database, mapping in protocol.mapping.items():
            assert database in protocol.databases
            assert set(mapping.values()) <= set(protocol.classes)


def test_cde_from_coding_files_equals_official_list(files):
    result = build_index("cde", casme2=files["casme2"], samm=files["samm"], smic=files["cde_list"])
    rows = result.rows
    assert counts(rows, "casme2") == ({"negative": 88, "positive": 32, "surprise": 25}, 24)
    assert counts(rows, "samm") == ({"negative": 92, "positive": 26, "surprise": 15}, 28)
    assert counts(rows, "smic") == ({"negative": 70, "positive": 51, "surprise": 43}, 16)
    assert counts(rows) == ({"negative": 250, "positive": 109, "surprise": 83}, 68)
    assert names(rows) == official_cde(files["cde_list"])
    # order: database as in the protocol, then subject, then sample
    assert [r["database"] for r in rows] == ["casme2"] * 145 + ["samm"] * 133 + ["smic"] * 164
    keys = [(r["subject"], r["sample"]) for r in rows[:145]]
    assert keys == sorted(keys)
    assert [s.clip for s in result.samples] == [r["sample"] for r in rows]
    # the two CASME II clips REPORT.md A names are left out for their apex, not as errors
    apex_reasons = {r["sample"]: r["reason"] for r in result.excluded if "apex" in r["reason"]}
    assert set(apex_reasons) == {"EP12_01f", "EP09_05f"}
    assert "apex missing" in apex_reasons["EP12_01f"]
    assert "onset equals apex" in apex_reasons["EP09_05f"]
    assert len(result.problems) == 0


def test_cde_from_csv_conversions_matches_the_xlsx(annotations_dir, files):
    david = annotations_dir / DAVID
    from_csv = build_index("cde", casme2=david / "CASME2-coding-20140508.csv",
                           samm=david / "SAMM_Micro_FACS_Codes_v2.csv",
                           smic=david / "combined_3class_gt.csv")
    from_xlsx = build_index("cde", casme2=files["casme2"], samm=files["samm"],
                            smic=files["cde_list"])
    assert names(from_csv.rows) == names(from_xlsx.rows)
    assert len(from_csv.rows) == 442


def test_cde_with_2019_coding_has_three_more_surprise(files):
    rows = build_index("cde", casme2=files["casme2_2019"], samm=files["samm"],
                       smic=files["cde_list"]).rows
    assert counts(rows, "casme2") == ({"negative": 88, "positive": 32, "surprise": 28}, 24)
    relabelled = {r["sample"] for r in rows if r["subject"] == "casme2/sub24"
                  and r["label"] == "surprise"}
    assert {"EP07_01", "EP07_04f", "EP10_03"} <= relabelled


def test_samm_2022_copy_drops_two_impossible_apexes_in_cde(files):
    result = build_index("cde", casme2=files["casme2"], samm=files["samm_2022"],
                         smic=files["cde_list"])
    assert counts(result.rows, "samm") == ({"negative": 90, "positive": 26, "surprise": 15}, 28)
    dropped = {r["sample"] for r in result.excluded if "apex outside" in r["reason"]}
    assert dropped == {"028_4_1", "032_3_1"}


@pytest.mark.parametrize("protocol, database, expected, subjects", [
    ("casme2_4class", "casme2", {"negative": 72, "positive": 32, "surprise": 25, "others": 126},
     26),
    ("casme2_5class", "casme2", {"happiness": 32, "surprise": 25, "disgust": 63,
                                 "repression": 27, "others": 99}, 26),
    ("cdmer_casme2", "casme2", {"negative": 72, "positive": 32, "surprise": 25}, 22),
    ("samm_4class", "samm", {"negative": 92, "positive": 26, "surprise": 15, "others": 26}, 29),
    ("samm_5class", "samm", {"I": 24, "II": 13, "III": 20, "IV": 8, "V": 3}, 21),
])
def test_single_database_counts(files, protocol, database, expected, subjects):
    result = build_index(protocol, casme2=files["casme2"], samm=files["samm"])
    assert counts(result.rows, database) == (expected, subjects)
    assert sum(expected.values()) == PROTOCOLS[protocol].expected[database]


def test_strcn_composite_is_the_two_four_class_sets_over_55_subjects(files):
    # STRCN Table VI: 415 samples, 55 subjects (ours 414: casme2_4class has 255, not 256)
    result = build_index("casme2_samm_4class", casme2=files["casme2"], samm=files["samm"])
    assert counts(result.rows, "casme2") == (
        {"negative": 72, "positive": 32, "surprise": 25, "others": 126}, 26)
    assert counts(result.rows, "samm") == (
        {"negative": 92, "positive": 26, "surprise": 15, "others": 26}, 29)
    assert len(result.rows) == 414
    assert len({r["subject"] for r in result.rows}) == 55


def test_outside_cde_bad_apex_clips_are_kept_with_apex_left_to_the_pipeline(files):
    result = build_index("casme2_4class", casme2=files["casme2"])
    kept = {(r["subject"], r["sample"]): r for r in result.rows}
    for key in (("casme2/sub04", "EP12_01f"), ("casme2/sub05", "EP09_05f")):
        assert kept[key]["apex"] is None
        assert kept[key]["apex_source"] == "none"
        assert "apex" in kept[key]["note"]
    good = kept[("casme2/sub01", "EP02_01f")]
    assert (good["apex"], good["apex_source"], good["note"]) == (59, "annotation", "")
    assert result.excluded == []


def test_casme2_2019_counts(files):
    four = build_index("casme2_4class", casme2=files["casme2_2019"]).rows
    five = build_index("casme2_5class", casme2=files["casme2_2019"]).rows
    assert counts(four)[0] == {"negative": 69, "positive": 32, "surprise": 28, "others": 126}
    assert len(five) == 249


def test_megc2018_objective_counts(files):
    rows = build_index("megc2018_objective", casme2=files["casme2"], samm=files["samm"]).rows
    assert counts(rows, "casme2") == ({"I": 25, "II": 15, "III": 99, "IV": 26, "V": 20}, 26)
    assert counts(rows, "samm") == ({"I": 24, "II": 13, "III": 20, "IV": 8, "V": 3}, 21)
    assert counts(rows)[0] == {"I": 49, "II": 28, "III": 119, "IV": 34, "V": 23}
    assert len(rows) == 253
    alone = build_index("casme2_objective", casme2=files["casme2"]).rows
    assert counts(alone) == ({"I": 25, "II": 15, "III": 99, "IV": 26, "V": 20}, 26)


def test_smic_counts_from_each_source(files):
    from_list = build_index("smic_3class", smic=files["cde_list"]).rows
    assert counts(from_list) == ({"negative": 70, "positive": 51, "surprise": 43}, 16)
    from_e = build_index("cdmer_smic_hs", smic=files["smic_e"]).rows
    assert counts(from_e) == ({"negative": 69, "positive": 51, "surprise": 42}, 16)
    missing = {r["sample"] for r in from_list} - {r["sample"] for r in from_e}
    assert missing == {"s01_ne_02", "s02_sur_05"}
    by_clip = {r["sample"]: r for r in from_e}
    assert by_clip["s18_sur_03"]["label"] == "surprise"  # the Emotion column says negative


@pytest.mark.parametrize("protocol, database", [("cdmer_smic_vis", "smic_vis"),
                                                ("cdmer_smic_nir", "smic_nir")])
def test_cdmer_smic_vis_nir_counts(files, annotations_dir, protocol, database):
    rows = build_index(protocol, smic=files["smic_e"]).rows
    assert counts(rows, database) == ({"negative": 23, "positive": 28, "surprise": 20}, 8)
    label_file = f"SMIC_{database.split('_')[1].upper()}_micro_label.csv"
    with open(annotations_dir / "ProphetZ-star_ME-Recognition_CDMER" / label_file) as handle:
        vector = collections.Counter(row["label"] for row in csv.DictReader(handle))
    assert vector == {"1": 23, "2": 28, "3": 20}


def test_missing_database_and_unknown_protocol(files):
    with pytest.raises(DataPrepError, match="--samm"):
        build_index("cde", casme2=files["casme2"], smic=files["cde_list"])
    with pytest.raises(DataPrepError, match="unknown protocol 'nope'"):
        build_index("nope")


def test_count_table_lists_databases_classes_and_totals():
    rows = [{"database": "a", "subject": "a/1", "label": "x"},
            {"database": "a", "subject": "a/2", "label": "y"},
            {"database": "b", "subject": "b/1", "label": "x"}]
    lines = count_table(rows, ["x", "y"]).splitlines()
    assert lines[0].split() == ["database", "x", "y", "total", "subjects"]
    assert lines[1].split() == ["a", "1", "1", "2", "2"]
    assert lines[3].split() == ["all", "2", "1", "3", "3"]


def test_cli_index_writes_index_and_excluded(files, tmp_path):
    out = tmp_path / "cde.csv"
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "index", "--protocol", "cde", "--casme2",
         str(files["casme2"]), "--samm", str(files["samm"]), "--smic", str(files["cde_list"]),
         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "442" in done.stdout and "left out" in done.stdout
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 442
    assert list(rows[0])[:11] == ["database", "subject", "sample", "onset", "apex", "offset",
                                  "emotion", "label", "apex_source", "objective_class", "source"]
    with open(tmp_path / "cde.excluded.csv") as handle:
        excluded = list(csv.DictReader(handle))
    assert len(excluded) == (255 - 145) + (159 - 133)
    assert all(row["reason"] for row in excluded)


def test_readers_accept_real_files_directly(files):
    assert len(casme2.read(files["casme2"], Problems(), check_apex=False)) == 255
    assert len(samm.read(files["samm"], Problems())) == 159
