"""dlib's face-chip extraction for the 5-point landmark model, in numpy (no dlib import).

Mirrors ``dlib::get_face_chip_details`` and ``dlib::extract_image_chip`` (the path behind
``dlib.get_face_chip`` and ``face_recognition_model_v1.compute_face_descriptor``,
dlib/image_transforms/interpolation.h), step for step, because dlib's face descriptor network
was trained on exactly these chips:

- the chip is placed by a least-squares similarity transform (Umeyama) from dlib's 5-point
  template, shrunk by ``padding`` on every side, onto the detected landmarks;
- the chip's pixel grid spans a rectangle of ``size * scale - 1`` image pixels over
  ``size - 1`` steps (``centered_drect``), so the effective scale is slightly off ``scale``;
- when the chip is more than 2x smaller than its source region, dlib first builds a
  ``pyramid_down<2>`` image pyramid (5-tap [1 4 6 4 1] binomial filter in integer arithmetic,
  cropped to the region) and samples the level that is still larger than the chip;
- sampling is bilinear in double precision and *truncated* to uint8 (not rounded); a sample
  whose 2x2 neighbourhood is not entirely inside the image is black.

Not reproduced: dlib's plain-copy shortcut for a chip with angle exactly 0 and scale exactly 1
(impossible for a fitted face). Where a flat 2x2 cell interpolates to an integer, dlib's float64
value can land 1 ulp either side and truncation flips by one grey level; our sample coordinates
differ from dlib's in the last bits, so a handful of such pixels per face may differ by 1.

Points and images use dlib's conventions: (x, y) = (column, row) in pixels, RGB uint8 images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# dlib's 5-point chip template in the unit square (no padding), in the 5-point model's order:
# 0, 1 = outer and inner corner of the eye on the image's right, 2, 3 = outer and inner corner
# of the eye on the image's left, 4 = bottom of the nose.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

Rect = tuple[float, float, float, float]  # left, top, right, bottom (inclusive, dlib style)


@dataclass(frozen=True)
class ChipDetails:
    """dlib::chip_details: a rectangle in the image, rotated by ``angle`` about its centre."""

    rect: Rect
    angle: float
    rows: int
    cols: int


def chip_template(size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The 5 template points in chip pixel coordinates, as get_face_chip_details places them."""
    return (padding + TEMPLATE_5) / (2 * padding + 1) * size


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib::find_similarity_transform (Umeyama, eqs. 34-43): returns (A, t), dst ~ A @ src + t."""
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    sigma_src = (src_c**2).sum() / len(src)
    cov = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    # Reflection guard as in dlib; numpy sorts singular values, so the smaller one is d[1].
    if np.linalg.det(cov) < 0 or (
        np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0
    ):
        s[1, 1] = -1
    rot = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / sigma_src if sigma_src != 0 else 1.0
    return c * rot, mean_dst - c * rot @ mean_src


def get_face_chip_details(shape: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """dlib::get_face_chip_details for a (5, 2) landmark array in dlib's 5-point order."""
    points = np.asarray(shape, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected dlib's 5-point shape as a (5, 2) array, got {points.shape}")
    matrix, offset = _similarity(chip_template(size, padding), points)
    # chip_details(chip_points, img_points, dims): keep rotation and scale as an angle and a
    # rectangle of size*scale pixels centred on the image of the chip's centre.
    angle = math.atan2(matrix[1, 0], matrix[0, 0])
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    cx, cy = matrix @ np.array([size / 2.0, size / 2.0]) + offset
    half = (size * scale - 1) / 2  # centered_drect shrinks width and height by one pixel
    return ChipDetails((cx - half, cy - half, cx + half, cy + half), angle, size, size)


def _rotate(center: tuple[float, float], p: tuple[float, float], angle: float) -> np.ndarray:
    # dlib::rotate_point: rotate p about center by angle (radians).
    sin, cos = math.sin(angle), math.cos(angle)
    x, y = p[0] - center[0], p[1] - center[1]
    return np.array([cos * x - sin * y + center[0], sin * x + cos * y + center[1]])


def _center(rect: Rect) -> tuple[float, float]:
    return (rect[0] + rect[2]) / 2.0, (rect[1] + rect[3]) / 2.0


def _corners(rect: Rect, angle: float) -> np.ndarray:
    """(4, 2): top-left, top-right, bottom-left, bottom-right corners rotated about the centre."""
    left, top, right, bottom = rect
    c = _center(rect)
    corners = ((left, top), (right, top), (left, bottom), (right, bottom))
    return np.array([_rotate(c, p, angle) for p in corners])


def chip_to_image_matrix(details: ChipDetails) -> np.ndarray:
    """2x3 affine taking chip pixel (x, y) to image coordinates (dlib's chip placement)."""
    tl, tr, bl, _ = _corners(details.rect, details.angle)
    return np.column_stack([(tr - tl) / (details.cols - 1), (bl - tl) / (details.rows - 1), tl])


def image_to_chip_matrix(details: ChipDetails) -> np.ndarray:
    """2x3 similarity taking image (x, y) to chip pixels: ``cv2.warpAffine(img, M, (size, size))``
    lands every pixel where dlib's chip puts it (dlib's pyramid and truncation aside)."""
    forward = np.vstack([chip_to_image_matrix(details), [0.0, 0.0, 1.0]])
    return np.linalg.inv(forward)[:2]


def face_chip_matrix(shape: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Image -> chip 2x3 matrix for a 5-point shape, for the align stage."""
    return image_to_chip_matrix(get_face_chip_details(shape, size, padding))


# ---------------------------------------------------------------------------------------------
# extract_image_chips, for one chip.


def _rect_down(rect: Rect) -> Rect:
    # pyramid_down<2>::rect_down: p / 2 - (1.25, 0.75) for both corners.
    left, top, right, bottom = rect
    return (left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75)


def _area(rect: Rect) -> float:
    # drectangle::area: inclusive width and height, zero when empty.
    left, top, right, bottom = rect
    if top > bottom or left > right:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _lround(v: float) -> int:
    # C's lround: halves away from zero (Python's round() goes to even).
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _pyramid_down(img: np.ndarray) -> np.ndarray:
    """pyramid_down<2> for RGB images: separable [1 4 6 4 1] filter, keep every other sample,
    integer sums divided by 256 with truncation (dlib/image_transforms/image_pyramid.h)."""
    rows, cols = img.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    x = img.astype(np.int32)
    taps = (1, 4, 6, 4, 1)
    # Row filter: output column c reads input columns 2c .. 2c+4.
    tmp = sum(w * x[:, k : k + 2 * out_cols : 2] for k, w in enumerate(taps))
    # Column filter: output row r reads filtered rows 2r .. 2r+4.
    down = sum(w * tmp[k : k + 2 * out_rows : 2] for k, w in enumerate(taps))
    return (down // 256).astype(np.uint8)


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """dlib::interpolate_bilinear at float64 points; black where the 2x2 cell leaves the image."""
    left, top = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < img.shape[1]) & (top + 1 < img.shape[0])
    left, top = np.where(inside, left, 0), np.where(inside, top, 0)
    lr = (xs - left)[..., None]
    tb = (ys - top)[..., None]
    src = img.astype(np.float64)
    tl, tr = src[top, left], src[top, left + 1]
    bl, br = src[top + 1, left], src[top + 1, left + 1]
    # Same expression and order as dlib, so the float64 result (and its truncation) match.
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    return np.where(inside[..., None], value.astype(np.uint8), 0).astype(np.uint8)


def _region(img_shape: tuple[int, ...], details: ChipDetails, grow: float) -> tuple[int, ...]:
    """Integer box (left, top, right, bottom) of the rotated chip grown by ``grow``, clipped."""
    corners = _corners(details.rect, details.angle)
    left, top = corners.min(axis=0) - grow
    right, bottom = corners.max(axis=0) + grow
    left, top = max(left, 0.0), max(top, 0.0)
    right, bottom = min(right, img_shape[1] - 1.0), min(bottom, img_shape[0] - 1.0)
    box = tuple(_lround(v) for v in (left, top, right, bottom))
    if box[0] > box[2] or box[1] > box[3]:
        raise ValueError("the face chip lies entirely outside the image")
    return box


def extract_image_chip(img: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib::extract_image_chip with bilinear interpolation; ``img`` is H x W x 3 uint8 RGB."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError("expected an H x W x 3 uint8 RGB image")
    size = details.rows * details.cols
    # The margin dlib crops around the chip: 2 pixels, doubled (+2) per pyramid level needed.
    grow = 2.0
    rect = _rect_down(details.rect)
    while _area(rect) > size:
        rect = _rect_down(rect)
        grow = grow * 2 + 2
    left, top, right, bottom = _region(img.shape, details, grow)
    source = img[top : bottom + 1, left : right + 1]
    # The level to sample: the smallest one still larger than the chip.
    rect = (
        details.rect[0] - left,
        details.rect[1] - top,
        details.rect[2] - left,
        details.rect[3] - top,
    )
    level = -1
    while _area(_rect_down(rect)) > size:
        level += 1
        rect = _rect_down(rect)
    for _ in range(level + 1):
        source = _pyramid_down(source)
    # Chip pixel (c, r) -> source point, from the rotated rectangle's corners.
    tl, tr, bl, _ = _corners(rect, details.angle)
    cols, rows = np.meshgrid(
        np.arange(details.cols, dtype=np.float64), np.arange(details.rows, dtype=np.float64)
    )
    step_x = (tr - tl) / (details.cols - 1)
    step_y = (bl - tl) / (details.rows - 1)
    xs = tl[0] + cols * step_x[0] + rows * step_y[0]
    ys = tl[1] + cols * step_x[1] + rows * step_y[1]
    return _bilinear(source, xs, ys)


def get_face_chip(
    img: np.ndarray, shape: np.ndarray, size: int = 150, padding: float = 0.25
) -> np.ndarray:
    """``dlib.get_face_chip(img, shape, size, padding)`` for an RGB uint8 image."""
    return extract_image_chip(img, get_face_chip_details(shape, size, padding))
