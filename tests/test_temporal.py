"""Temporal normalisation, frame subsampling and the Eq. (5) apex (data_prep.temporal)."""

import numpy as np
import pytest

from data_prep import temporal


@pytest.mark.parametrize("count", [1, 2, 7, 30, 83])
def test_normalize_length_keeps_endpoints_and_is_monotone(count):
    ramp = np.arange(count, dtype=np.float32)[:, None, None] * np.ones((1, 3, 2), np.float32)
    out = temporal.normalize_length(ramp, 30)
    assert out.shape == (30, 3, 2) and out.dtype == np.float32
    assert out[0, 0, 0] == 0.0 and out[-1, 0, 0] == count - 1
    assert np.all(np.diff(out[:, 0, 0]) >= 0)
    # linear interpolation of a linear ramp is the ramp itself
    np.testing.assert_allclose(out[:, 1, 1], np.linspace(0, count - 1, 30), atol=1e-5)


def test_normalize_length_rounds_integer_frames():
    frames = np.array([[0], [255], [0]], dtype=np.uint8)
    out = temporal.normalize_length(frames, 5)
    assert out.dtype == np.uint8
    assert out[:, 0].tolist() == [0, 128, 255, 128, 0]


def test_normalize_length_refuses_empty_input():
    with pytest.raises(ValueError, match="at least one frame"):
        temporal.normalize_length(np.zeros((0, 4, 4)), 30)
    with pytest.raises(ValueError, match="length"):
        temporal.normalize_length(np.zeros((3, 4, 4)), 0)


@pytest.mark.parametrize("n", [2, 5, 10, 31, 100])
@pytest.mark.parametrize("fraction", temporal.KEEP_FRACTIONS)
def test_keep_fraction_counts_and_keeps_the_onset(n, fraction):
    rng = np.random.default_rng(n)
    kept = temporal.keep_fraction(n, fraction, rng)
    expected = min(n, max(2, int(np.floor(fraction * n + 0.5))))
    assert len(kept) == expected
    assert kept[0] == 0
    assert np.all(np.diff(kept) > 0) and kept[-1] < n


def test_keep_fraction_examples_and_determinism():
    assert temporal.keep_count(10, 0.6) == 6
    assert temporal.keep_count(15, 0.9) == 14          # 13.5 rounds half up
    assert temporal.keep_count(1, 0.6) == 1
    a = temporal.keep_fraction(40, 0.7, np.random.default_rng([7, 3]))
    b = temporal.keep_fraction(40, 0.7, np.random.default_rng([7, 3]))
    c = temporal.keep_fraction(40, 0.7, np.random.default_rng([7, 4]))
    np.testing.assert_array_equal(a, b)
    assert a.tolist() != c.tolist()
    np.testing.assert_array_equal(temporal.keep_fraction(12, 1.0, np.random.default_rng()),
                                  np.arange(12))
    with pytest.raises(ValueError, match="fraction"):
        temporal.keep_fraction(10, 0.0, np.random.default_rng())


def test_std_apex_finds_a_planted_apex():
    rng = np.random.default_rng(0)
    onset = rng.uniform(0, 255, (16, 16))
    pattern = rng.normal(0, 1, (16, 16))
    strength = np.array([0, 1, 2, 4, 9, 5, 3, 1], dtype=np.float64)
    frames = np.stack([onset + s * pattern for s in strength])
    assert temporal.std_apex(frames) == 4
    scores = temporal.std_scores(frames)
    assert scores[0] == 0.0 and np.argmax(scores) == 4


def test_std_apex_uses_the_spread_not_the_mean():
    onset = np.zeros((8, 8))
    brighter = onset + 50.0                            # a uniform change has std 0
    textured = onset.copy()
    textured[::2] = 5.0
    assert temporal.std_apex(np.stack([onset, brighter, textured])) == 2


def test_std_apex_edge_cases():
    assert temporal.std_apex(np.zeros((1, 4, 4))) == 0
    assert temporal.std_apex(np.zeros((3, 4, 4))) == 1  # no change: the frame after the onset
    colour = np.zeros((3, 4, 4, 3))
    colour[2, 0, 0, 1] = 9
    assert temporal.std_apex(colour) == 2
    with pytest.raises(ValueError, match="T x H x W"):
        temporal.std_apex(np.zeros(5))
