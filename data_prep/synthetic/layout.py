"""What the synthetic set holds: the MEGC2019 composition, the extra rows, the clip record."""

from __future__ import annotations

import dataclasses

import numpy as np

VERSION = "1"
MARKER = "SYNTHETIC.md"
CLASSES = ("negative", "positive", "surprise")

# MEGC2019 CDE composition: (negative, positive, surprise) per subject, derived once from
# combined_3_class_gt.csv (davidnvq/me_recognition); the generator never reads that file.
CDE_COUNTS = {
    "casme2": {
        "01": (2, 1, 0),
        "02": (5, 1, 3),
        "03": (4, 0, 1),
        "04": (2, 0, 0),
        "05": (0, 1, 5),
        "06": (1, 1, 2),
        "07": (5, 0, 0),
        "08": (1, 0, 0),
        "09": (5, 5, 0),
        "11": (4, 0, 0),
        "12": (5, 2, 4),
        "13": (0, 2, 0),
        "14": (0, 3, 0),
        "15": (1, 1, 1),
        "16": (1, 2, 0),
        "17": (23, 7, 1),
        "19": (3, 3, 5),
        "20": (2, 0, 0),
        "21": (1, 0, 0),
        "22": (2, 0, 0),
        "23": (7, 1, 0),
        "24": (2, 0, 1),
        "25": (3, 0, 2),
        "26": (9, 2, 0),
    },
    "samm": {
        "006": (9, 0, 2),
        "007": (1, 5, 2),
        "009": (3, 0, 1),
        "010": (4, 0, 0),
        "011": (13, 7, 0),
        "012": (2, 0, 1),
        "013": (6, 0, 0),
        "014": (2, 7, 1),
        "015": (2, 0, 1),
        "016": (2, 1, 2),
        "017": (3, 0, 1),
        "018": (2, 0, 1),
        "019": (0, 1, 0),
        "020": (2, 2, 0),
        "021": (2, 0, 0),
        "022": (3, 2, 0),
        "023": (1, 0, 0),
        "024": (1, 0, 0),
        "026": (9, 0, 0),
        "028": (1, 0, 2),
        "030": (3, 0, 0),
        "031": (1, 0, 0),
        "032": (4, 0, 0),
        "033": (4, 1, 0),
        "034": (3, 0, 0),
        "035": (7, 0, 1),
        "036": (1, 0, 0),
        "037": (1, 0, 0),
    },
    "smic": {
        "1": (3, 2, 1),
        "2": (0, 1, 5),
        "3": (22, 11, 6),
        "4": (10, 4, 5),
        "5": (1, 0, 1),
        "6": (2, 0, 2),
        "8": (9, 4, 0),
        "9": (0, 1, 3),
        "11": (3, 3, 1),
        "12": (0, 8, 1),
        "13": (0, 10, 0),
        "14": (3, 2, 5),
        "15": (1, 1, 2),
        "18": (2, 0, 5),
        "19": (0, 1, 1),
        "20": (14, 3, 5),
    },
}

# Rows a real coding has and the CDE protocol must leave out: (subject, emotion, kind).
# kind "plain" is an excluded emotion; "apex_slash" writes "/" as the apex (as sub04/EP12_01f);
# "onset_is_apex" writes apex == onset (as sub05/EP09_05f).
CASME2_EXTRA = (
    ("04", "disgust", "apex_slash"),
    ("05", "disgust", "onset_is_apex"),
    ("01", "others", "plain"),
    ("03", "others", "plain"),
    ("10", "others", "plain"),
    ("10", "others", "plain"),
    ("10", "fear", "plain"),
    ("17", "others", "plain"),
    ("18", "others", "plain"),
    ("24", "sadness", "plain"),
    ("26", "others", "plain"),
)
SAMM_EXTRA = (
    ("025", "Other"),
    ("025", "Other"),
    ("006", "Other"),
    ("011", "Other"),
    ("020", "Other"),
)
SMIC_NON_MICRO = (("3", "negative"), ("3", "positive"), ("20", "surprise"))

CASME2_NEGATIVE = (("disgust", 0.7), ("repression", 0.3))
SAMM_NEGATIVE = (
    ("Anger", 0.62),
    ("Contempt", 0.13),
    ("Disgust", 0.1),
    ("Fear", 0.09),
    ("Sadness", 0.06),
)
SAMM_OBJECTIVE = {
    "Happiness": 1,
    "Surprise": 2,
    "Anger": 3,
    "Disgust": 4,
    "Sadness": 5,
    "Fear": 6,
    "Contempt": 7,
    "Other": 7,
}
# Which motion each emotion shows; negative emotions pick among their motions at random.
MOTIONS = {
    "positive": ("lip_raise",),
    "surprise": ("brow_raise_open",),
    "negative": ("brow_lower", "nose_wrinkle", "lip_depress"),
    "other": ("other",),
}
AU_CODES = {
    "lip_raise": "12",
    "brow_raise_open": "1+2+25",
    "brow_lower": "4",
    "nose_wrinkle": "9",
    "lip_depress": "15",
    "other": "14",
}
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
# The macro-expression set: CK+ as distributed (cohn-kanade-images/ + Emotion/), other subjects

MACRO_VERSION = "1"
MACRO_ROOT = "CK+"
MACRO_SUBJECTS = tuple(f"S{n}" for n in range(501, 521))  # CK+'s own ids stop at S999; none clash
MACRO_PARTIAL_SUBJECTS = 3  # written by a partial set (--subjects) that names no ckplus/ subject
MACRO_FRAME_SIZE = (192, 144)  # (width, height)
MACRO_FRAMES = (8, 12)  # frames per sequence, neutral first frame to peak last frame
MACRO_AMPLITUDE = (3.5, 6.5)  # px at the peak; the micro clips draw 0.25..1.1 (mean 0.68)
#: The codes of CK+'s *_emotion.txt files.
CKPLUS_CODES = {"anger": 1, "contempt": 2, "disgust": 3, "fear": 4, "happiness": 5, "sadness": 6,
                "surprise": 7}
#: Every subject poses these; fear and contempt only with the given probability.
MACRO_CORE = ("happiness", "surprise", "anger", "disgust", "sadness")
MACRO_OPTIONAL = (("fear", 0.6), ("contempt", 0.45))
#: The micro clips' class motions, one emotion each: (motion, gain, one side of the face only).
#: Negative emotions use only the micro negative motions, so the CDE classes move as in the micro
#: clips, and anger, disgust and sadness (objective classes III-V) move differently.
MACRO_MOTIONS = {
    "happiness": (("lip_raise", 1.0, False),),
    "surprise": (("brow_raise_open", 1.0, False),),
    "anger": (("brow_lower", 1.0, False),),
    "disgust": (("nose_wrinkle", 1.0, False),),
    "sadness": (("lip_depress", 1.0, False),),
    "fear": (("brow_lower", 0.8, False), ("lip_depress", 0.8, False)),
    "contempt": (("lip_depress", 1.0, True),),
}


@dataclasses.dataclass(frozen=True)
class MacroSequence:
    """One synthetic CK+ sequence: neutral at frame 1, the expression peaking at the last frame.

    Attributes:
        subject: ``"S501"``.
        number: the sequence number (the folder ``"003"``).
        emotion: the label written to ``Emotion/``; ``None`` for an unlabelled sequence (CK+ labels
            only some sequences: its ``Emotion/`` folder is then empty).
        shown: the emotion whose motion is drawn (the label, or a random one when unlabelled).
        n_frames: number of frames (``1 .. n_frames``).
    """

    subject: str
    number: int
    emotion: object
    shown: str
    n_frames: int

    @property
    def name(self) -> str:
        return f"{self.number:03d}"

    @property
    def rel_dir(self) -> str:
        return f"{MACRO_ROOT}/cohn-kanade-images/{self.subject}/{self.name}"

    @property
    def label_dir(self) -> str:
        return f"{MACRO_ROOT}/Emotion/{self.subject}/{self.name}"

    def frame_name(self, number: int) -> str:
        """``S501_003_00000001.png``: CK+'s naming, frames counted from 1."""
        return f"{self.subject}_{self.name}_{number:08d}.png"
