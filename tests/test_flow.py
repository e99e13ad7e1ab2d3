"""Face crop, TV-L1 flow, optical strain and the apex rules, on tiny synthetic frames."""

import cv2
import numpy as np
import pytest

from data_prep import apex, face, flow


def _texture(size=48, seed=0):
    """A smooth random texture (uint8), rich enough for TV-L1 to lock on everywhere."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (40 + 180 * smooth).astype(np.uint8)


def _warp(image, matrix):
    return cv2.warpAffine(image, np.float32(matrix), image.shape[::-1],
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _blob(size=64, cx=32.0, cy=32.0, sigma=6.0):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return (30 + 200 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))).astype(np.uint8)


def test_tvl1_defaults_are_recorded_as_plain_values():
    params = flow.tvl1_defaults()
    assert list(params) == list(flow.TVL1_PARAMETERS)
    assert params["tau"] == pytest.approx(0.25)
    assert params["lambda"] == pytest.approx(0.15)
    assert params["nscales"] == 5
    assert params["use_initial_flow"] is False


def test_make_tvl1_rejects_an_unknown_parameter():
    with pytest.raises(ValueError, match="unknown TV-L1"):
        flow.make_tvl1({"lamda": 0.1})


@pytest.mark.parametrize("dx, dy", [(2, 0), (-2, 0), (0, 2)])
def test_flow_sign_follows_the_shift(dx, dy):
    first = _blob(cx=32, cy=32)
    second = _blob(cx=32 + dx, cy=32 + dy)
    uv = flow.tvl1_flow(first, second)
    assert uv.shape == (64, 64, 2) and uv.dtype == np.float32
    region = uv[24:41, 24:41]
    mean_u, mean_v = float(region[..., 0].mean()), float(region[..., 1].mean())
    # u > 0 for a rightward shift, v > 0 for a downward one; the other component stays small.
    if dx:
        assert np.sign(mean_u) == np.sign(dx) and abs(mean_u) > 0.5
        assert abs(mean_v) < 0.3
    else:
        assert np.sign(mean_v) == np.sign(dy) and abs(mean_v) > 0.5
        assert abs(mean_u) < 0.3


def test_tvl1_refuses_colour_frames():
    with pytest.raises(ValueError, match="grayscale"):
        flow.tvl1_flow(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_strain_of_analytic_fields():
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    constant = np.dstack([np.full_like(x, 3.0), np.full_like(x, -1.0)])
    assert np.abs(flow.optical_strain(constant)).max() == 0.0
    stretch = np.dstack([0.1 * x, np.zeros_like(x)])  # exx = 0.1, the rest 0
    np.testing.assert_allclose(flow.optical_strain(stretch), 0.1, atol=1e-6)
    shear = np.dstack([0.2 * y, np.zeros_like(x)])  # exy = 0.1 -> sqrt(2 * 0.01)
    np.testing.assert_allclose(flow.optical_strain(shear), np.sqrt(0.02), atol=1e-6)


def test_strain_is_near_zero_for_a_translation_and_not_for_a_zoom():
    image = _texture()
    shifted = _warp(image, [[1, 0, 1.0], [0, 1, 0.5]])
    zoomed = _warp(image, [[1.1, 0, -2.4], [0, 1.1, -2.4]])
    inner = (slice(8, 40), slice(8, 40))
    translation = flow.optical_strain(flow.tvl1_flow(image, shifted))[inner]
    zoom = flow.optical_strain(flow.tvl1_flow(image, zoomed))[inner]
    assert np.median(translation) < 0.03
    assert np.median(zoom) > 3 * np.median(translation)


def test_flow_and_strain_resizes_raw_values():
    first, second = _blob(cx=30), _blob(cx=32)
    out = flow.flow_and_strain(first, second, flow_size=8)
    assert out.shape == (8, 8, 3) and out.dtype == np.float32
    # Raw pixels of the 64-px grid: the blob's 2-px shift is not scaled down by the resize to 8.
    assert out[3:5, 3:5, 0].mean() > 0.8
    assert (out[..., 2] >= 0).all()


def test_sequence_positions_cover_both_ends():
    assert flow.sequence_positions(10, 4) == [0, 3, 6, 9]
    assert flow.sequence_positions(2, 4) == [0, 0, 1, 1]
    assert flow.sequence_positions(5, 0) == []


def test_sequence_flow_shape():
    onset = _blob()
    frames = [_blob(cx=32 + k) for k in range(3)]
    seq = flow.sequence_flow(onset, frames, flow_size=8)
    assert seq.shape == (3, 8, 8, 2) and seq.dtype == np.float32
    assert abs(seq[0]).max() < 0.05  # onset -> onset is still
    assert seq[2, 3:5, 3:5, 0].mean() > seq[1, 3:5, 3:5, 0].mean()


def test_interframe_diff_picks_the_frame_most_unlike_the_onset():
    onset = np.full((8, 8), 100, np.uint8)
    offsets = [0, 3, 9, 20, 7, 1]
    faces = [np.clip(onset.astype(int) + d, 0, 255).astype(np.uint8) for d in offsets]
    assert apex.interframe_diff_apex(faces) == 3
    assert apex.estimate_apex("interframe-diff", list(range(50, 56)), faces) == 53
    assert apex.interframe_diff_scores(faces)[0] == 0.0


def test_interframe_diff_on_identical_frames_takes_the_frame_after_onset():
    faces = [np.zeros((4, 4), np.uint8)] * 3
    assert apex.interframe_diff_apex(faces) == 1
    assert apex.interframe_diff_apex(faces[:1]) == 0


def test_middle_rule_and_unknown_rule():
    assert apex.estimate_apex("middle", [10, 11, 12, 13, 14, 15]) == 12
    with pytest.raises(ValueError, match="unknown apex rule"):
        apex.estimate_apex("d&c-rois", [1, 2])


def _require_cascade():
    try:
        return face.haar_cascade_path()
    except face.MissingCascadeError as error:
        pytest.skip(str(error))


def test_no_face_falls_back_to_the_full_frame(monkeypatch):
    blank = np.full((60, 80), 128, np.uint8)
    monkeypatch.setattr(face, "detect_face", lambda gray, **kw: None)
    box, source = face.face_box(blank, "haar")
    assert source == "full-frame"
    assert box == face.FaceBox(0, 0, 80, 60)
    box, source = face.face_box(blank, "none")
    assert source == "input-crop" and box == face.FaceBox(0, 0, 80, 60)
    with pytest.raises(ValueError, match="unknown face detector"):
        face.face_box(blank, "dlib")


def test_haar_finds_no_face_on_a_blank_frame():
    _require_cascade()
    blank = np.full((60, 80), 128, np.uint8)
    assert face.detect_face(blank) is None
    assert face.face_box(blank, "haar")[1] == "full-frame"


def test_largest_box_is_grown_by_the_margin_and_clipped(monkeypatch):
    class FakeCascade:
        def detectMultiScale(self, gray, **kwargs):
            return np.array([[5, 5, 10, 10], [0, 20, 40, 40]])

    monkeypatch.setattr(face, "_cascade", lambda name: FakeCascade())
    box = face.detect_face(np.zeros((64, 64), np.uint8), margin=0.1)
    # The 40-px box wins; 4 px added on each side, clipped at the frame's left and bottom edges.
    assert box == face.FaceBox(0, 16, 44, 48)


def test_missing_cascade_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("MER_HAAR_CASCADE", str(tmp_path / "absent.xml"))
    monkeypatch.setattr(face, "SYSTEM_CASCADE_DIRS", (str(tmp_path),))
    monkeypatch.setattr(face.cv2.data, "haarcascades", str(tmp_path) + "/", raising=False)
    face._cascade.cache_clear()
    with pytest.raises(face.MissingCascadeError, match="opencv-data.*--face-detector none"):
        face.check_detector("haar")
    face.check_detector("none")
    face._cascade.cache_clear()


def test_crop_applies_the_box_and_resizes():
    image = np.zeros((40, 60), np.uint8)
    image[10:30, 20:40] = 255
    crop = face.crop_face(image, face.FaceBox(20, 10, 20, 20), size=16)
    assert crop.shape == (16, 16) and crop.dtype == np.uint8
    assert crop.min() == 255
    with pytest.raises(ValueError, match="outside"):
        face.crop_face(image, face.FaceBox(100, 100, 5, 5), size=16)


@pytest.mark.slow
def test_haar_finds_a_real_face(shared_data_dir):
    """CK+48 faces (48 px, tight crops), enlarged and padded so the cascade sees a whole face."""
    _require_cascade()
    folder = shared_data_dir / "WuJie1010_Facial-Expression-Recognition.Pytorch" / "CK+48" / "happy"
    images = sorted(folder.glob("*.png"))[:5]
    if not images:
        pytest.skip(f"no CK+48 images under {folder}")
    found = 0
    for path in images:
        small = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(small, (144, 144), interpolation=cv2.INTER_CUBIC)
        padded = cv2.copyMakeBorder(big, 48, 48, 48, 48, cv2.BORDER_REPLICATE)
        box = face.detect_face(padded)
        if box is not None:
            found += 1
            assert box.w <= padded.shape[1] and box.x >= 0
    assert found >= 1
