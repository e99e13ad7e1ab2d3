"""The synthetic CASME II / SAMM / SMIC-HS set: layout, formats, composition, faces, motion."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from data_prep import synthetic
from data_prep.errors import DataPrepError

CDE_TOTALS = {"casme2": (88, 32, 25), "samm": (92, 26, 15), "smic": (70, 51, 43)}
SMALL = ("casme2/04", "casme2/05", "samm/025", "samm/019", "smic/3")


def _digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The whole set, seed 0, written once for the module (about 10 s)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    roots = synthetic.write_synthetic(out, seed=0, progress=False)
    return out, roots


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, full):
    a = synthetic.write_synthetic(tmp_path / "a", seed=0, progress=False, subjects=SMALL)
    b = synthetic.write_synthetic(tmp_path / "b", seed=0, progress=False, subjects=SMALL)
    c = synthetic.write_synthetic(tmp_path / "c", seed=1, progress=False, subjects=SMALL)
    da, db, dc = (_digest(tmp_path / name) for name in "abc")
    assert len(da) > 50
    assert da == db
    assert a["casme2"] == tmp_path / "a" / "CASME2"
    frames = [k for k in da if k.endswith((".jpg", ".bmp"))]
    assert sum(da[k] != dc.get(k) for k in frames) == len(frames)
    assert da["CASME2/CASME2-coding-20140508.xlsx"] != dc["CASME2/CASME2-coding-20140508.xlsx"]
    # a clip's frames do not depend on which other clips were written
    whole = _digest(full[0])
    assert all(whole[k] == da[k] for k in frames)
    assert c["smic"].is_dir()


def test_rerun_is_a_noop_and_other_seed_is_refused(full):
    out, roots = full
    marker = out / synthetic.MARKER
    text = marker.read_text()
    assert "seed: 0" in text and f"generator version: {synthetic.VERSION}" in text
    before = marker.stat().st_mtime_ns
    assert synthetic.write_synthetic(out, seed=0, progress=False) == roots
    assert marker.stat().st_mtime_ns == before
    with pytest.raises(DataPrepError, match="already holds a synthetic set"):
        synthetic.write_synthetic(out, seed=1, progress=False)


def test_refuses_database_folders_it_did_not_write(tmp_path):
    (tmp_path / "CASME2").mkdir()
    with pytest.raises(DataPrepError, match="not written by"):
        synthetic.write_synthetic(tmp_path, progress=False, subjects=SMALL)


def test_cli_on_a_complete_folder(full, capsys):
    from data_prep.__main__ import main

    out, _ = full
    assert main(["synth", "--out", str(out), "--seed", "0"]) == 0
    assert "--casme2" in capsys.readouterr().out
    assert main(["synth", "--out", str(out), "--seed", "2"]) == 2
    assert "already holds a synthetic set" in capsys.readouterr().err


def test_layout(full):
    out, roots = full
    clips = synthetic.plan(0)
    casme = next(c for c in clips if c.database == "casme2")
    folder = roots["casme2"] / "CASME2_RAW_selected" / f"sub{casme.subject}" / casme.name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"img{n}.jpg" for n in range(casme.onset, casme.offset + 1)
    )
    samm = next(c for c in clips if c.database == "samm" and c.subject == "006")
    assert (roots["samm"] / "SAMM" / "006" / samm.name / f"006_{samm.onset:05d}.jpg").is_file()
    assert samm.name.startswith("006_")
    smic = next(c for c in clips if c.database == "smic")
    path = (
        roots["smic"]
        / "HS"
        / "s1"
        / "micro"
        / "negative"
        / "s1_ne_01"
        / f"image{smic.onset:06d}.bmp"
    )
    assert path.is_file()
    image = cv2.imread(str(path))
    assert image.shape == (120, 160, 3)
    non_micro = list((roots["smic"] / "HS").glob("s*/non_micro/*/*"))
    assert len(non_micro) == len(synthetic.SMIC_NON_MICRO)


def test_casme2_coding_format(full):
    _, roots = full
    sheet = openpyxl.load_workbook(roots["casme2"] / "CASME2-coding-20140508.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == (
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    )
    body = rows[1:]
    assert all(isinstance(r[0], str) and len(r[0]) == 2 for r in body)
    assert ("04", "EP12_01f") in {(r[0], r[1]) for r in body if r[4] == "/"}
    assert any(r[1] == "EP09_05f" and r[3] == r[4] for r in body)
    emotions = collections.Counter(r[8] for r in body)
    assert set(emotions) <= {
        "happiness",
        "disgust",
        "repression",
        "surprise",
        "fear",
        "sadness",
        "others",
    }
    assert emotions["others"] >= 5 and emotions["repression"] > 0
    assert len({r[0] for r in body}) == 26


def test_samm_coding_has_13_preamble_rows(full):
    _, roots = full
    book = openpyxl.load_workbook(roots["samm"] / "SAMM_Micro_FACS_Codes_v2.xlsx")
    assert book.sheetnames == ["MICRO_ONLY"]
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][0].startswith("SAMM Dataset")
    assert rows[13] == (
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Micro",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    )
    body = rows[14:]
    assert all(
        isinstance(r[0], str) and len(r[0]) == 3 and r[1].startswith(r[0] + "_") for r in body
    )
    assert all(r[3] < r[4] < r[5] for r in body)
    assert {r[9] for r in body} <= {
        "Anger",
        "Contempt",
        "Disgust",
        "Fear",
        "Sadness",
        "Happiness",
        "Surprise",
        "Other",
    }
    assert len({r[0] for r in body}) == 29
    assert {r[9] for r in body if r[0] == "025"} == {"Other"}


def test_plan_mirrors_the_megc2019_composition():
    clips = synthetic.plan(0)
    cde = [c for c in clips if c.in_cde]
    assert len(cde) == 442
    assert len({(c.database, c.subject) for c in cde}) == 68
    for database, totals in CDE_TOTALS.items():
        mine = collections.Counter(c.group for c in cde if c.database == database)
        assert tuple(mine[k] for k in synthetic.CLASSES) == totals
        per_subject = collections.defaultdict(lambda: [0, 0, 0])
        for c in cde:
            if c.database == database:
                per_subject[c.subject][synthetic.CLASSES.index(c.group)] += 1
        assert {k: tuple(v) for k, v in per_subject.items()} == synthetic.CDE_COUNTS[database]
    assert len({c.rel_dir for c in clips}) == len(clips)
    assert sum(not c.in_cde for c in clips) >= 10


def test_cde_index_through_the_readers_is_442(full):
    index = pytest.importorskip("data_prep.index")
    _, roots = full
    result = index.build_index("cde", **roots)
    assert len(result.rows) == 442
    assert len({row["subject"] for row in result.rows}) == 68
    counts = collections.Counter((row["database"], row["label"]) for row in result.rows)
    for database, totals in CDE_TOTALS.items():
        assert tuple(counts[(database, k)] for k in synthetic.CLASSES) == totals
    reasons = " ".join(row["reason"] for row in result.excluded)
    assert "apex" in reasons and "onset equals apex" in reasons and "others" in reasons
    assert len(result.problems) == 0


def _cascade():
    face = pytest.importorskip("data_prep.face")
    try:
        return cv2.CascadeClassifier(str(face.haar_cascade_path()))
    except Exception as error:  # no cascade file on this machine (OpenCV 5 wheels ship none)
        pytest.skip(f"no Haar cascade: {error}")


def test_haar_finds_the_face_on_onset_frames(full):
    out, _ = full
    cascade = _cascade()
    clips = synthetic.plan(0)[::3]
    found = 0
    for clip in clips:
        gray = cv2.imread(
            str(out / clip.rel_dir / clip.frame_name(clip.onset)), cv2.IMREAD_GRAYSCALE
        )
        found += len(cascade.detectMultiScale(gray, 1.1, 5)) > 0
    assert found / len(clips) >= 0.9


def _uf1(features, labels, groups):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    predicted = cross_val_predict(model, features, labels, groups=groups, cv=LeaveOneGroupOut())
    return f1_score(labels, predicted, labels=[0, 1, 2], average="macro")


def test_linear_classifier_on_onset_apex_flow_subset(full):
    """Reduced TV-L1 on 48 px Haar crops of 7 subjects' clips: above chance, below perfect."""
    face = pytest.importorskip("data_prep.face")
    _cascade()
    out, _ = full
    keep = {
        ("casme2", "12"),
        ("casme2", "19"),
        ("samm", "014"),
        ("samm", "007"),
        ("smic", "4"),
        ("smic", "14"),
        ("smic", "20"),
    }
    clips = [c for c in synthetic.plan(0) if c.in_cde and (c.database, c.subject) in keep]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    tvl1.setScalesNumber(3)
    tvl1.setWarpingsNumber(3)
    tvl1.setOuterIterations(5)
    tvl1.setInnerIterations(10)
    features, labels, groups = [], [], []
    for clip in clips:
        onset, apex = (
            cv2.imread(
                str(out / clip.rel_dir / clip.frame_name(clip.onset + i)), cv2.IMREAD_GRAYSCALE
            )
            for i in (0, clip.peak)
        )
        box, _ = face.face_box(onset)
        flow = tvl1.calc(face.crop_face(onset, box, 48), face.crop_face(apex, box, 48), None)
        features.append(cv2.resize(flow, (28, 28), interpolation=cv2.INTER_AREA).ravel())
        labels.append(synthetic.CLASSES.index(clip.group))
        groups.append(f"{clip.database}/{clip.subject}")
    assert len(clips) == 91
    uf1 = _uf1(np.array(features), np.array(labels), np.array(groups))
    print(f"subset LOSO UF1 {uf1:.3f}")
    assert 0.4 < uf1 < 0.95, uf1


@pytest.mark.slow
def test_linear_classifier_on_the_pipeline_flow_cache(full, tmp_path):
    """All 442 clips through the real pipeline (Haar, 128 px TV-L1, 28 px): UF1 in (0.5, 0.9)."""
    index = pytest.importorskip("data_prep.index")
    pipeline = pytest.importorskip("data_prep.pipeline")
    from data_prep.cache import load_cache

    _cascade()
    _, roots = full
    result = index.build_index("cde", **roots)
    items = list(zip(result.samples, [row["label"] for row in result.rows]))
    summary = pipeline.prepare_flow_cache(
        items,
        tmp_path / "cache",
        params=pipeline.flow_params(),
        workers=2,
        progress=False,
        protocol="cde",
        classes=list(synthetic.CLASSES),
    )
    assert summary.full_frame <= 0.1 * len(items)
    data = load_cache(tmp_path / "cache")
    flow = np.asarray(data.arrays["flow"])[..., :2]
    uf1 = _uf1(flow.reshape(len(flow), -1), data.labels, data.subjects)
    print(f"pipeline LOSO UF1 {uf1:.3f}")
    assert 0.5 < uf1 < 0.9, uf1
