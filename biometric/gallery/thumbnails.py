"""Small JPEG face crops: for the opt-in thumbnails kept with templates and for the HTML
screening report."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

THUMB_PX = 160
JPEG_QUALITY = 80
MARGIN = 0.35  # of the larger box side, on every side


def face_crop(rgb: np.ndarray, box: Sequence[float] | None, margin: float = MARGIN) -> np.ndarray:
    """The face box grown by ``margin`` and clipped to the image (the whole image without box)."""
    if box is None:
        return rgb
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    m = margin * max(x2 - x1, y2 - y1)
    h, w = rgb.shape[:2]
    top, bottom = max(0, int(y1 - m)), min(h, int(y2 + m))
    left, right = max(0, int(x1 - m)), min(w, int(x2 + m))
    if bottom - top < 2 or right - left < 2:
        return rgb
    return rgb[top:bottom, left:right]


def thumbnail_jpeg(
    rgb: np.ndarray,
    box: Sequence[float] | None = None,
    max_px: int = THUMB_PX,
    quality: int = JPEG_QUALITY,
) -> bytes:
    """The face crop, scaled down so its longer side is at most ``max_px``, as JPEG bytes."""
    crop = face_crop(rgb, box)
    scale = min(1.0, max_px / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, quality],
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
