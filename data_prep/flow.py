"""TV-L1 optical flow and optical strain between face crops.

The flow is OpenCV's Dual TV-L1 (Zach, Pock and Bischof 2007; Wedel et al. 2009) through
``cv2.optflow.DualTVL1OpticalFlow_create``, which needs the ``opencv-contrib`` build and 8-bit
grayscale frames. FR (Sec 4.2) and OFF-ApexNet (Sec 3.2) name TV-L1 but give no parameters, so
OpenCV's defaults are used and every one of them is recorded (:func:`tvl1_defaults`).

Optical strain follows STSTNet / Liong et al.: from the gradients of the flow (u, v),
``e_xx = du/dx``, ``e_yy = dv/dy``, ``e_xy = 0.5 (du/dy + dv/dx)`` and the strain magnitude is
``sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2)`` (the tensor's Frobenius norm, ``e_yx = e_xy``).

Values are kept RAW: u and v in pixels of the face-crop grid (``face_size``), strain dimensionless.
Resizing to ``flow_size`` averages the maps (``INTER_AREA``) and does not rescale the values; no
min-max or other normalisation happens here, that is a model-input choice made in ``mer_keras``.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

#: OpenCV's Dual TV-L1 parameters, in the positional order of ``DualTVL1OpticalFlow_create``.
TVL1_PARAMETERS = (
    "tau", "lambda", "theta", "nscales", "warps", "epsilon", "inner_iterations",
    "outer_iterations", "scale_step", "gamma", "median_filtering", "use_initial_flow",
)
_GETTERS = (
    "getTau", "getLambda", "getTheta", "getScalesNumber", "getWarpingsNumber", "getEpsilon",
    "getInnerIterations", "getOuterIterations", "getScaleStep", "getGamma", "getMedianFiltering",
    "getUseInitialFlow",
)

STRAIN_FORMULA = "sqrt(exx^2 + eyy^2 + 2*exy^2), exx=du/dx, eyy=dv/dy, exy=0.5*(du/dy+dv/dx)"
VALUES_NOTE = ("raw: u, v in pixels of the face_size crop grid, strain dimensionless; resized to "
               "flow_size with INTER_AREA without rescaling; no min-max normalisation (a "
               "model-input choice made in mer_keras)")


def tvl1_defaults() -> dict:
    """OpenCV's default Dual TV-L1 parameters, read from a fresh instance (so they are recorded).

    Returns:
        ``{name: value}`` with the names of :data:`TVL1_PARAMETERS`, as plain Python numbers.
    """
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    values = {}
    for name, getter in zip(TVL1_PARAMETERS, _GETTERS):
        value = getattr(solver, getter)()
        values[name] = bool(value) if name == "use_initial_flow" else value
    return values


def make_tvl1(params: Optional[Mapping] = None):
    """A ``cv2.optflow.DualTVL1OpticalFlow`` with ``params`` (missing names: OpenCV's defaults)."""
    values = tvl1_defaults()
    if params:
        unknown = sorted(set(params) - set(TVL1_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown TV-L1 parameters {unknown}; known: {list(TVL1_PARAMETERS)}")
        values.update(params)
    # Positional: OpenCV 5 spells one keyword ``innnerIterations``.
    return cv2.optflow.DualTVL1OpticalFlow_create(*(values[name] for name in TVL1_PARAMETERS))


def _as_gray_u8(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name}: TV-L1 needs a 2-D grayscale image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: TV-L1 needs uint8 frames, got {image.dtype}")
    return image


def tvl1_flow(first: np.ndarray, second: np.ndarray, solver=None) -> np.ndarray:
    """Dense TV-L1 flow from ``first`` to ``second`` (uint8 grayscale, same shape).

    Returns:
        H x W x 2 float32 ``(u, v)`` in pixels, such that ``first(x) ~ second(x + flow(x))``: a
        pattern moving right gives ``u > 0``, moving down gives ``v > 0``.
    """
    first = _as_gray_u8(first, "first")
    second = _as_gray_u8(second, "second")
    if first.shape != second.shape:
        raise ValueError(f"frames differ in shape: {first.shape} vs {second.shape}")
    solver = make_tvl1() if solver is None else solver
    flow = solver.calc(first, second, None)
    return np.asarray(flow, dtype=np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of an H x W x 2 flow field (see the module docstring).

    Gradients are central differences (``np.gradient``, one-sided at the border), in units of the
    flow's own grid.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be H x W x 2, got {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2.0 * exy ** 2).astype(np.float32)


def resize_map(values: np.ndarray, size: int) -> np.ndarray:
    """Resize a float map (H x W or H x W x C) to ``size`` x ``size``; values are not rescaled."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape[:2] == (size, size):
        return values.copy()
    interpolation = cv2.INTER_AREA if min(values.shape[:2]) >= size else cv2.INTER_LINEAR
    return cv2.resize(values, (size, size), interpolation=interpolation).astype(np.float32)


def flow_and_strain(first: np.ndarray, second: np.ndarray, *, flow_size: int = 28,
                    solver=None) -> np.ndarray:
    """The model input of FR / OFF-ApexNet / STSTNet: TV-L1 u, v and strain, resized.

    Args:
        first, second: uint8 grayscale face crops (onset, apex), same shape.
        flow_size: side of the returned maps (28 in FR and OFF-ApexNet).
        solver: a TV-L1 instance from :func:`make_tvl1` (OpenCV defaults when ``None``).

    Returns:
        ``flow_size`` x ``flow_size`` x 3 float32: u, v (pixels of the input grid) and strain,
        strain computed at full resolution before resizing.
    """
    flow = tvl1_flow(first, second, solver)
    strain = optical_strain(flow)
    stacked = np.dstack([flow, strain[..., None]])
    return resize_map(stacked, flow_size)


def sequence_positions(count: int, length: int) -> list[int]:
    """``length`` positions spread uniformly over ``0..count-1`` (both ends included).

    Shorter clips repeat positions (rounded ``linspace``), so every sample gets ``length`` steps.
    """
    if count < 1:
        raise ValueError("a sequence needs at least one frame")
    if length < 1:
        return []
    return [int(round(p)) for p in np.linspace(0, count - 1, length)]


def sequence_flow(onset: np.ndarray, frames: Sequence[np.ndarray], *, flow_size: int = 28,
                  solver=None) -> np.ndarray:
    """Onset -> frame t TV-L1 flow for each of ``frames``: T x S x S x 2 float32 (u, v, raw)."""
    solver = make_tvl1() if solver is None else solver
    maps = [resize_map(tvl1_flow(onset, frame, solver), flow_size) for frame in frames]
    if not maps:
        return np.zeros((0, flow_size, flow_size, 2), np.float32)
    return np.stack(maps).astype(np.float32)
