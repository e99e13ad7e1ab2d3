"""EVM magnification (data_prep.magnify) on tiny synthetic clips."""

import numpy as np
import pytest

from data_prep import magnify

SIZE = 48


def _blob(sigma=4.0):
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return np.exp(-((x - SIZE / 2) ** 2 + (y - SIZE / 2) ** 2) / (2 * sigma ** 2))


def _modulated(freq, frames=120, amplitude=4.0):
    """A blob whose brightness swings sinusoidally at ``freq`` cycles per frame."""
    blob = _blob()
    return np.stack([100 + 60 * blob + amplitude * np.sin(2 * np.pi * freq * t) * blob
                     for t in range(frames)]).astype(np.float32)


def _swing(clip):
    """Temporal standard deviation of the blob centre over the second half (after the transient)."""
    centre = clip[len(clip) // 2:, SIZE // 2 - 2: SIZE // 2 + 2, SIZE // 2 - 2: SIZE // 2 + 2]
    return float(np.std(centre.astype(np.float64).mean(axis=(1, 2))))


def test_alpha_zero_returns_the_input_gray_and_colour():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 20, 16), dtype=np.uint8)
    colour = rng.integers(0, 256, (6, 20, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(magnify.magnify(gray, 0), gray)
    np.testing.assert_array_equal(magnify.magnify(colour, 0), colour)
    assert magnify.magnify(colour, 0).dtype == np.uint8


def test_in_band_change_is_amplified_and_out_of_band_is_not():
    in_band, slow = _modulated(0.03), _modulated(0.0005, amplitude=30.0)
    gain_in = _swing(magnify.magnify(in_band, 8)) / _swing(in_band)
    gain_slow = _swing(magnify.magnify(slow, 8)) / _swing(slow)
    assert gain_in > 3.0
    assert 0.8 < gain_slow < 1.3


def test_first_frame_is_unchanged_and_output_is_clipped_uint8():
    clip = _modulated(0.03, frames=40, amplitude=60.0)
    out = magnify.magnify(clip, 14)
    assert out.dtype == np.uint8 and out.shape == clip.shape
    np.testing.assert_array_equal(out[0], np.rint(clip[0]).astype(np.uint8))
    assert out.max() == 255


def test_recombine_from_one_bandpass_equals_magnify_at_each_alpha():
    rng = np.random.default_rng(1)
    clip = rng.uniform(40, 200, (8, 24, 20, 3)).astype(np.float32)
    bands = magnify.bandpassed_levels(clip)
    for alpha in (5, 8, 14):
        np.testing.assert_array_equal(magnify.recombine(bands, alpha), magnify.magnify(clip, alpha))


def test_level_gains_follow_evm():
    # 64 x 48 has 4 levels (MATLAB maxPyrHt); the finest and the coarsest are not amplified.
    assert magnify.pyramid_height(64, 48) == 4
    gains = magnify.level_gains(64, 48, 4, 8, lambda_c=16)
    assert gains[0] == 0.0 and gains[-1] == 0.0
    # level 2 (16 x 12): bound 2 * (80/3/2 * 9/16 - 1) = 13 > 8 -> 8; level 1: 2 * (80/12*9/16-1).
    assert gains[2] == 8.0
    assert gains[1] == pytest.approx(2 * (80 / 12 * 9 / 16 - 1))
    assert magnify.level_gains(64, 48, 4, 0) == [0.0] * 4


def test_pyramid_round_trip():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (30, 22, 3)).astype(np.float32)
    pyramid = magnify.laplacian_pyramid(image, 3)
    assert [p.shape[:2] for p in pyramid] == [(30, 22), (15, 11), (8, 6)]
    np.testing.assert_allclose(magnify.reconstruct(pyramid), image, atol=1e-3)


def test_colour_channels_are_magnified_like_gray():
    gray = _modulated(0.03, frames=20)
    colour = np.repeat(gray[..., None], 3, axis=-1)
    expected = magnify.magnify(gray, 8)
    for attenuation in (1.0, 0.1):
        out = magnify.magnify(colour, 8, chrom_attenuation=attenuation)
        assert np.abs(out.astype(int) - expected[..., None].astype(int)).max() <= 1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="T x H x W"):
        magnify.magnify(np.zeros((4, 8)), 8)
    with pytest.raises(ValueError, match="low < high"):
        magnify.magnify(np.zeros((4, 8, 8)), 8, low=0.5, high=0.4)
    with pytest.raises(ValueError, match="alpha"):
        magnify.magnify(np.zeros((4, 8, 8)), -1)
