"""A cache that is damaged, cut short, shrunk or interrupted is never used silently (issue 11).

Each test builds the bad input (a synthetic partial set, or a few small PNGs and a label list in
tmp_path), runs the real command (``data_prep.__main__.main``, or a subprocess where it must be
killed) and asserts on the outcome and the message.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep import cache
from data_prep.__main__ import main as cli_main

SUBJECTS = ("casme2/01", "samm/006", "smic/1")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The synthetic CASME II sub01, SAMM 006 and SMIC s1 (4 + 12 + 6 clips), written once."""
    out = tmp_path_factory.mktemp("synth")
    assert cli_main(["synth", "--out", str(out), "--subjects", *SUBJECTS]) == 0
    return out


def _own_copy(synth, tmp_path) -> Path:
    return Path(shutil.copytree(synth, tmp_path / "synth"))


def _flow(root, out, protocol="casme2_5class", *extra, face_size="16"):
    roots = {"casme2_5class": ["--casme2", str(root / "CASME2")],
             "smic_3class": ["--smic", str(root / "SMIC")],
             "cde": ["--casme2", str(root / "CASME2"), "--samm", str(root / "SAMM"),
                     "--smic", str(root / "SMIC")]}[protocol]
    return ["flow", "--protocol", protocol, *roots, "--out", str(out), "--workers", "1",
            "--face-size", face_size, "--flow-size", "8", "--face-detector", "none", *extra]


def _entries(out) -> dict:
    """``{entry: (arrays, provenance)}`` of every row of ``out``'s index."""
    return {row["entry"]: cache.read_entry(Path(out) / row["entry"])
            for row in cache.read_index(out)}


def _member_data_offset(path: Path, member: str) -> tuple[int, int]:
    """Where ``member``'s compressed bytes lie in the zip at ``path``: ``(offset, size)``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


# --------------------------------------------------------------------------------------------------
# (a) damaged array bytes behind an intact provenance

def test_damaged_entry_arrays_are_recomputed_and_load_cache_refuses_them(synth, tmp_path, capsys):
    out = tmp_path / "cache"
    args = _flow(synth, out)
    assert cli_main(args) == 0
    rows = cache.read_index(out)
    before = _entries(out)
    # one entry: a byte of the compressed flow array flipped (zlib.error or a bad CRC-32)
    flipped = out / rows[0]["entry"]
    offset, size = _member_data_offset(flipped, "flow.npy")
    data = bytearray(flipped.read_bytes())
    data[offset + size // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    # another: a well-formed zip (CRCs right) whose arrays are not those its provenance recorded
    rewritten = out / rows[1]["entry"]
    arrays, provenance = cache.read_entry(rewritten)
    np.savez_compressed(rewritten, provenance=np.array(json.dumps(provenance, sort_keys=True)),
                        **{**arrays, "flow": arrays["flow"] + 1})
    assert cache.read_provenance(flipped) == before[rows[0]["entry"]][1]   # provenance intact
    assert cache.read_provenance(rewritten) == provenance

    with pytest.raises(cache.CacheError, match=rf"{rows[0]['subject']}/{rows[0]['sample']}: cache "
                       r"entry .* is unreadable .*rerun the preparation to rebuild it"):
        cache.load_cache(out)
    capsys.readouterr()
    assert cli_main(args) == 0                         # the advice works: the rerun rebuilds them
    printed = capsys.readouterr().out
    assert f"{len(rows)} entries (2 computed, {len(rows) - 2} reused), 0 dropped" in printed
    assert "2 unreadable or damaged entry file(s) recomputed:" in printed
    assert f"{rows[1]['subject']}/{rows[1]['sample']}: damaged: its arrays do not match" in printed
    after = _entries(out)
    for entry, (arrays, _) in before.items():
        for name, value in arrays.items():
            np.testing.assert_array_equal(after[entry][0][name], value)
    assert len(cache.load_cache(out)) == len(rows)


def test_a_consistently_rewritten_entry_is_refused_by_load_cache(synth, tmp_path):
    out = tmp_path / "cache"
    assert cli_main(_flow(synth, out)) == 0
    row = cache.read_index(out)[2]
    path = out / row["entry"]
    arrays, provenance = cache.read_entry(path)
    np.savez_compressed(path, provenance=np.array(json.dumps(provenance, sort_keys=True)),
                        **{**arrays, "flow": np.zeros_like(arrays["flow"])})
    with pytest.raises(cache.CacheError, match=rf"{row['subject']}/{row['sample']}: cache entry "
                       r".* is damaged \(its arrays do not match the checksum"):
        cache.load_cache(out)


# --------------------------------------------------------------------------------------------------
# (b), (c), (d) the flow-image import

def _png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def _labels(path: Path, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "sub", "filename_o", "label", "apex", "imagename",
                         "sub_filename"])
        writer.writerows([[db, sub, clip, label, "", "", ""] for db, sub, clip, label in rows])
    return path


LISTED = [("casme2", "sub01", "EP02_01f", 1), ("samm", "006", "006_1_2", 0),
          ("smic", "s01", "s01_ne_01", 2), ("casme2", "sub02", "EP03_02", 0)]


def _flow_pngs(tmp_path, size=28) -> Path:
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for _, sub, clip, _ in LISTED:
        _png(images / f"{sub}_{clip} .png", rng.integers(0, 256, (size, size, 3), np.uint8))
    return images


def _import(images, labels, out, *extra):
    return cli_main(["import-flow-images", "--images", str(images), "--labels", str(labels),
                     "--out", str(out), *extra])


def test_zero_byte_png_is_one_line_naming_the_file_and_the_sample_is_dropped(tmp_path, capsys):
    images = _flow_pngs(tmp_path)
    empty = images / "006_006_1_2 .png"
    empty.write_bytes(b"")
    labels = _labels(tmp_path / "labels.csv", LISTED)
    assert _import(images, labels, tmp_path / "cache") == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "3 entries (3 computed, 0 reused), 1 dropped" in captured.out
    assert (f"samm/006/006_1_2: unreadable flow image: the file is empty (0 bytes) ({empty})"
            in captured.out)
    assert [row["sample"] for row in cache.read_index(tmp_path / "cache")] == [
        "EP02_01f", "s01_ne_01", "EP03_02"]
    assert _import(images, labels, tmp_path / "strict", "--strict") == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [f"error: samm/006/006_1_2: unreadable flow image: the file is empty (0 "
                      f"bytes) ({empty})"]


def test_a_sample_listed_twice_is_an_error_naming_both_rows(tmp_path, capsys):
    images = _flow_pngs(tmp_path)
    labels = _labels(tmp_path / "labels.csv", LISTED + [("samm", "006", "006_1_2", 2)])
    message = (f"error: {labels}: sample samm/006/006_1_2 is listed twice, {labels} row 3 and "
               f"{labels} row 6 (labels negative and surprise); keep one row")
    assert _import(images, labels, tmp_path / "cache") == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "cache" / "index.csv").exists()
    # the apex-image import reads the same lists, with the same check
    apex = tmp_path / "apex"
    apex.mkdir()
    assert cli_main(["import-apex-images", "--images", str(apex), "--labels", str(labels),
                     "--out", str(tmp_path / "apex-cache")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_a_flow_image_of_another_size_is_refused_naming_the_file_and_both_sizes(tmp_path, capsys):
    images = _flow_pngs(tmp_path)
    odd = images / "sub01_EP02_01f .png"
    _png(odd, np.zeros((64, 64, 3), np.uint8))
    labels = _labels(tmp_path / "labels.csv", LISTED)
    assert _import(images, labels, tmp_path / "cache") == 0
    printed = capsys.readouterr().out
    assert (f"casme2/sub01/EP02_01f: flow image size differs: 64 x 64 here, 28 x 28 for most "
            f"images of the list; every flow image of a cache must have one size ({odd})"
            in printed)
    data = cache.load_cache(tmp_path / "cache")
    assert data.arrays["flow"].shape == (3, 28, 28, 3)
    assert _import(images, labels, tmp_path / "strict", "--strict") == 2
    assert "error: casme2/sub01/EP02_01f: flow image size differs: 64 x 64 here, 28 x 28" in \
        capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# (e) index.csv cut short, (h) cache.json cut short

def test_an_index_cut_mid_row_is_refused_with_both_counts(synth, tmp_path, capsys):
    out = tmp_path / "cache"
    args = _flow(synth, out)
    assert cli_main(args) == 0
    meta = cache.read_cache_meta(out)
    assert meta["samples"] == 4 and len(meta["index_sha256"]) == 64
    text = (out / "index.csv").read_text()
    lines = text.splitlines(keepends=True)
    (out / "index.csv").write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    with pytest.raises(cache.CacheError, match=r"index.csv: 3 sample rows \(the last one cut "
                       r"short\), where .*cache.json records 4; the index was cut or edited after "
                       r"the preparation: rerun the preparation to rewrite it"):
        cache.load_cache(out)
    (out / "index.csv").write_text("".join(lines[:3]))       # cut at a row boundary
    with pytest.raises(cache.CacheError, match=r"2 sample rows, where .*cache.json records 4"):
        cache.load_cache(out)
    assert cli_main(args) == 0                               # the rerun rewrites it
    assert (out / "index.csv").read_text() == text and len(cache.load_cache(out)) == 4


def test_a_truncated_cache_json_is_named(synth, tmp_path, capsys):
    out = tmp_path / "cache"
    assert cli_main(_flow(synth, out)) == 0
    path = out / "cache.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(cache.CacheError, match=rf"{path}: not valid JSON \(.*\); the file was cut "
                       "or edited: rerun the preparation to rewrite it"):
        cache.load_cache(out)
    capsys.readouterr()
    assert cli_main(["index", "--protocol", "cde", "--cache", str(out),
                     "--out", str(tmp_path / "index.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: not valid JSON")


# --------------------------------------------------------------------------------------------------
# (f) the index shrinks, (g) every sample the index leaves out is counted and listed

def test_a_shrinking_index_says_which_samples_left_and_keeps_their_entries(synth, tmp_path,
                                                                          capsys):
    root = _own_copy(synth, tmp_path)
    out = tmp_path / "cache"
    assert cli_main(_flow(root, out)) == 0
    rows = cache.read_index(out)
    gone = rows[1:3]
    for row in gone:
        shutil.rmtree(root / "CASME2" / "CASME2_RAW_selected" / "sub01" / row["sample"])
    capsys.readouterr()
    assert cli_main(_flow(root, out)) == 0
    printed = capsys.readouterr().out
    assert ("warning: the index shrank from 4 to 2 samples: 2 sample(s) of the previous index "
            "left it (their entries stay on disk and are reused when they come back):" in printed)
    for row in gone:
        assert f"  - casme2/sub01/{row['sample']}: dropped: clip folder missing" in printed
        assert (out / row["entry"]).is_file()
    assert [r["sample"] for r in cache.read_index(out)] == [rows[0]["sample"], rows[3]["sample"]]
    left = cache.read_cache_meta(out)["left_index"]
    assert [r["sample"] for r in left] == [f"casme2/sub01/{r['sample']}" for r in gone]


def test_every_sample_the_cde_index_leaves_out_is_counted_and_listed(synth, tmp_path, capsys):
    import openpyxl

    from data_prep.index import build_index

    root = _own_copy(synth, tmp_path)
    coding = root / "CASME2" / "CASME2-coding-20140508.xlsx"
    book = openpyxl.load_workbook(coding)
    sheet = book.active
    bad = {}
    for row in sheet.iter_rows(min_row=2):
        clip, onset, offset = row[1].value, row[3].value, row[5].value
        change = {"EP03_04": "/", "EP11_01f": onset, "EP15_06f": offset + 5}.get(clip)
        if change is not None:
            row[4].value = change
            bad[clip] = change
    book.save(coding)
    assert len(bad) == 3
    roots = {name: root / folder for name, folder in (("casme2", "CASME2"), ("samm", "SAMM"),
                                                      ("smic", "SMIC"))}
    index = build_index("cde", **roots)
    total = len(index.rows) + len(index.excluded)
    out = tmp_path / "cache"
    capsys.readouterr()
    assert cli_main(_flow(root, out, "cde")) == 0
    printed = capsys.readouterr().out
    meta = cache.read_cache_meta(out)
    excluded = {row["sample"]: row["reason"] for row in meta["excluded"]}
    entries = len(cache.read_index(out))
    assert entries + len(meta["dropped"]) + len(excluded) == total
    assert f"{entries} entries ({entries} computed, 0 reused), 0 dropped, {len(excluded)} left " \
           "out by the index" in printed
    assert f"{len(excluded)} sample(s) left out by the index (cache.json \"excluded\"):" in printed
    for clip, what in (("EP03_04", "apex missing"), ("EP11_01f", "onset equals apex"),
                       ("EP15_06f", "apex outside onset..offset")):
        assert what in excluded[f"casme2/sub01/{clip}"]
        assert f"  - casme2/sub01/{clip}: {excluded[f'casme2/sub01/{clip}']}" in printed
    assert "casme2/sub01/EP11_02f" in excluded           # 'others' is not a CDE class
    for sample, reason in excluded.items():
        assert f"  - {sample}: {reason}" in printed


# --------------------------------------------------------------------------------------------------
# (i) workers die with their parent

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_flow_with_two_workers_leaves_no_worker_alive(synth, tmp_path):
    out = tmp_path / "cache"
    args = _flow(synth, out, "smic_3class", "--sequence-length", "8", face_size="64")
    args[args.index("--workers") + 1] = "2"
    run = subprocess.Popen([sys.executable, "-m", "data_prep", *args], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.rglob("*.npz")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        children = _children(run.pid)
        assert run.poll() is None, "the run ended before it could be killed"
        assert len(children) >= 2                    # two workers (and the resource tracker)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(_running, children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in children if _running(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()


# --------------------------------------------------------------------------------------------------
# (j) file modes

def test_cache_files_get_the_users_umask_not_0600(synth, tmp_path):
    out = tmp_path / "cache"
    old = os.umask(0o002)
    try:
        assert cli_main(_flow(synth, out)) == 0
    finally:
        os.umask(old)
    files = [out / "index.csv", out / "cache.json", *out.rglob("*.npz")]
    assert len(files) == 6
    assert {oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == {oct(0o664)}


# --------------------------------------------------------------------------------------------------
# Fault injection: kill a small flow run at random points, resume, compare with an unbroken run

def _kill_when(args, ready, delay: float) -> bool:
    """Run ``python -m data_prep *args``; SIGKILL it ``delay`` s after ``ready()`` holds. Returns
    whether it was killed (False: it ended first)."""
    run = subprocess.Popen([sys.executable, "-m", "data_prep", *args], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        killed = run.poll() is None
        if killed:
            run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    return killed


def test_killed_and_resumed_flow_equals_an_uninterrupted_one(synth, tmp_path):
    """Four kills at random points while entries are computed (after 0-2 new entries, then up to
    0.25 s), with one and two workers, and one as the index is written; then a resume."""
    def args(out, workers=1):
        found = _flow(synth, out, "smic_3class", "--sequence-length", "3", face_size="48")
        found[found.index("--workers") + 1] = str(workers)
        return found

    reference = tmp_path / "reference"
    assert cli_main(args(reference)) == 0
    out = tmp_path / "killed"
    rng = random.Random(3)
    kills = 0
    for attempt in range(4):
        wanted = min(6, len(list(out.rglob("*.npz"))) + rng.randint(0, 2))
        kills += _kill_when(args(out, 1 + attempt % 2),
                            lambda: len(list(out.rglob("*.npz"))) >= wanted, rng.uniform(0, 0.25))
    index = out / "index.csv"
    written = index.stat().st_mtime_ns if index.exists() else None
    kills += _kill_when(args(out), lambda: index.exists() and index.stat().st_mtime_ns != written,
                        0.0)
    assert kills >= 3
    assert cli_main(args(out)) == 0

    def files(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    assert files(out) == files(reference)                  # no temporary file left behind
    assert (out / "index.csv").read_text() == (reference / "index.csv").read_text()
    assert cache.read_cache_meta(out) == cache.read_cache_meta(reference)
    mine, theirs = _entries(out), _entries(reference)
    assert mine.keys() == theirs.keys() and len(mine) == 6
    for entry, (arrays, provenance) in theirs.items():
        assert mine[entry][1] == provenance
        assert mine[entry][0].keys() == arrays.keys()
        for name, value in arrays.items():
            np.testing.assert_array_equal(mine[entry][0][name], value)
