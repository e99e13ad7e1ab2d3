"""The embedded default data set: a synthetic miniature of CASME II, SAMM and SMIC-HS.

``python -m data_prep synth --out DIR`` writes three database roots in the real releases' on-disk
layouts and annotation formats, so that the same readers and the same pipeline run on it:

* ``DIR/CASME2/CASME2_RAW_selected/subXX/EPxx_yyf/imgN.jpg`` and
  ``DIR/CASME2/CASME2-coding-20140508.xlsx``
  (the real columns, blank columns C and G included, subject as text ``"01"``);
* ``DIR/SAMM/SAMM/006/006_1_2/006_NNNNN.jpg`` and ``DIR/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx`` (sheet
  ``MICRO_ONLY``, 13 preamble rows, then the real header);
* ``DIR/SMIC/HS/s1/micro/{negative,positive,surprise}/s1_ne_01/imageNNNNNN.bmp`` (labels from the
  folders, no annotation file) plus ``non_micro`` folders that readers must skip.

The MEGC2019 composite (CDE) index on it is exactly the real one's composition: 442 samples of 68
subjects, CASME II 145 (88/32/25), SAMM 133 (92/26/15), SMIC 164 (70/51/43), with the real
per-subject, per-class counts. The codings also hold rows the CDE protocol must leave out (CASME II
"others", "fear", "sadness", one apex ``/`` row, one onset == apex row; SAMM "Other" rows and a
subject with "Other" clips only), each with frames.

Faces are drawn procedurally with per-subject appearance and are found by OpenCV's bundled Haar
frontal-face cascade. Each clip carries a subtle (about 0.5-2 px), brief, localised, class-dependent
motion applied as a smooth displacement field (``cv2.remap``) that peaks at the apex: positive =
lip-corner raise; surprise = brow raise with the mouth opening; negative = brow lowering, nose
wrinkling or lip-corner depression. Global head drift, nuisance motions (blinks, small unrelated
twitches), illumination changes and sensor noise keep a linear classifier on onset->apex flow well
above chance and well below perfect. Everything derives from one seed: the same seed gives
byte-identical files.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.errors import DataPrepError
from data_prep.synthetic.faces import Appearance, draw_appearance, render_face
from data_prep.synthetic.layout import (
    CDE_COUNTS,
    CLASSES,
    FRAME_SIZE,
    MARKER,
    SMIC_NON_MICRO,
    VERSION,
    Clip,
    _rng,
)
from data_prep.synthetic.motion import displacement, motion_bumps, synthesize_clip
from data_prep.synthetic.plan import plan
from data_prep.synthetic.writers import (
    _marker_text,
    _write_bytes,
    write_casme2_coding,
    write_clip_frames,
    write_samm_coding,
)

__all__ = [
    "write_synthetic",
    "main_synth",
    "plan",
    "Clip",
    "Appearance",
    "draw_appearance",
    "render_face",
    "motion_bumps",
    "displacement",
    "synthesize_clip",
    "CDE_COUNTS",
    "CLASSES",
    "FRAME_SIZE",
    "MARKER",
    "VERSION",
    "SMIC_NON_MICRO",
    "write_casme2_coding",
    "write_samm_coding",
    "write_clip_frames",
]


_PARTIAL = ".synthetic-partial"
ROOTS = {"casme2": "CASME2", "samm": "SAMM", "smic": "SMIC"}


def _read_marker(path: Path):
    """``(version, seed)`` from a SYNTHETIC.md, or ``None`` where it does not parse."""
    text = path.read_text(encoding="utf-8", errors="replace")
    version = re.search(r"generator version: (\S+)", text)
    seed = re.search(r"seed: (-?\d+)", text)
    if not (version and seed):
        return None
    return version.group(1), int(seed.group(1))


def write_synthetic(out, seed: int = 0, progress: bool = True, subjects=None) -> dict:
    """Write the synthetic CASME II / SAMM / SMIC-HS miniature into ``out``.

    Writes the three roots, then ``out/SYNTHETIC.md`` (what it is, the seed, the version) last. A
    rerun on a complete folder of the same seed and version does nothing; a folder left half-written
    by a killed run is rewritten; a folder holding another seed, or database roots this function did
    not write, is refused.

    Args:
        out: the folder to write into (created if missing).
        seed: the random seed; the same seed gives byte-identical files.
        progress: show a tqdm progress bar over the clips.
        subjects: write only these subjects, given as ``"casme2/01"``, ``"samm/006"``, ``"smic/1"``
            (for quick tests); such a partial set gets no SYNTHETIC.md and is not the CDE set.

    Returns:
        ``{"casme2": out/"CASME2", "samm": out/"SAMM", "smic": out/"SMIC"}``, the roots to hand to
        the readers and to ``python -m data_prep flow``.

    Raises:
        DataPrepError: ``out`` holds another seed's set, or database folders of unknown origin.
    """
    from tqdm import tqdm

    out = Path(out)
    roots = {db: out / name for db, name in ROOTS.items()}
    marker = out / MARKER
    if marker.exists():
        found = _read_marker(marker)
        if found == (VERSION, int(seed)) and subjects is None:
            return roots
        raise DataPrepError(
            f"{marker}: this folder already holds a synthetic set "
            f"({'version %s, seed %s' % found if found else 'unreadable marker'}); "
            f"choose another --out or delete the folder to write seed {seed}"
        )
    if not (out / _PARTIAL).exists():
        existing = [str(root) for root in roots.values() if root.exists()]
        if existing:
            raise DataPrepError(
                f"{existing[0]}: exists and was not written by `python -m data_prep synth`; "
                "choose an empty --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / _PARTIAL).write_text(f"seed: {seed}\n", encoding="utf-8")
    clips = plan(seed)
    if subjects is not None:
        wanted = set(subjects)
        clips = [c for c in clips if f"{c.database}/{c.subject}" in wanted]
    for db, root in roots.items():
        root.mkdir(parents=True, exist_ok=True)
    (roots["smic"] / "HS").mkdir(exist_ok=True)
    write_casme2_coding(
        [c for c in clips if c.database == "casme2"],
        roots["casme2"] / "CASME2-coding-20140508.xlsx",
    )
    write_samm_coding(
        [c for c in clips if c.database == "samm"], roots["samm"] / "SAMM_Micro_FACS_Codes_v2.xlsx"
    )
    apps: dict = {}
    for clip in tqdm(clips, desc="synthetic clips", unit="clip", disable=not progress):
        write_clip_frames(clip, out, seed, apps)
    if subjects is None:
        _write_bytes(marker, _marker_text(seed, clips).encode("utf-8"))
        (out / _PARTIAL).unlink()
    return roots


def main_synth(args) -> int:
    """``python -m data_prep synth --out DIR [--seed N] [--subjects DB/ID ...]``: write the set."""
    subjects = getattr(args, "subjects", None)
    roots = write_synthetic(args.out, seed=args.seed, progress=True, subjects=subjects)
    print(f"synthetic CASME II / SAMM / SMIC written to {args.out} (seed {args.seed}); use:")
    print(
        "  python -m data_prep flow --protocol cde "
        + " ".join(f"--{db} {root}" for db, root in roots.items())
        + " --out CACHE"
    )
    return 0
