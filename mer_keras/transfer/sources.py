"""What a transfer chain reads besides the micro-expression cache: macro faces and initial weights.

Neither is part of the config hash (a path differs between machines); both are part of the run's
data fingerprint instead, so a fold trained on other macro data or other initial weights is not
taken for a finished one, and both are recorded in ``run.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Optional


@dataclasses.dataclass(frozen=True)
class TransferSources:
    """The extra inputs of a transfer chain.

    Attributes:
        macro_cache: a ``python -m data_prep macro`` cache (macro-expression faces), or None.
        init_weights: a weights file for the backbone (e.g. the user's ImageNet ResNet, a
            ``.keras`` or ``.weights.h5`` with this project's layer names), or None for random
            initialisation. Nothing is downloaded.
    """

    macro_cache: Optional[str] = None
    init_weights: Optional[str] = None

    def __post_init__(self):
        if self.init_weights is not None and not Path(self.init_weights).is_file():
            raise FileNotFoundError(f"initial weights {self.init_weights} not found")

    def weights_sha256(self) -> Optional[str]:
        if self.init_weights is None:
            return None
        digest = hashlib.sha256()
        with open(self.init_weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def describe(self) -> dict:
        """The ``run.json`` record: the macro cache's path and fingerprint, the weights' hash."""
        from data_prep.cache import fingerprint, read_cache_meta

        record = {"macro_cache": None, "initialisation": "random (no weights file given)"}
        if self.macro_cache is not None:
            meta = read_cache_meta(self.macro_cache)
            record["macro_cache"] = {
                "path": str(Path(self.macro_cache).resolve()),
                "fingerprint": fingerprint(self.macro_cache),
                "protocol": meta.get("protocol"), "has_neutral": meta.get("has_neutral"),
                "counts": meta.get("counts")}
        if self.init_weights is not None:
            record["initialisation"] = {"path": str(Path(self.init_weights).resolve()),
                                        "sha256": self.weights_sha256()}
        return record

    def fingerprint(self, data_fingerprint: str) -> str:
        """``data_fingerprint`` combined with the macro cache's and the weights' (unchanged when
        there are none)."""
        if self.macro_cache is None and self.init_weights is None:
            return data_fingerprint
        from data_prep.cache import fingerprint

        parts = [data_fingerprint,
                 fingerprint(self.macro_cache) if self.macro_cache else "",
                 self.weights_sha256() or ""]
        return hashlib.sha256(":".join(parts).encode("utf-8")).hexdigest()
