"""Bad frame files and coding sheets, through the real commands (issue 11): a truncated frame in
every stage that decodes frames, a damaged .xlsx sheet, a gap between onset and apex, and two files
of one frame number. Inputs are the synthetic ``casme2/01`` and ``smic/1`` subjects (and CK+),
damaged in tmp_path."""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_prep.__main__ import main as cli_main
from data_prep.images import image_problem

CLIP = "casme2/sub01/EP03_04"          # onset 116, apex 122, offset 130 in the synthetic coding
APEX_FRAME = Path("CASME2_RAW_selected/sub01/EP03_04/img122.jpg")
FAST = ["--workers", "1", "--face-detector", "none"]
STAGES = {  # command line after the database root; each decodes the apex frame of CLIP
    "flow": ["flow", "--protocol", "casme2_5class", "--face-size", "32", "--flow-size", "8"],
    "strcn": ["strcn", "--protocol", "casme2_5class", "--augment", "0", "--length", "4",
              "--appearance-size", "16x12", "--geometry-size", "16x12",
              "--tvl1", '{"warps": 1, "nscales": 1}'],
    "frames": ["frames", "--protocol", "casme2_5class", "--face-size", "16"],
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    assert cli_main(["synth", "--out", str(root), "--subjects", "casme2/01", "smic/1"]) == 0
    return root


@pytest.fixture
def data(synthetic, tmp_path) -> Path:
    """A copy of the synthetic CASME II and SMIC sets that a test may damage."""
    for name in ("CASME2", "SMIC"):
        shutil.copytree(synthetic / name, tmp_path / name)
    return tmp_path


def _run(capsys, argv) -> tuple[int, str]:
    capsys.readouterr()
    status = cli_main(argv)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_image_check_accepts_whole_files_and_refuses_cut_ones(synthetic):
    jpeg = (synthetic / "CASME2" / APEX_FRAME).read_bytes()
    png = next((synthetic / "CK+").rglob("*.png")).read_bytes()
    for whole in (jpeg, jpeg + b"\x00" * 64, png, png + b"trailer"):
        assert image_problem(whole) is None
    for cut in (jpeg[:len(jpeg) // 2], jpeg[:-2], png[:len(png) // 2], png[:-12]):
        assert "cut short" in image_problem(cut)
    assert image_problem(b"") == "the file is empty (0 bytes)"


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("stage", [*STAGES, "macro"])
def test_truncated_frame_is_dropped_or_stops_in_every_stage(synthetic, data, capsys, stage,
                                                            strict):
    out = data / "cache"
    if stage == "macro":
        shutil.copytree(synthetic / "CK+", data / "CK+")
        bad = sorted((data / "CK+" / "cohn-kanade-images" / "S501" / "002").glob("*.png"))[-1]
        sample = "ckplus/S501/S501_002"
        argv = ["macro", "--protocol", "cde", "--ckplus", str(data / "CK+"), "--face-size", "16"]
    else:
        bad, sample = data / "CASME2" / APEX_FRAME, CLIP
        argv = [*STAGES[stage], "--casme2", str(data / "CASME2")]
    _cut_in_half(bad)
    status, text = _run(capsys, [*argv, "--out", str(out), *FAST, *(["--strict"] * strict)])
    assert "Traceback" not in text
    if strict:
        assert status == 2
        error = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and error[0].startswith(f"error: {sample}")
        assert "truncated image: the" in error[0] and str(bad) in error[0]
    else:
        assert status == 0
        assert f"- {sample}" in text and "truncated image" in text and str(bad) in text
        assert "1 dropped" in text or "1 sample(s) dropped" in text


def _corrupt_member(workbook: Path, member: str) -> None:
    """Overwrite bytes inside ``member``'s deflate data; the zip directory stays intact."""
    data = bytearray(workbook.read_bytes())
    info = zipfile.ZipFile(workbook).getinfo(member)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:
                                                          info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length + info.compress_size // 3
    data[start:start + 16] = np.random.default_rng(0).integers(0, 256, 16, np.uint8).tobytes()
    workbook.write_bytes(bytes(data))


def test_damaged_xlsx_sheet_is_one_line_naming_the_file(data, capsys):
    coding = data / "CASME2" / "CASME2-coding-20140508.xlsx"
    _corrupt_member(coding, "xl/worksheets/sheet1.xml")
    assert zipfile.ZipFile(coding).namelist()               # the zip itself still opens
    status, text = _run(capsys, ["index", "--protocol", "casme2_5class", "--casme2",
                                 str(data / "CASME2"), "--out", str(data / "index.csv")])
    assert status == 2 and "Traceback" not in text
    assert text.strip().splitlines() == [
        f"error: {coding}: the workbook is damaged: its part xl/worksheets/sheet1.xml cannot be "
        "decompressed (zlib.error: Error -3 while decompressing data: invalid distance too far "
        "back); save it again from a spreadsheet program, or give its .csv conversion"]


@pytest.mark.parametrize("database", ["casme2", "smic"])
def test_frame_gap_between_onset_and_apex_warns_and_keeps_the_sample(data, capsys, database):
    if database == "casme2":   # annotated apex 122: frames 118 and 119 go
        folder, sample = data / "CASME2" / APEX_FRAME.parent, CLIP
        gone, expected = (118, 119), "no frame 118..119 (2 missing) between onset 116 and apex 122"
        argv = ["--protocol", "casme2_5class", "--casme2", str(data / "CASME2")]
    else:                      # SMIC: no apex, estimated over the whole clip
        folder = next((data / "SMIC").rglob("s1_ne_01"))
        sample = "smic/s01/s01_ne_01"
        numbers = sorted(int(p.stem[-6:]) for p in folder.glob("image*.bmp"))
        gone = (numbers[3],)
        expected = (f"no frame {numbers[3]} (1 missing) between onset {numbers[0]} and offset "
                    f"{numbers[-1]} (the apex is estimated over the gap)")
        argv = ["--protocol", "smic_3class", "--smic", str(data / "SMIC")]
    for path in folder.iterdir():
        if int("".join(filter(str.isdigit, path.stem))) in gone:
            path.unlink()
    status, text = _run(capsys, ["flow", *STAGES["flow"][3:], *argv, "--out",
                                 str(data / "cache"), *FAST, "--strict"])
    assert status == 0, text
    assert f"warning: {sample}: frame gap: {expected} ({folder})" in text
    assert "0 dropped" in text


def test_two_files_of_one_frame_number_are_an_ambiguity_error(data, capsys):
    folder = data / "CASME2" / APEX_FRAME.parent
    shutil.copy(folder / "img124.jpg", folder / "img124 .jpg")
    argv = [*STAGES["flow"], "--casme2", str(data / "CASME2"), "--out", str(data / "cache"), *FAST]
    message = (f"{CLIP}: ambiguous frame files: 'img124 .jpg' and 'img124.jpg' are both frame "
               f"124; remove or rename the stray one ({folder})")
    status, text = _run(capsys, argv)
    assert status == 0 and f"- {message}" in text and "1 dropped" in text
    status, text = _run(capsys, [*argv, "--strict"])
    assert status == 2 and f"error: {message}" in text.splitlines()
