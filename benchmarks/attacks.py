"""Proxy presentation attacks rendered from real bona fide photos (labelled as a proxy).

We have no recorded attacks (no one printed a photo or held a phone to our camera), so each
bona fide photo is re-rendered as a camera would see it presented:

- print: the photo printed with a CMYK-like halftone screen on off-white paper with fibre
  texture, a white paper margin, held slightly tilted in front of a background, then
  re-captured (perspective, defocus, sensor noise, JPEG);
- screen: the photo shown on a phone/monitor (RGB sub-pixel grid and the moire it makes with
  the camera's sampling, a blue-ish white point, a specular glare patch, a black bezel around
  the panel), then re-captured the same way.

These images say how a model reacts to such renderings; they are not ISO/IEC 30107-3 attack
instruments and cannot show how a model resists a determined attacker.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def _recapture(canvas: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """What the counter camera makes of the presented medium: a slight perspective (the medium
    is held by hand), resampling to the camera's frame size, defocus, noise, JPEG."""
    h, w = canvas.shape[:2]
    j = 0.04 * min(h, w)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-j, j, src.shape).astype(np.float32)
    warp = cv2.getPerspectiveTransform(src, dst)
    border = tuple(int(v) for v in rng.integers(30, 110, 3))
    out = cv2.warpPerspective(canvas, warp, (w, h), borderValue=border)
    out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
    out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.2)))
    noisy = out.astype(np.float32) + rng.normal(0, 3.0, out.shape)
    out = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _halftone(channel: np.ndarray, period: float, angle_deg: float) -> np.ndarray:
    """Ink coverage (0..1) of an amplitude-modulated dot screen for one ink channel."""
    h, w = channel.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    a = np.deg2rad(angle_deg)
    u = (xx * np.cos(a) + yy * np.sin(a)) * (2 * np.pi / period)
    v = (-xx * np.sin(a) + yy * np.cos(a)) * (2 * np.pi / period)
    screen = (np.cos(u) * np.cos(v) + 1) / 2  # 0..1 dot profile
    return (channel > screen).astype(np.float32)


def print_attack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    up = cv2.resize(rgb, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    cmy = 1.0 - up
    k = cmy.min(axis=2)
    # Classic screen angles: C 15, M 75, Y 0, K 45 degrees.
    inks = [_halftone(cmy[..., i], 4.0, ang) for i, ang in enumerate((15.0, 75.0, 0.0))] + [
        _halftone(k, 4.0, 45.0)
    ]
    paper = 0.93 + 0.03 * cv2.GaussianBlur(
        rng.normal(0, 1, k.shape).astype(np.float32), (0, 0), 1.5
    )
    paper_rgb = np.stack([paper, paper * 0.99, paper * 0.95], axis=-1)
    printed = paper_rgb * (1 - 0.8 * np.stack(inks[:3], axis=-1)) * (1 - 0.7 * inks[3][..., None])
    printed = cv2.GaussianBlur(printed, (0, 0), 0.8)  # ink spread
    margin = int(0.06 * max(printed.shape[:2]))
    sheet = cv2.copyMakeBorder(
        printed, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(0.93, 0.92, 0.88)
    )
    canvas = (np.clip(sheet, 0, 1) * 255).astype(np.uint8)
    return _recapture(canvas, (w, h), rng)


def screen_attack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = 3  # each source pixel becomes a 3x3 block of R, G, B sub-pixel columns
    up = cv2.resize(rgb, (w * s, h * s), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    mask = np.zeros((1, s, 3), np.float32)
    for c in range(3):
        mask[0, c, c] = 1.0
    grid = np.tile(mask, (h * s, w, 1)) * 0.75 + 0.25
    grid[::s] *= 0.6  # dark row gaps between pixels
    panel = up * grid * np.array([0.93, 1.0, 1.1], np.float32)  # cool white point
    yy, xx = np.mgrid[: h * s, : w * s].astype(np.float32)
    gx, gy = rng.uniform(0.2, 0.8) * w * s, rng.uniform(0.1, 0.5) * h * s
    glare = 110 * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.18 * w * s) ** 2))
    panel = np.clip(panel * 1.15 + glare[..., None], 0, 255)
    bezel = int(0.07 * max(panel.shape[:2]))
    framed = cv2.copyMakeBorder(
        panel.astype(np.uint8), bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT, value=(18, 18, 20)
    )
    return _recapture(framed, (w, h), rng)


ATTACKS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "print": print_attack,
    "screen": screen_attack,
}
