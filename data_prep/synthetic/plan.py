"""The plan: which clips (and macro sequences), with which names, labels and frame numbers."""

from __future__ import annotations

import numpy as np

from data_prep.synthetic.layout import (
    CASME2_EXTRA,
    CASME2_NEGATIVE,
    CDE_COUNTS,
    CLASSES,
    MACRO_CORE,
    MACRO_FRAMES,
    MACRO_MOTIONS,
    MACRO_OPTIONAL,
    MACRO_SUBJECTS,
    MOTIONS,
    SAMM_EXTRA,
    SAMM_NEGATIVE,
    SMIC_NON_MICRO,
    Clip,
    MacroSequence,
    _rng,
)


def _weighted(rng: np.random.Generator, table) -> str:
    names, weights = zip(*table)
    return names[int(rng.choice(len(names), p=np.asarray(weights) / sum(weights)))]


def _motion(group: str, rng: np.random.Generator) -> str:
    options = MOTIONS[group]
    return options[int(rng.integers(len(options)))]


def plan(seed: int = 0) -> list:
    """Every clip of the synthetic set, in writing order (CASME II, SAMM, SMIC; subject; name).

    Deterministic in ``seed``; the CDE clips match :data:`CDE_COUNTS` exactly.
    """
    clips = []
    # CASME II
    extras = {}
    for subject, emotion, kind in CASME2_EXTRA:
        extras.setdefault(subject, []).append((emotion, kind))
    for subject in sorted(set(CDE_COUNTS["casme2"]) | set(extras)):
        rng = _rng(seed, "casme2", subject, "plan")
        rows = [
            (g, None, "cde")
            for g, c in zip(CLASSES, CDE_COUNTS["casme2"].get(subject, (0, 0, 0)))
            for _ in range(c)
        ]
        rows += [
            ("negative" if e == "disgust" else "other", e, kind)
            for e, kind in extras.get(subject, [])
        ]
        used = {"EP12_01f", "EP09_05f"}
        for group, emotion, kind in rows:
            if kind == "apex_slash":
                name = "EP12_01f"
            elif kind == "onset_is_apex":
                name = "EP09_05f"
            else:
                while True:
                    name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 8)):02d}"
                    name += "f" if rng.random() < 0.7 else ""
                    if name.rstrip("f") not in {u.rstrip("f") for u in used}:
                        break
                used.add(name)
            if emotion is None:
                emotion = {"positive": "happiness", "surprise": "surprise"}.get(group) or _weighted(
                    rng, CASME2_NEGATIVE
                )
            n = int(rng.integers(11, 20))
            peak = int(rng.integers(3, n - 3))
            onset = int(rng.integers(10, 300))
            coded_apex = "/" if kind == "apex_slash" else onset + peak
            coded_onset = onset + peak if kind == "onset_is_apex" else onset
            clips.append(
                Clip(
                    "casme2",
                    subject,
                    name,
                    emotion,
                    group,
                    _motion(group, rng),
                    onset,
                    n,
                    peak,
                    coded_onset,
                    coded_apex,
                    f"CASME2/CASME2_RAW_selected/sub{subject}/{name}",
                    kind == "cde",
                )
            )
    # SAMM
    extras = {}
    for subject, emotion in SAMM_EXTRA:
        extras.setdefault(subject, []).append(emotion)
    for subject in sorted(set(CDE_COUNTS["samm"]) | set(extras)):
        rng = _rng(seed, "samm", subject, "plan")
        rows = [
            (g, True)
            for g, c in zip(CLASSES, CDE_COUNTS["samm"].get(subject, (0, 0, 0)))
            for _ in range(c)
        ]
        rows += [("other", False) for _ in extras.get(subject, [])]
        names = set()
        while len(names) < len(rows):
            names.add((int(rng.integers(1, 8)), int(rng.integers(1, 10))))
        for (group, cde), (induce, k) in zip(rows, sorted(names)):
            emotion = {"positive": "Happiness", "surprise": "Surprise", "other": "Other"}.get(
                group
            ) or _weighted(rng, SAMM_NEGATIVE)
            n = int(rng.integers(11, 20))
            peak = int(rng.integers(3, n - 3))
            onset = int(rng.integers(500, 9000))
            name = f"{subject}_{induce}_{k}"
            clips.append(
                Clip(
                    "samm",
                    subject,
                    name,
                    emotion,
                    group,
                    _motion(group, rng),
                    onset,
                    n,
                    peak,
                    onset,
                    onset + peak,
                    f"SAMM/SAMM/{subject}/{name}",
                    cde,
                )
            )
    # SMIC-HS: labels from folders; apex (never coded) at the middle frame; some non_micro clips
    short = {"negative": "ne", "positive": "po", "surprise": "sur"}
    for subject in sorted(CDE_COUNTS["smic"], key=int):
        rng = _rng(seed, "smic", subject, "plan")
        rows = [
            (g, True, i + 1) for g, c in zip(CLASSES, CDE_COUNTS["smic"][subject]) for i in range(c)
        ]
        rows += [
            (g, False, i + 1)
            for i, (s, g) in enumerate(r for r in SMIC_NON_MICRO if r[0] == subject)
        ]
        for group, micro, number in rows:
            n = int(rng.choice([11, 13, 15, 17, 19]))
            onset = int(rng.integers(1000, 900000))
            name = f"s{subject}_{short[group]}_{number:02d}"
            folder = "micro" if micro else "non_micro"
            clips.append(
                Clip(
                    "smic",
                    subject,
                    name,
                    group,
                    group if micro else "other",
                    _motion(group if micro else "other", rng),
                    onset,
                    n,
                    (n - 1) // 2,
                    onset,
                    onset + (n - 1) // 2,
                    f"SMIC/HS/s{subject}/{folder}/{group}/{name}",
                    micro,
                )
            )
    order = {"casme2": 0, "samm": 1, "smic": 2}
    return sorted(clips, key=lambda c: (order[c.database], int(c.subject), c.rel_dir))


def macro_plan(seed: int = 0) -> list:
    """Every sequence of the synthetic CK+ macro set, by subject and sequence number.

    Each subject poses the five objective-class emotions, fear and contempt now and then, and
    sometimes one more sequence left unlabelled; sequence numbers are sparse, as in CK+.
    Deterministic in ``seed``, and independent of the micro clips' draws.
    """
    sequences = []
    emotions_all = tuple(MACRO_MOTIONS)
    for subject in MACRO_SUBJECTS:
        rng = _rng(seed, "ckplus", subject, "plan")
        labels = list(MACRO_CORE) + [e for e, p in MACRO_OPTIONAL if rng.random() < p]
        shown = list(labels)
        if rng.random() < 0.25:
            labels.append(None)
            shown.append(emotions_all[int(rng.integers(len(emotions_all)))])
        order = rng.permutation(len(labels))
        numbers = sorted(int(n) for n in rng.choice(np.arange(1, 16), len(labels), replace=False))
        for number, k in zip(numbers, order):
            n_frames = int(rng.integers(MACRO_FRAMES[0], MACRO_FRAMES[1] + 1))
            sequences.append(MacroSequence(subject, number, labels[k], shown[k], n_frames))
    return sequences
