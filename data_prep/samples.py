"""The sample record that every database reader returns."""

from __future__ import annotations

import dataclasses
from typing import Optional

DATABASES = ("casme2", "samm", "smic")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One micro-expression clip as its database annotates it.

    Attributes:
        database: ``"casme2"``, ``"samm"``, ``"smic"`` (HS), ``"smic_vis"``, ``"smic_nir"``.
        subject: the subject id prefixed by its database, because ids collide across databases:
            ``"casme2/sub01"``, ``"samm/006"``, ``"smic/s01"``.
        clip: the clip's name (``"EP02_01f"``, ``"006_1_2"``); SMIC's is zero-padded as the
            MEGC2019 lists write it (``"s01_ne_01"`` for the folder ``s1_ne_01``).
        onset, apex, offset: absolute frame numbers, as in the frame file names; ``None`` where the
            source has none (SMIC has no apex; imported flow images have no frames at all).
        emotion: the database's own label, lower case (``"disgust"``, ``"happiness"``, ...).
        apex_source: where ``apex`` came from: ``"annotation"``, or the name of the rule that
            estimated it (``"interframe-diff"``, ``"middle"``).
        objective_class: the MEGC2018 objective class (1..7) where the coding file gives one.
        frames_dir: the clip's frame folder, where frames were found; ``None`` for an index built
            from annotation files alone.
        source: the annotation file (and row) or folder this record was read from.
    """

    database: str
    subject: str
    clip: str
    onset: Optional[int]
    apex: Optional[int]
    offset: Optional[int]
    emotion: str
    apex_source: str = "annotation"
    objective_class: Optional[int] = None
    frames_dir: Optional[str] = None
    source: str = ""

    @property
    def sample_id(self) -> str:
        """``database/subject/clip`` without repeating the database: ``"casme2/sub01/EP02_01f"``."""
        return f"{self.subject}/{self.clip}"

    def replace(self, **changes) -> "Sample":
        return dataclasses.replace(self, **changes)
