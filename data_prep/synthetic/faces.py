"""Procedurally drawn faces with per-subject appearance (found by OpenCV's Haar cascade)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Appearance:
    """One subject's face: shape, size, tone and feature placement, in fractions of the frame."""

    cx: float  # face centre, fraction of the width
    cy: float  # face centre, fraction of the height
    half_width: float  # ellipse half-width, fraction of the height
    aspect: float  # half-height / half-width
    skin: float  # skin luminance, 0..1
    background: float  # background luminance
    hair: float  # hair luminance
    hair_cover: float  # how far down the forehead the hair comes, fraction of half-height
    tint: tuple  # BGR gains of the (faint) skin colour
    eye_y: float  # eye line, fraction of the half-height above the centre
    eye_dx: float  # eye distance from the midline, fraction of the half-width
    eye_size: float  # eye half-width, fraction of the half-width
    brow_gap: float  # brow above the eye, fraction of the half-height
    brow_thick: float  # brow thickness, fraction of the half-width
    nose_y: float  # nose tip below the centre, fraction of the half-height
    mouth_y: float  # mouth line below the centre, fraction of the half-height
    mouth_w: float  # mouth half-width, fraction of the half-width
    lip: float  # lip half-thickness, fraction of the half-height
    texture: float  # skin texture contrast
    light: float  # horizontal light direction, -1..1


def draw_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one subject's appearance."""
    skin = rng.uniform(0.55, 0.78)
    background = rng.uniform(0.12, 0.32) if rng.random() < 0.5 else rng.uniform(0.85, 0.95)
    tone = rng.uniform(0.03, 0.10)
    return Appearance(
        cx=0.5 + rng.uniform(-0.05, 0.05),
        cy=0.5 + rng.uniform(-0.03, 0.03),
        half_width=rng.uniform(0.27, 0.31),
        aspect=rng.uniform(1.2, 1.35),
        skin=skin,
        background=background,
        hair=rng.uniform(0.04, 0.25),
        hair_cover=rng.uniform(0.45, 0.62),
        tint=(1.0 - tone, 1.0, 1.0 + tone * 1.3),
        eye_y=rng.uniform(0.05, 0.15),
        eye_dx=rng.uniform(0.38, 0.46),
        eye_size=rng.uniform(0.17, 0.22),
        brow_gap=rng.uniform(0.17, 0.24),
        brow_thick=rng.uniform(0.05, 0.09),
        nose_y=rng.uniform(0.25, 0.34),
        mouth_y=rng.uniform(0.50, 0.60),
        mouth_w=rng.uniform(0.34, 0.46),
        lip=rng.uniform(0.045, 0.07),
        texture=rng.uniform(0.02, 0.05),
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
    cv2.ellipse(
        img,
        (int(cx), int(cy + 1.55 * b)),
        (int(2.2 * a), int(0.75 * b)),
        0,
        0,
        360,
        float(app.hair * 0.8 + 0.1),
        -1,
    )
    cv2.rectangle(
        img,
        (int(cx - 0.45 * a), int(cy + 0.6 * b)),
        (int(cx + 0.45 * a), int(cy + 1.2 * b)),
        float(app.skin * 0.72),
        -1,
    )
    # hair behind the head
    cv2.ellipse(
        img,
        (int(cx), int(cy - 0.12 * b)),
        (int(1.1 * a), int(1.0 * b)),
        0,
        0,
        360,
        float(app.hair),
        -1,
    )
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
        cv2.ellipse(
            img,
            pt((ex, ey - eh * 0.3)),
            (int(ew * 1.5), int(eh * 2.2)),
            0,
            0,
            360,
            float(app.skin * 0.72),
            -1,
        )
        cv2.ellipse(
            img, pt((ex, ey)), (int(ew), int(eh)), 0, 0, 360, float(min(0.92, app.skin + 0.2)), -1
        )
        cv2.circle(img, pt((ex, ey)), int(eh * 0.95), float(dark), -1)
        cv2.ellipse(
            img, pt((ex, ey)), (int(ew), int(eh)), 0, 180, 360, float(dark), max(2, int(eh * 0.35))
        )
        bx, by = ex + sgn * 0.05 * a, ey - app.brow_gap * b
        bw = ew * 1.35
        curve = [
            (bx - bw, by + 0.25 * eh),
            (bx - bw * 0.3, by - 0.35 * eh),
            (bx + bw * 0.4, by - 0.3 * eh),
            (bx + bw, by + 0.35 * eh),
        ]
        cv2.polylines(
            img,
            [np.array([pt(c) for c in curve], np.int32)],
            False,
            float(dark * 1.3),
            max(2, int(app.brow_thick * a)),
        )
        marks[f"eye_{side}"] = (ex, ey)
        marks[f"brow_{side}"] = (bx, by)
        marks[f"brow_in_{side}"] = (bx - sgn * bw * 0.7, by)
        nx, ny = P(sgn * 0.13, app.nose_y)
        cv2.ellipse(
            img, pt((nx, ny)), (int(0.06 * a), int(0.035 * b)), 0, 0, 360, float(dark * 1.5), -1
        )
        cv2.line(
            img,
            pt(P(sgn * 0.1, -app.eye_y + 0.12)),
            pt((nx + sgn * 0.05 * a, ny - 0.06 * b)),
            float(app.skin * 0.72),
            max(2, int(0.035 * a)),
        )
        marks[f"nose_{side}"] = (nx, ny - 0.05 * b)
        marks[f"mouth_{side}"] = P(sgn * app.mouth_w, app.mouth_y)
    # nose bridge highlight
    cv2.line(
        img,
        pt(P(0, -app.eye_y + 0.05)),
        pt(P(0, app.nose_y - 0.05)),
        float(min(0.95, app.skin * 1.12)),
        max(2, int(0.08 * a)),
    )
    # lips and mouth line
    mx, my = P(0, app.mouth_y)
    mw, lip = app.mouth_w * a, app.lip * b
    cv2.ellipse(
        img,
        pt((mx, my - lip * 0.5)),
        (int(mw * 0.92), int(lip)),
        0,
        180,
        360,
        float(app.skin * 0.62),
        -1,
    )
    cv2.ellipse(
        img,
        pt((mx, my + lip * 0.4)),
        (int(mw * 0.85), int(lip * 1.2)),
        0,
        0,
        180,
        float(app.skin * 0.68),
        -1,
    )
    cv2.line(img, pt((mx - mw, my)), pt((mx + mw, my)), float(dark * 1.2), max(2, int(lip * 0.35)))
    marks["lip_up"] = (mx, my - lip)
    marks["lip_low"] = (mx, my + lip * 1.4)
    marks["chin"] = P(0, 0.85)
    marks["nose_tip"] = P(0, app.nose_y)
    # skin texture: smooth multiplicative noise
    noise = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 2.0 * k)
    noise /= noise.std() + 1e-6
    img = img * (1.0 + app.texture * noise * inside)
    img = cv2.resize(
        cv2.GaussianBlur(img, (0, 0), 0.8), (width, height), interpolation=cv2.INTER_AREA
    )
    landmarks = {name: (x / k, y / k) for name, (x, y) in marks.items()}
    landmarks["a"], landmarks["b"] = a / k, b / k
    return np.clip(img, 0.0, 1.0), landmarks
