"""Shared test set-up: the --run-slow option, fixed seeds, and the ../shared material."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("MER_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
ANNOTATIONS = SHARED / "annotations"
DATA = SHARED / "data"


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run slow, real-data and GPU tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fixed_seeds():
    """Seed Python, NumPy and (where a test module uses it) Keras before every test."""
    random.seed(0)
    np.random.seed(0)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(0)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read ../shared in place "
                    "(set MER_SHARED to its location)")
    return path


@pytest.fixture
def annotations_dir() -> Path:
    """``../shared/annotations``: the real annotation files."""
    return _require(ANNOTATIONS)


@pytest.fixture
def shared_data_dir() -> Path:
    """``../shared/data``: the real derived data (MEGC2019 flow images, CK+48)."""
    return _require(DATA)
