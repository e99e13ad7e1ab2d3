"""OFF-ApexNet's D&C-RoIs apex rule (``dc-rois``) in data_prep/apex.py, on tiny synthetic clips."""

import numpy as np
import pytest

from data_prep import apex, pipeline
from data_prep.datasets import smic
from data_prep.errors import Problems

SIZE = 64  # face crop side of the hand-made clips


def _base_face(seed=0):
    """A noise-textured face crop: every RoI holds texture, every frame starts from the same one."""
    return np.random.default_rng(seed).uniform(60, 200, size=(SIZE, SIZE))


def _clip(n_frames, plants):
    """``n_frames`` uint8 faces; ``plants`` maps an RoI box to ``(peak frame, peak fraction)``.

    A growing share of the RoI's pixels (a fixed random order) is flattened to gray 128 following
    a triangular bump that is 0 at the onset, reaches ``peak fraction`` at ``peak frame`` and falls
    again: flat pixels turn the noise's spread of LBP codes into code 11111111, so the RoI's
    histogram differs most from the onset's at the peak.
    """
    base = _base_face()
    order = np.random.default_rng(1).uniform(size=(SIZE, SIZE))
    faces = []
    for t in range(n_frames):
        face = base.copy()
        for roi, (peak, height) in plants.items():
            share = height * max(0.0, 1.0 - abs(t - peak) / peak) if t else 0.0
            rows, cols = apex._roi_slices((SIZE, SIZE), roi)
            patch = face[rows, cols]
            patch[order[rows, cols] < share] = 128.0
        faces.append(np.clip(face, 0, 255).astype(np.uint8))
    return faces


# ---------------------------------------------------------------------------------------------
# LBP


@pytest.mark.parametrize("value", [0, 77, 255])
def test_lbp_of_a_constant_image_is_one_code(value):
    codes = apex.lbp_uniform(np.full((7, 9), value, np.uint8))
    assert codes.shape == (5, 7)
    assert np.unique(codes).tolist() == [apex.LBP_BINS - 2]  # 11111111, the last uniform label


def test_lbp_labels_and_bins():
    assert apex.LBP_BINS == 59
    codes = apex.lbp_uniform(_base_face())
    assert codes.min() >= 0 and codes.max() == apex.LBP_BINS - 1  # noise has non-uniform codes
    peak = np.zeros((3, 3))
    peak[1, 1] = 9.0                                  # every neighbour lower: code 0, label 0
    assert apex.lbp_uniform(peak).tolist() == [[0]]
    edge = np.zeros((3, 3))
    edge[:, 2] = 9.0                                  # right column brighter than a dark centre
    edge[1, 1] = 5.0                                  # bits 0 (right), 1 and 7 (right diagonals)
    assert apex.lbp_uniform(edge).tolist() == [[int(apex._UNIFORM_TABLE[0b10000011])]]


def test_lbp_needs_a_2d_image_of_3x3():
    with pytest.raises(ValueError, match="at least 3 x 3"):
        apex.lbp_uniform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="2-D"):
        apex.lbp_uniform(np.zeros((4, 4, 3)))


def test_roi_histograms_are_normalised_per_roi():
    hists = apex.roi_histograms(_base_face())
    assert hists.shape == (3, apex.LBP_BINS)
    np.testing.assert_allclose(hists.sum(axis=1), 1.0)
    assert list(apex.DC_ROIS) == ["left_eye_brow", "right_eye_brow", "mouth"]


def test_change_outside_the_rois_scores_zero():
    faces = [_base_face().astype(np.uint8) for _ in range(3)]
    faces[2][36:40, 20:44] = 0  # nose band: below the eye boxes and above the mouth box
    scores = apex.dc_rois_scores(faces)
    assert scores.tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# The rule on planted peaks


@pytest.mark.parametrize("peak", [3, 6, 9])
def test_mouth_change_peaking_at_k_gives_apex_k(peak):
    faces = _clip(12, {apex.MOUTH_ROI: (peak, 0.8)})
    scores = apex.dc_rois_scores(faces)
    assert scores[0] == 0.0
    assert int(np.argmax(scores)) == peak
    assert apex.dc_rois_apex(faces) == peak
    numbers = list(range(100, 112))
    assert apex.estimate_apex("dc-rois", numbers, faces) == 100 + peak


@pytest.mark.parametrize("roi", [apex.LEFT_EYE_BROW_ROI, apex.RIGHT_EYE_BROW_ROI])
def test_eye_change_alone_gives_its_peak(roi):
    faces = _clip(10, {roi: (4, 0.8)})
    assert apex.dc_rois_apex(faces) == 4


@pytest.mark.parametrize("mouth, eye, expected", [(0.95, 0.7, 9), (0.7, 0.95, 3)])
def test_the_larger_of_a_mouth_and_an_eye_peak_wins(mouth, eye, expected):
    faces = _clip(14, {apex.MOUTH_ROI: (9, mouth), apex.LEFT_EYE_BROW_ROI: (3, eye)})
    scores = apex.dc_rois_scores(faces)
    for peak in (3, 9):  # both plants are local maxima of the score curve
        assert scores[peak] > scores[peak - 1] and scores[peak] > scores[peak + 1]
    assert apex.dc_rois_apex(faces) == expected
    assert int(np.argmax(scores)) == expected


# ---------------------------------------------------------------------------------------------
# Divide and conquer


@pytest.mark.parametrize("seed", range(8))
def test_divide_and_conquer_returns_the_argmax_of_a_unimodal_curve(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    peak = int(rng.integers(1, n))
    rise = np.cumsum(rng.uniform(0.1, 1.0, size=peak))
    fall = rise[-1] - np.cumsum(rng.uniform(0.1, 1.0, size=n - 1 - peak))
    scores = np.concatenate([[0.0], rise, fall])
    assert int(np.argmax(scores)) == peak
    assert apex.divide_and_conquer(scores) == peak


def test_divide_and_conquer_halves_by_summed_peaks():
    # Local maxima at 2 (5), 6 (3) and 8 (3): halves [1, 5) and [5, 10) sum 5 against 6, so the
    # later half is kept although frame 2 holds the global maximum; then [5, 7) against [7, 10)
    # is 3 against 3, a tie, which keeps the earlier half: frame 6.
    scores = [0, 1, 5, 1, 0, 0, 3, 0, 3, 0]
    assert apex.divide_and_conquer(scores) == 6
    # The literal "sum every frame of each half" rule misses a skewed unimodal maximum.
    skewed = [0, 10, 9, 8, 7, 6]
    assert apex.divide_and_conquer(skewed) == 1
    assert apex.divide_and_conquer(skewed, candidates="all") == 4


def test_divide_and_conquer_edge_cases():
    assert apex.divide_and_conquer([0.0]) == 0
    assert apex.divide_and_conquer([0.0, 0.0]) == 1
    assert apex.divide_and_conquer([0.0, 0.0, 0.0, 0.0]) == 1  # flat: every frame ties, earliest
    assert apex.dc_rois_apex([_base_face()] * 3) == 1           # identical frames, as interframe
    assert apex.dc_rois_apex([_base_face()]) == 0


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors_are_clear():
    faces = _clip(4, {apex.MOUTH_ROI: (2, 0.5)})
    with pytest.raises(ValueError, match="at least the onset frame"):
        apex.estimate_apex("dc-rois", [], [])
    with pytest.raises(ValueError, match="at least the onset frame"):
        apex.dc_rois_scores([])
    with pytest.raises(ValueError, match="4 faces for 3 frame numbers"):
        apex.estimate_apex("dc-rois", [1, 2, 3], faces)
    with pytest.raises(ValueError, match="face 2 has shape"):
        apex.dc_rois_scores(faces[:2] + [np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match="too small"):
        apex.roi_histograms(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="candidates"):
        apex.divide_and_conquer([0.0, 1.0], candidates="max")
    with pytest.raises(ValueError, match="unknown apex rule"):
        apex.estimate_apex("d&c-rois", [1, 2], faces[:2])
    assert "dc-rois" in apex.APEX_RULES
    assert pipeline.flow_params(apex_rule="dc-rois")["apex_rule"] == "dc-rois"


# ---------------------------------------------------------------------------------------------
# One synthetic SMIC clip, through the pipeline


def test_dc_rois_on_a_synthetic_smic_clip(tmp_path):
    from data_prep.synthetic import write_synthetic

    roots = write_synthetic(tmp_path / "synth", progress=False, subjects=["smic/1"])
    samples = smic.read(roots["smic"], Problems(strict=True))
    sample = samples[0]
    assert sample.apex is None and sample.database == "smic"
    params = pipeline.flow_params(face_size=64, flow_size=8, apex_rule="dc-rois")
    summary = pipeline.prepare_flow_cache([(sample, "negative")], tmp_path / "cache",
                                          params=params, workers=1, progress=False)
    assert (summary.computed, summary.dropped) == (1, 0)
    row = summary.rows[0]
    assert row["apex_source"] == "dc-rois"
    assert sample.onset < int(row["apex"]) <= sample.offset
