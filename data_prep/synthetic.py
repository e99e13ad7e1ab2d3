"""The embedded default data set: a synthetic miniature of CASME II, SAMM and SMIC-HS.

``python -m data_prep synth --out DIR`` writes three database roots in the real releases' on-disk
layouts and annotation formats, so that the same readers and the same pipeline run on it:

* ``DIR/CASME2/CASME2_RAW_selected/subXX/EPxx_yyf/imgN.jpg`` and ``DIR/CASME2/CASME2-coding-20140508.xlsx``
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

import dataclasses
import io
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np

from data_prep.errors import DataPrepError

VERSION = "1"
MARKER = "SYNTHETIC.md"
CLASSES = ("negative", "positive", "surprise")

# MEGC2019 CDE composition: (negative, positive, surprise) per subject, derived once from
# combined_3_class_gt.csv (davidnvq/me_recognition); the generator never reads that file.
CDE_COUNTS = {
    "casme2": {
        "01": (2, 1, 0), "02": (5, 1, 3), "03": (4, 0, 1), "04": (2, 0, 0), "05": (0, 1, 5),
        "06": (1, 1, 2), "07": (5, 0, 0), "08": (1, 0, 0), "09": (5, 5, 0), "11": (4, 0, 0),
        "12": (5, 2, 4), "13": (0, 2, 0), "14": (0, 3, 0), "15": (1, 1, 1), "16": (1, 2, 0),
        "17": (23, 7, 1), "19": (3, 3, 5), "20": (2, 0, 0), "21": (1, 0, 0), "22": (2, 0, 0),
        "23": (7, 1, 0), "24": (2, 0, 1), "25": (3, 0, 2), "26": (9, 2, 0),
    },
    "samm": {
        "006": (9, 0, 2), "007": (1, 5, 2), "009": (3, 0, 1), "010": (4, 0, 0), "011": (13, 7, 0),
        "012": (2, 0, 1), "013": (6, 0, 0), "014": (2, 7, 1), "015": (2, 0, 1), "016": (2, 1, 2),
        "017": (3, 0, 1), "018": (2, 0, 1), "019": (0, 1, 0), "020": (2, 2, 0), "021": (2, 0, 0),
        "022": (3, 2, 0), "023": (1, 0, 0), "024": (1, 0, 0), "026": (9, 0, 0), "028": (1, 0, 2),
        "030": (3, 0, 0), "031": (1, 0, 0), "032": (4, 0, 0), "033": (4, 1, 0), "034": (3, 0, 0),
        "035": (7, 0, 1), "036": (1, 0, 0), "037": (1, 0, 0),
    },
    "smic": {
        "1": (3, 2, 1), "2": (0, 1, 5), "3": (22, 11, 6), "4": (10, 4, 5), "5": (1, 0, 1),
        "6": (2, 0, 2), "8": (9, 4, 0), "9": (0, 1, 3), "11": (3, 3, 1), "12": (0, 8, 1),
        "13": (0, 10, 0), "14": (3, 2, 5), "15": (1, 1, 2), "18": (2, 0, 5), "19": (0, 1, 1),
        "20": (14, 3, 5),
    },
}

# Rows a real coding has and the CDE protocol must leave out: (subject, emotion, kind).
# kind "plain" is an excluded emotion; "apex_slash" writes "/" as the apex (as sub04/EP12_01f);
# "onset_is_apex" writes apex == onset (as sub05/EP09_05f).
CASME2_EXTRA = (
    ("04", "disgust", "apex_slash"), ("05", "disgust", "onset_is_apex"),
    ("01", "others", "plain"), ("03", "others", "plain"), ("10", "others", "plain"),
    ("10", "others", "plain"), ("10", "fear", "plain"), ("17", "others", "plain"),
    ("18", "others", "plain"), ("24", "sadness", "plain"), ("26", "others", "plain"),
)
SAMM_EXTRA = (("025", "Other"), ("025", "Other"), ("006", "Other"), ("011", "Other"),
              ("020", "Other"))
SMIC_NON_MICRO = (("3", "negative"), ("3", "positive"), ("20", "surprise"))

CASME2_NEGATIVE = (("disgust", 0.7), ("repression", 0.3))
SAMM_NEGATIVE = (("Anger", 0.62), ("Contempt", 0.13), ("Disgust", 0.1), ("Fear", 0.09),
                 ("Sadness", 0.06))
SAMM_OBJECTIVE = {"Happiness": 1, "Surprise": 2, "Anger": 3, "Disgust": 4, "Sadness": 5,
                  "Fear": 6, "Contempt": 7, "Other": 7}
# Which motion each emotion shows; negative emotions pick among their motions at random.
MOTIONS = {
    "positive": ("lip_raise",), "surprise": ("brow_raise_open",),
    "negative": ("brow_lower", "nose_wrinkle", "lip_depress"), "other": ("other",),
}
AU_CODES = {"lip_raise": "12", "brow_raise_open": "1+2+25", "brow_lower": "4",
            "nose_wrinkle": "9", "lip_depress": "15", "other": "14"}
FRAME_SIZE = {"casme2": (160, 120), "samm": (192, 144), "smic": (160, 120)}  # (width, height)


@dataclasses.dataclass(frozen=True)
class Clip:
    """One synthetic clip: where it goes, how its coding row reads and what motion it shows.

    Attributes:
        database: ``"casme2"``, ``"samm"`` or ``"smic"``.
        subject: as the release writes it: ``"01"``, ``"006"``, ``"1"``.
        name: the clip folder: ``"EP02_01f"``, ``"006_1_2"``, ``"s1_ne_01"``.
        emotion: as the coding (or the SMIC folder) writes it.
        group: ``"negative"``, ``"positive"``, ``"surprise"``, or ``"other"`` for rows CDE excludes.
        motion: the facial action drawn (see :func:`motion_bumps`).
        onset: the first frame number; the clip has frames ``onset .. onset + n_frames - 1``.
        n_frames: number of frames.
        peak: index (from the onset) of the frame where the action peaks.
        coded_onset, coded_apex: what the coding writes (``"/"`` for a missing apex).
        rel_dir: the frame folder relative to ``out``.
        in_cde: whether the MEGC2019 CDE index must hold this clip.
    """

    database: str
    subject: str
    name: str
    emotion: str
    group: str
    motion: str
    onset: int
    n_frames: int
    peak: int
    coded_onset: int
    coded_apex: object
    rel_dir: str
    in_cde: bool

    @property
    def offset(self) -> int:
        return self.onset + self.n_frames - 1

    def frame_name(self, number: int) -> str:
        """The file name of frame ``number`` in the release's naming."""
        if self.database == "casme2":
            return f"img{number}.jpg"
        if self.database == "samm":
            return f"{self.subject}_{number:05d}.jpg"
        return f"image{number:06d}.bmp"


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one (seed, keys...) path, independent of the order things are drawn."""
    words = [seed]
    for key in keys:
        words.extend(key.encode() if isinstance(key, str) else [int(key)])
    return np.random.default_rng(words)


# --------------------------------------------------------------------------------------------------
# Faces


@dataclasses.dataclass(frozen=True)
class Appearance:
    """One subject's face: shape, size, tone and feature placement, in fractions of the frame."""

    cx: float               # face centre, fraction of the width
    cy: float               # face centre, fraction of the height
    half_width: float       # ellipse half-width, fraction of the height
    aspect: float           # half-height / half-width
    skin: float             # skin luminance, 0..1
    background: float       # background luminance
    hair: float             # hair luminance
    hair_cover: float       # how far down the forehead the hair comes, fraction of half-height
    tint: tuple             # BGR gains of the (faint) skin colour
    eye_y: float            # eye line, fraction of the half-height above the centre
    eye_dx: float           # eye distance from the midline, fraction of the half-width
    eye_size: float         # eye half-width, fraction of the half-width
    brow_gap: float         # brow above the eye, fraction of the half-height
    brow_thick: float       # brow thickness, fraction of the half-width
    nose_y: float           # nose tip below the centre, fraction of the half-height
    mouth_y: float          # mouth line below the centre, fraction of the half-height
    mouth_w: float          # mouth half-width, fraction of the half-width
    lip: float              # lip half-thickness, fraction of the half-height
    texture: float          # skin texture contrast
    light: float            # horizontal light direction, -1..1


def draw_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one subject's appearance."""
    skin = rng.uniform(0.55, 0.78)
    background = rng.uniform(0.12, 0.32) if rng.random() < 0.5 else rng.uniform(0.85, 0.95)
    tone = rng.uniform(0.03, 0.10)
    return Appearance(
        cx=0.5 + rng.uniform(-0.05, 0.05), cy=0.5 + rng.uniform(-0.03, 0.03),
        half_width=rng.uniform(0.27, 0.31), aspect=rng.uniform(1.2, 1.35),
        skin=skin, background=background, hair=rng.uniform(0.04, 0.25),
        hair_cover=rng.uniform(0.45, 0.62), tint=(1.0 - tone, 1.0, 1.0 + tone * 1.3),
        eye_y=rng.uniform(0.05, 0.15), eye_dx=rng.uniform(0.38, 0.46),
        eye_size=rng.uniform(0.17, 0.22), brow_gap=rng.uniform(0.17, 0.24),
        brow_thick=rng.uniform(0.05, 0.09), nose_y=rng.uniform(0.25, 0.34),
        mouth_y=rng.uniform(0.50, 0.60), mouth_w=rng.uniform(0.34, 0.46),
        lip=rng.uniform(0.045, 0.07), texture=rng.uniform(0.02, 0.05),
        light=rng.uniform(-0.5, 0.5),
    )


def render_face(app: Appearance, size: tuple, rng: np.random.Generator, shift=(0.0, 0.0)):
    """Draw a face: a float32 luminance image and its landmarks in pixels.

    Drawn at twice the size and reduced, so that edges are smooth and a sub-pixel warp moves them.
    ``shift`` moves the head by a few pixels (one clip's pose); ``rng`` draws the skin texture.

    Returns:
        ``(image, landmarks)``: ``image`` of shape ``(height, width)`` in 0..1; ``landmarks`` maps
        names (``brow_l``, ``eye_r``, ``mouth_l`` ...) to ``(x, y)`` and holds ``a`` and ``b``, the
        face ellipse's half-axes, all at the output size.
    """
    width, height = size
    k = 2
    W, H = width * k, height * k
    a = app.half_width * H
    b = a * app.aspect
    cx, cy = app.cx * W + shift[0] * k, app.cy * H + shift[1] * k
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)

    img = np.full((H, W), app.background, np.float32)
    img += (yy / H - 0.5) * 0.08 * (1 if app.background < 0.5 else -1)
    # shoulders and neck
    cv2.ellipse(img, (int(cx), int(cy + 1.55 * b)), (int(2.2 * a), int(0.75 * b)), 0, 0, 360,
                float(app.hair * 0.8 + 0.1), -1)
    cv2.rectangle(img, (int(cx - 0.45 * a), int(cy + 0.6 * b)), (int(cx + 0.45 * a), int(cy + 1.2 * b)),
                  float(app.skin * 0.72), -1)
    # hair behind the head
    cv2.ellipse(img, (int(cx), int(cy - 0.12 * b)), (int(1.1 * a), int(1.0 * b)), 0, 0, 360,
                float(app.hair), -1)
    # face: shaded ellipse
    u, v = (xx - cx) / a, (yy - cy) / b
    r2 = u * u + v * v
    inside = r2 < 1.0
    shade = 0.62 + 0.38 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) + 0.10 * app.light * u
    img = np.where(inside, app.skin * shade, img).astype(np.float32)
    # hair over the top of the forehead
    fringe = inside & (v < -app.hair_cover - 0.12 * np.cos(u * 2.0))
    img[fringe] = app.hair

    def P(fx, fy):  # face fractions -> supersampled pixels
        return (cx + fx * a, cy + fy * b)

    def pt(p):
        return (int(round(p[0])), int(round(p[1])))

    dark = app.skin * 0.18
    marks = {}
    for side, sgn in (("l", -1), ("r", 1)):
        ex, ey = P(sgn * app.eye_dx, -app.eye_y)
        ew, eh = app.eye_size * a, app.eye_size * a * 0.5
        # eye socket shadow, sclera, iris, upper lid
        cv2.ellipse(img, pt((ex, ey - eh * 0.3)), (int(ew * 1.5), int(eh * 2.2)), 0, 0, 360,
                    float(app.skin * 0.72), -1)
        cv2.ellipse(img, pt((ex, ey)), (int(ew), int(eh)), 0, 0, 360, float(min(0.92, app.skin + 0.2)), -1)
        cv2.circle(img, pt((ex, ey)), int(eh * 0.95), float(dark), -1)
        cv2.ellipse(img, pt((ex, ey)), (int(ew), int(eh)), 0, 180, 360, float(dark), max(2, int(eh * 0.35)))
        bx, by = ex + sgn * 0.05 * a, ey - app.brow_gap * b
        bw = ew * 1.35
        curve = [(bx - bw, by + 0.25 * eh), (bx - bw * 0.3, by - 0.35 * eh), (bx + bw * 0.4, by - 0.3 * eh),
                 (bx + bw, by + 0.35 * eh)]
        cv2.polylines(img, [np.array([pt(c) for c in curve], np.int32)], False, float(dark * 1.3),
                      max(2, int(app.brow_thick * a)))
        marks[f"eye_{side}"] = (ex, ey)
        marks[f"brow_{side}"] = (bx, by)
        marks[f"brow_in_{side}"] = (bx - sgn * bw * 0.7, by)
        nx, ny = P(sgn * 0.13, app.nose_y)
        cv2.ellipse(img, pt((nx, ny)), (int(0.06 * a), int(0.035 * b)), 0, 0, 360, float(dark * 1.5), -1)
        cv2.line(img, pt(P(sgn * 0.1, -app.eye_y + 0.12)), pt((nx + sgn * 0.05 * a, ny - 0.06 * b)),
                 float(app.skin * 0.72), max(2, int(0.035 * a)))
        marks[f"nose_{side}"] = (nx, ny - 0.05 * b)
        marks[f"mouth_{side}"] = P(sgn * app.mouth_w, app.mouth_y)
    # nose bridge highlight
    cv2.line(img, pt(P(0, -app.eye_y + 0.05)), pt(P(0, app.nose_y - 0.05)), float(min(0.95, app.skin * 1.12)),
             max(2, int(0.08 * a)))
    # lips and mouth line
    mx, my = P(0, app.mouth_y)
    mw, lip = app.mouth_w * a, app.lip * b
    cv2.ellipse(img, pt((mx, my - lip * 0.5)), (int(mw * 0.92), int(lip)), 0, 180, 360, float(app.skin * 0.62), -1)
    cv2.ellipse(img, pt((mx, my + lip * 0.4)), (int(mw * 0.85), int(lip * 1.2)), 0, 0, 180, float(app.skin * 0.68), -1)
    cv2.line(img, pt((mx - mw, my)), pt((mx + mw, my)), float(dark * 1.2), max(2, int(lip * 0.35)))
    marks["lip_up"] = (mx, my - lip)
    marks["lip_low"] = (mx, my + lip * 1.4)
    marks["chin"] = P(0, 0.85)
    marks["nose_tip"] = P(0, app.nose_y)
    # skin texture: smooth multiplicative noise
    noise = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 2.0 * k)
    noise /= noise.std() + 1e-6
    img = img * (1.0 + app.texture * noise * inside)
    img = cv2.resize(cv2.GaussianBlur(img, (0, 0), 0.8), (width, height), interpolation=cv2.INTER_AREA)
    landmarks = {name: (x / k, y / k) for name, (x, y) in marks.items()}
    landmarks["a"], landmarks["b"] = a / k, b / k
    return np.clip(img, 0.0, 1.0), landmarks


# --------------------------------------------------------------------------------------------------
# Motion


def motion_bumps(motion: str, lm: dict, amp: float, rng: np.random.Generator) -> list:
    """The displacement bumps of one facial action: ``[(x, y, dx, dy, sigma), ...]`` in pixels.

    Args:
        motion: ``"lip_raise"``, ``"brow_raise_open"``, ``"brow_lower"``, ``"nose_wrinkle"``,
            ``"lip_depress"`` or ``"other"``.
        lm: the landmarks of :func:`render_face`.
        amp: peak displacement in pixels.
        rng: draws the asymmetry (a unilateral action now and then).
    """
    a = lm["a"]
    # now and then one side moves much less (unilateral / asymmetric action units)
    side_gain = {"l": 1.0, "r": 1.0}
    if rng.random() < 0.25:
        side_gain[rng.choice(["l", "r"])] = rng.uniform(0.2, 0.5)
    bumps = []

    def add(name, dx, dy, sigma, dy_off=0.0, side=None):
        x, y = lm[name]
        g = side_gain[side] if side else 1.0
        bumps.append((x, y + dy_off, dx * amp * g, dy * amp * g, sigma * a))

    for side, sgn in (("l", -1.0), ("r", 1.0)):
        if motion == "lip_raise":
            add(f"mouth_{side}", 0.5 * sgn, -1.0, 0.13, side=side)
            add(f"mouth_{side}", 0.0, -0.4, 0.16, dy_off=-0.25 * lm["b"], side=side)
        elif motion == "brow_raise_open":
            add(f"brow_{side}", 0.0, -1.0, 0.2, side=side)
        elif motion == "brow_lower":
            add(f"brow_in_{side}", -0.5 * sgn, 0.9, 0.16, side=side)
        elif motion == "nose_wrinkle":
            add(f"nose_{side}", 0.1 * sgn, -1.0, 0.11, side=side)
            add(f"brow_in_{side}", 0.0, 0.3, 0.14, side=side)
        elif motion == "lip_depress":
            add(f"mouth_{side}", 0.2 * sgn, 1.0, 0.13, side=side)
        elif motion == "other":
            add(f"mouth_{side}", -0.6 * sgn, 0.0, 0.12, side=side)
        else:
            raise ValueError(f"unknown motion {motion!r}")
    if motion == "brow_raise_open":
        add("lip_low", 0.0, 0.9, 0.13)
        add("chin", 0.0, 0.6, 0.22)
    elif motion == "nose_wrinkle":
        add("lip_up", 0.0, -0.5, 0.12)
    return bumps


def displacement(bumps: list, size: tuple) -> tuple:
    """Sum of Gaussian displacement bumps: ``(dx, dy)`` float32 fields of shape ``(height, width)``."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dx = np.zeros((height, width), np.float32)
    dy = np.zeros((height, width), np.float32)
    for x, y, vx, vy, sigma in bumps:
        g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma * sigma))
        dx += vx * g
        dy += vy * g
    return dx, dy


def _profile(n: int, peak: int, width: float = 0.0) -> np.ndarray:
    """Smooth rise from 0 at frame 0 to 1 at ``peak``, then a fall to about 0.15 at the end.

    With ``width`` > 0, a brief bump of that half-width in frames around ``peak`` instead (a blink).
    """
    t = np.arange(n, dtype=np.float64)
    if width > 0:
        return np.clip(1.0 - np.abs(t - peak) / width, 0.0, 1.0)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / max(peak, 1), 0.0, 1.0))
    fall = 0.15 + 0.85 * (0.5 + 0.5 * np.cos(np.pi * np.clip((t - peak) / max(n - 1 - peak, 1), 0.0, 1.0)))
    return np.where(t <= peak, rise, fall)


def synthesize_clip(app: Appearance, size: tuple, n_frames: int, peak: int, motion: str,
                    rng: np.random.Generator, texture_rng: np.random.Generator) -> list:
    """Frames of one clip: the subject's face, the action peaking at frame ``peak``, and nuisances.

    Args:
        app: the subject's appearance.
        size: ``(width, height)`` of the frames.
        n_frames: number of frames (onset to offset).
        peak: index of the frame where the action peaks (the apex).
        motion: the action (see :func:`motion_bumps`).
        rng: the clip's generator (pose, amplitude, nuisances, noise).
        texture_rng: the subject's generator for the skin texture (same texture in every clip).

    Returns:
        A list of ``n_frames`` BGR uint8 images with a faint skin colour.
    """
    width, height = size
    base, lm = render_face(app, size, texture_rng, shift=tuple(rng.normal(0.0, 2.0, 2)))
    a = lm["a"]
    amp = rng.uniform(0.25, 1.1)
    bumps = motion_bumps(motion, lm, amp, rng)
    # most clips also show a (mostly weaker) action of another kind (real clips mix action units)
    if rng.random() < 0.7:
        others = [m for m in AU_CODES if m != motion]
        bumps += motion_bumps(others[int(rng.integers(len(others)))], lm, amp * rng.uniform(0.4, 1.1), rng)
    # unrelated twitches that follow the same time course, so they are in the onset->apex flow
    for _ in range(rng.poisson(2.5)):
        u, v = rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.8)
        angle, mag = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.4)
        bumps.append((app.cx * width + u * a, app.cy * height + v * lm["b"], mag * np.cos(angle),
                      mag * np.sin(angle), rng.uniform(0.08, 0.18) * a))
    dx, dy = displacement(bumps, size)
    profile = _profile(n_frames, peak)
    blink = None
    if rng.random() < 0.3:  # a blink somewhere in the clip
        lids = [(lm[f"eye_{s}"][0], lm[f"eye_{s}"][1] - 0.1 * a, 0.0, rng.uniform(1.0, 2.0), 0.1 * a)
                for s in ("l", "r")]
        blink = (displacement(lids, size), _profile(n_frames, int(rng.integers(0, n_frames)), 2.5))
    # global head drift (a random walk), illumination drift and flicker, sensor noise
    drift = np.cumsum(rng.normal(0.0, 0.2, (n_frames, 2)), axis=0)
    drift -= drift[0]
    turn = np.cumsum(rng.normal(0.0, 0.003, (n_frames, 2)), axis=0)  # (rotation, scale) per frame
    turn -= turn[0]
    cx, cy = lm["nose_tip"]
    gain = 1.0 + np.linspace(0.0, rng.normal(0.0, 0.015), n_frames) + rng.normal(0.0, 0.004, n_frames)
    gain[0] = 1.0
    noise_sigma = rng.uniform(2.0, 4.0) / 255.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tint = np.asarray(app.tint, np.float32)
    frames = []
    for t in range(n_frames):
        rot, scale = turn[t]
        mx = xx - profile[t] * dx - drift[t, 0] - (-rot * (yy - cy) + scale * (xx - cx))
        my = yy - profile[t] * dy - drift[t, 1] - (rot * (xx - cx) + scale * (yy - cy))
        if blink is not None:
            (bx, by), bp = blink
            mx, my = mx - bp[t] * bx, my - bp[t] * by
        frame = cv2.remap(base, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
        frame = frame * gain[t] + rng.normal(0.0, noise_sigma, frame.shape).astype(np.float32)
        bgr = np.clip(frame[..., None] * tint * 255.0 + 0.5, 0, 255).astype(np.uint8)
        frames.append(bgr)
    return frames


# --------------------------------------------------------------------------------------------------
# The plan: which clips, with which names, labels and frame numbers


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
        rows = [(g, None, "cde") for g, c in zip(CLASSES, CDE_COUNTS["casme2"].get(subject, (0, 0, 0)))
                for _ in range(c)]
        rows += [("negative" if e == "disgust" else "other", e, kind) for e, kind in extras.get(subject, [])]
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
                emotion = {"positive": "happiness", "surprise": "surprise"}.get(group) or \
                    _weighted(rng, CASME2_NEGATIVE)
            n = int(rng.integers(11, 20))
            peak = int(rng.integers(3, n - 3))
            onset = int(rng.integers(10, 300))
            coded_apex = "/" if kind == "apex_slash" else onset + peak
            coded_onset = onset + peak if kind == "onset_is_apex" else onset
            clips.append(Clip("casme2", subject, name, emotion, group, _motion(group, rng), onset, n, peak,
                              coded_onset, coded_apex, f"CASME2/CASME2_RAW_selected/sub{subject}/{name}",
                              kind == "cde"))
    # SAMM
    extras = {}
    for subject, emotion in SAMM_EXTRA:
        extras.setdefault(subject, []).append(emotion)
    for subject in sorted(set(CDE_COUNTS["samm"]) | set(extras)):
        rng = _rng(seed, "samm", subject, "plan")
        rows = [(g, True) for g, c in zip(CLASSES, CDE_COUNTS["samm"].get(subject, (0, 0, 0)))
                for _ in range(c)]
        rows += [("other", False) for _ in extras.get(subject, [])]
        names = set()
        while len(names) < len(rows):
            names.add((int(rng.integers(1, 8)), int(rng.integers(1, 10))))
        for (group, cde), (induce, k) in zip(rows, sorted(names)):
            emotion = {"positive": "Happiness", "surprise": "Surprise", "other": "Other"}.get(group) or \
                _weighted(rng, SAMM_NEGATIVE)
            n = int(rng.integers(11, 20))
            peak = int(rng.integers(3, n - 3))
            onset = int(rng.integers(500, 9000))
            name = f"{subject}_{induce}_{k}"
            clips.append(Clip("samm", subject, name, emotion, group, _motion(group, rng), onset, n, peak,
                              onset, onset + peak, f"SAMM/SAMM/{subject}/{name}", cde))
    # SMIC-HS: labels from folders; apex (never coded) at the middle frame; some non_micro clips
    short = {"negative": "ne", "positive": "po", "surprise": "sur"}
    for subject in sorted(CDE_COUNTS["smic"], key=int):
        rng = _rng(seed, "smic", subject, "plan")
        rows = [(g, True, i + 1) for g, c in zip(CLASSES, CDE_COUNTS["smic"][subject]) for i in range(c)]
        rows += [(g, False, i + 1) for i, (s, g) in enumerate(
            r for r in SMIC_NON_MICRO if r[0] == subject)]
        for group, micro, number in rows:
            n = int(rng.choice([11, 13, 15, 17, 19]))
            onset = int(rng.integers(1000, 900000))
            name = f"s{subject}_{short[group]}_{number:02d}"
            folder = "micro" if micro else "non_micro"
            clips.append(Clip("smic", subject, name, group, group if micro else "other",
                              _motion(group if micro else "other", rng), onset, n, (n - 1) // 2,
                              onset, onset + (n - 1) // 2, f"SMIC/HS/s{subject}/{folder}/{group}/{name}",
                              micro))
    order = {"casme2": 0, "samm": 1, "smic": 2}
    return sorted(clips, key=lambda c: (order[c.database], int(c.subject), c.rel_dir))


# --------------------------------------------------------------------------------------------------
# Writers

CASME2_HEADER = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion")
SAMM_HEADER = ("Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes")
SAMM_PREAMBLE = (  # 13 rows before the header, laid out as the real v2 coding's (text abridged)
    {1: "SAMM Dataset - Master FACS Codes (synthetic miniature written by mer_keras data_prep)",
     5: "(Note to the users: this is a synthetic stand-in; if you use the real SAMM, cite Davison et "
        "al. (2016), SAMM: A spontaneous micro-facial movement dataset.)"},
    {},
    {1: "9/9/17 - New updates with Emotional and Objective Classes. For details please refer to: ",
     9: "arXiv preprint arXiv:1708.07549."},
    {5: "(Note to the users: if you use the emotional or objective classes, cite Davison, Merghani and "
        "Yap (2017), Objective Classes for Micro-Facial Expression Recognition.)"},
    {},
    {1: "Symbol Key:"},
    {1: '"/" = or'},
    {1: '"?" = some AU\'s continue for a while and have unclear offset'},
    {},
    {1: "AU Help:"},
    {1: '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face'},
    {1: '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side'},
    {},
)
_FIXED_TIME = "2000-01-01T00:00:00Z"


def _save_workbook(workbook, path: Path) -> None:
    """Save an openpyxl workbook byte-for-byte reproducibly (fixed times in the zip and the XML)."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(<)",
                              rb"\g<1>" + _FIXED_TIME.encode() + rb"\g<3>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            target.writestr(fixed, data)
    _write_bytes(path, out.getvalue())


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_casme2_coding(clips: list, path: Path) -> None:
    """``CASME2-coding-20140508.xlsx``: Sheet1 with the real columns (blank C and G), Sheet2, Sheet3."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    sheet.append(CASME2_HEADER)
    for clip in clips:
        sheet.append((clip.subject, clip.name, None, clip.coded_onset, clip.coded_apex, clip.offset,
                      None, _au(clip), clip.emotion))
        sheet.cell(sheet.max_row, 1).number_format = "@"
    workbook.create_sheet("Sheet2")
    workbook.create_sheet("Sheet3")
    _save_workbook(workbook, path)


def write_samm_coding(clips: list, path: Path) -> None:
    """``SAMM_Micro_FACS_Codes_v2.xlsx``: sheet MICRO_ONLY, 13 preamble rows, the real header."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "MICRO_ONLY"
    for row, cells in enumerate(SAMM_PREAMBLE, start=1):
        for column, text in cells.items():
            sheet.cell(row, column, text)
    header_row = len(SAMM_PREAMBLE) + 1
    for column, name in enumerate(SAMM_HEADER, start=1):
        sheet.cell(header_row, column, name)
    for row, clip in enumerate(clips, start=header_row + 1):
        induce = int(clip.name.split("_")[1])
        values = (clip.subject, clip.name, induce, clip.coded_onset, clip.coded_apex, clip.offset,
                  f"=SUM(F{row}-D{row})+1", "Micro - 1/2", _au(clip), clip.emotion,
                  SAMM_OBJECTIVE[clip.emotion], None)
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
        sheet.cell(row, 1).number_format = "@"
    _save_workbook(workbook, path)


def _au(clip: Clip):
    """The Action Units cell: the code of the drawn action (an int where it is one number, as real)."""
    code = AU_CODES[clip.motion]
    return int(code) if code.isdigit() else code


def write_clip_frames(clip: Clip, out: Path, seed: int, apps: dict) -> None:
    """Draw and write one clip's frames into ``out / clip.rel_dir``."""
    key = (clip.database, clip.subject)
    if key not in apps:
        apps[key] = draw_appearance(_rng(seed, clip.database, clip.subject, "face"))
    frames = synthesize_clip(apps[key], FRAME_SIZE[clip.database], clip.n_frames, clip.peak, clip.motion,
                             _rng(seed, clip.database, clip.subject, clip.name, "clip"),
                             _rng(seed, clip.database, clip.subject, "texture"))
    folder = out / clip.rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if clip.database != "smic" else []
    for index, frame in enumerate(frames):
        extension = ".jpg" if clip.database != "smic" else ".bmp"
        ok, data = cv2.imencode(extension, frame, params)
        if not ok:
            raise DataPrepError(f"{folder}: could not encode frame {clip.onset + index}")
        _write_bytes(folder / clip.frame_name(clip.onset + index), data.tobytes())


def _marker_text(seed: int, clips: list) -> str:
    from data_prep import __version__

    counts = {db: sum(c.in_cde for c in clips if c.database == db) for db in ("casme2", "samm", "smic")}
    return (
        "# Synthetic CASME II / SAMM / SMIC-HS miniature\n\n"
        "Written by `python -m data_prep synth` (mer_keras data_prep). These are procedurally drawn "
        "faces with a subtle, class-dependent facial motion, NOT the real databases: use them to run "
        "and test the readers, the pipeline and the models end to end, never to report results.\n\n"
        f"- generator version: {VERSION}\n"
        f"- seed: {seed}\n"
        f"- package version: {__version__}\n"
        f"- clips: {len(clips)} written; MEGC2019 CDE samples: {sum(counts.values())} "
        f"(CASME II {counts['casme2']}, SAMM {counts['samm']}, SMIC {counts['smic']})\n"
        "- layouts: CASME2/CASME2_RAW_selected/subXX/<clip>/imgN.jpg with "
        "CASME2/CASME2-coding-20140508.xlsx; SAMM/SAMM/<sub>/<clip>/<sub>_NNNNN.jpg with "
        "SAMM/SAMM_Micro_FACS_Codes_v2.xlsx; SMIC/HS/sN/micro/<emotion>/<clip>/imageNNNNNN.bmp\n"
    )


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
            f"choose another --out or delete the folder to write seed {seed}")
    if not (out / _PARTIAL).exists():
        existing = [str(root) for root in roots.values() if root.exists()]
        if existing:
            raise DataPrepError(
                f"{existing[0]}: exists and was not written by `python -m data_prep synth`; "
                "choose an empty --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / _PARTIAL).write_text(f"seed: {seed}\n", encoding="utf-8")
    clips = plan(seed)
    if subjects is not None:
        wanted = set(subjects)
        clips = [c for c in clips if f"{c.database}/{c.subject}" in wanted]
    for db, root in roots.items():
        root.mkdir(parents=True, exist_ok=True)
    (roots["smic"] / "HS").mkdir(exist_ok=True)
    write_casme2_coding([c for c in clips if c.database == "casme2"],
                        roots["casme2"] / "CASME2-coding-20140508.xlsx")
    write_samm_coding([c for c in clips if c.database == "samm"],
                      roots["samm"] / "SAMM_Micro_FACS_Codes_v2.xlsx")
    apps: dict = {}
    for clip in tqdm(clips, desc="synthetic clips", unit="clip", disable=not progress):
        write_clip_frames(clip, out, seed, apps)
    if subjects is None:
        _write_bytes(marker, _marker_text(seed, clips).encode("utf-8"))
        (out / _PARTIAL).unlink()
    return roots


def main_synth(args) -> int:
    """``python -m data_prep synth --out DIR [--seed N]``: write the set and say where it is."""
    roots = write_synthetic(args.out, seed=args.seed, progress=True)
    print(f"synthetic CASME II / SAMM / SMIC written to {args.out} (seed {args.seed}); use:")
    print("  python -m data_prep flow --protocol cde " + " ".join(
        f"--{db} {root}" for db, root in roots.items()) + " --out CACHE")
    return 0
