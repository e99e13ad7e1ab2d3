"""The embedded default data set: a synthetic miniature of CASME II, SAMM and SMIC-HS, and a
macro-expression set in CK+'s layout.

``python -m data_prep synth --out DIR`` writes four database roots in the real releases' on-disk
layouts and annotation formats, so that the same readers and the same pipeline run on it:

* ``DIR/CASME2/CASME2_RAW_selected/subXX/EPxx_yyf/imgN.jpg`` and
  ``DIR/CASME2/CASME2-coding-20140508.xlsx``
  (the real columns, blank columns C and G included, subject as text ``"01"``);
* ``DIR/SAMM/SAMM/006/006_1_2/006_NNNNN.jpg`` and ``DIR/SAMM/SAMM_Micro_FACS_Codes_v2.xlsx`` (sheet
  ``MICRO_ONLY``, 13 preamble rows, then the real header);
* ``DIR/SMIC/HS/s1/micro/{negative,positive,surprise}/s1_ne_01/imageNNNNNN.bmp`` (labels from the
  folders, no annotation file) plus ``non_micro`` folders that readers must skip;
* ``DIR/CK+/cohn-kanade-images/S501/001/S501_001_00000001.png`` and
  ``DIR/CK+/Emotion/S501/001/S501_001_000000NN_emotion.txt`` (CK+'s float codes, NN the last
  frame), with its own ``DIR/CK+/SYNTHETIC.md``: the macro-expressions that Micro-Attention and
  MTMNet pre-train on (``python -m data_prep macro --ckplus DIR/CK+``).

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

The macro set (:func:`~data_prep.synthetic.plan.macro_plan`) has 20 other subjects, S501..S520
(CK+'s own are S005..S999 at most; the micro subjects are not reused). Each poses happiness,
surprise, anger, disgust and sadness, fear (p = 0.6) and contempt (p = 0.45), and a quarter of
them one more sequence left unlabelled (an empty ``Emotion/`` folder, as CK+ has): about 120
labelled sequences of 8-12 gray 192 x 144 frames, each rising from a neutral first frame to its
peak at the last frame, as CK+'s do. The motion is the micro clips' class motion at 5-10 times its
amplitude (3.5-6.5 px at the peak): happiness lip_raise, surprise brow_raise_open, and the negative
emotions only the micro negative motions (anger brow_lower, disgust nose_wrinkle, sadness
lip_depress, fear brow_lower + lip_depress, contempt lip_depress on one side), so the CDE classes
move as in the micro clips and the objective classes III-V differ from each other. A partial set
(``subjects``) writes the macro subjects it names (``"ckplus/S501"``), or the first three when it
names none. Adding the macro set left every micro file as it was: a complete folder written before
it existed gets the ``CK+`` folder on the next run.
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
    MACRO_PARTIAL_SUBJECTS,
    MACRO_ROOT,
    MACRO_SUBJECTS,
    MACRO_VERSION,
    Clip,
    MacroSequence,
    _rng,
)
from data_prep.synthetic.motion import (
    displacement,
    motion_bumps,
    synthesize_clip,
    synthesize_macro_sequence,
)
from data_prep.synthetic.plan import macro_plan, plan
from data_prep.synthetic.writers import (
    _macro_marker_text,
    _marker_text,
    _write_bytes,
    write_casme2_coding,
    write_clip_frames,
    write_macro_sequence,
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
    "macro_plan",
    "macro_root",
    "macro_sequences",
    "MacroSequence",
    "synthesize_macro_sequence",
    "write_macro_sequence",
    "MACRO_ROOT",
    "MACRO_SUBJECTS",
    "MACRO_VERSION",
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


def macro_root(out) -> Path:
    """``out/CK+``: the synthetic macro set's root, for ``python -m data_prep macro --ckplus``."""
    return Path(out) / MACRO_ROOT


def macro_sequences(seed: int = 0, subjects=None) -> list:
    """The macro sequences a (partial) set writes: all of them, those of the ``ckplus/S5xx``
    subjects named, or the first :data:`MACRO_PARTIAL_SUBJECTS` subjects when ``subjects`` names
    none."""
    sequences = macro_plan(seed)
    if subjects is None:
        return sequences
    named = {s.split("/", 1)[1] for s in subjects if s.startswith("ckplus/")}
    wanted = named or set(MACRO_SUBJECTS[:MACRO_PARTIAL_SUBJECTS])
    return [s for s in sequences if s.subject in wanted]


def _write_macro(out: Path, seed: int, progress: bool, subjects) -> None:
    """Write the CK+ macro set into ``out/CK+``; its own marker last, for a complete set."""
    from data_prep.progress import Progress

    sequences = macro_sequences(seed, subjects)
    root = macro_root(out)
    root.mkdir(parents=True, exist_ok=True)
    apps: dict = {}
    with Progress(len(sequences), desc="synthetic macro sequences", unit="sequence",
                  enabled=progress, every=max(1, len(sequences) // 5)) as bar:
        for sequence in sequences:
            write_macro_sequence(sequence, out, seed, apps)
            bar.update(1)
    if subjects is None:
        _write_bytes(root / MARKER, _macro_marker_text(seed, sequences).encode("utf-8"))


def write_synthetic(out, seed: int = 0, progress: bool = True, subjects=None) -> dict:
    """Write the synthetic CASME II / SAMM / SMIC-HS miniature and the CK+ macro set into ``out``.

    Writes the three micro roots, the ``CK+`` macro root with its own ``CK+/SYNTHETIC.md``, then
    ``out/SYNTHETIC.md`` (what it is, the seed, the version) last. A rerun on a complete folder of
    the same seed and version does nothing (a complete folder written before the macro set existed
    gets it added); a folder left half-written by a killed run is rewritten; a folder holding
    another seed, or database roots this function did not write, is refused.

    Args:
        out: the folder to write into (created if missing).
        seed: the random seed; the same seed gives byte-identical files.
        progress: show progress over the clips (a bar on a terminal, lines in a log).
        subjects: write only these subjects, given as ``"casme2/01"``, ``"samm/006"``, ``"smic/1"``,
            ``"ckplus/S501"`` (for quick tests; with no ``ckplus/`` subject named, the first three
            macro subjects); such a partial set gets no SYNTHETIC.md and is not the CDE set.

    Returns:
        ``{"casme2": out/"CASME2", "samm": out/"SAMM", "smic": out/"SMIC"}``, the roots to hand to
        the readers and to ``python -m data_prep flow``; the macro root is :func:`macro_root`.

    Raises:
        DataPrepError: ``out`` holds another seed's set, or database folders of unknown origin.
    """
    from data_prep.progress import Progress

    out = Path(out)
    roots = {db: out / name for db, name in ROOTS.items()}
    marker = out / MARKER
    if marker.exists():
        found = _read_marker(marker)
        if found == (VERSION, int(seed)) and subjects is None:
            if _read_marker_if_any(macro_root(out) / MARKER) != (MACRO_VERSION, int(seed)):
                _write_macro(out, int(seed), progress, None)
            return roots
        raise DataPrepError(
            f"{marker}: this folder already holds a synthetic set "
            f"({'version %s, seed %s' % found if found else 'unreadable marker'}); "
            f"choose another --out or delete the folder to write seed {seed}"
        )
    if not (out / _PARTIAL).exists():
        existing = [str(root) for root in [*roots.values(), macro_root(out)] if root.exists()]
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
    with Progress(len(clips), desc="synthetic clips", unit="clip", enabled=progress,
                  every=max(1, len(clips) // 5)) as bar:
        for clip in clips:
            write_clip_frames(clip, out, seed, apps)
            bar.update(1)
    _write_macro(out, seed, progress, subjects)
    if subjects is None:
        _write_bytes(marker, _marker_text(seed, clips).encode("utf-8"))
        (out / _PARTIAL).unlink()
    return roots


def _read_marker_if_any(path: Path):
    return _read_marker(path) if path.is_file() else None


def main_synth(args) -> int:
    """``python -m data_prep synth --out DIR [--seed N] [--subjects DB/ID ...]``: write the sets."""
    subjects = getattr(args, "subjects", None)
    roots = write_synthetic(args.out, seed=args.seed, progress=True, subjects=subjects)
    print(f"synthetic CASME II / SAMM / SMIC and CK+ written to {args.out} (seed {args.seed}); "
          "use:")
    print(
        "  python -m data_prep flow --protocol cde "
        + " ".join(f"--{db} {root}" for db, root in roots.items())
        + " --out CACHE"
    )
    print(f"  python -m data_prep macro --protocol cde --ckplus {macro_root(args.out)} --out MACRO")
    return 0
