"""Passive liveness with the MiniFASNet-style model of npm ``faceplugin-face-recognition-js``.

Reproduces the package's own preprocessing (lib/fr_liveness.js, version 0.0.1), so its
class order keeps its meaning:

1. ``alignLivenessImage(image, [x, y, w, h], 2.7)``: the detector box (integer x1, y1 and
   w = x2 - x1, h = y2 - y1) is enlarged about its centre by
   ``min((H-1)/h, (W-1)/w, 2.7)``, moved back inside the image (not shrunk), and cropped with
   ``cv.Rect(max(int(x), 0), max(int(y), 0), min(int(w'), W-1), min(int(h'), H-1))``;
2. ``cv.resize`` to 128x128 (OpenCV's default, bilinear);
3. network input: the canvas pixels in R, G, B order as raw 0-255 floats, NCHW, no
   normalisation;
4. softmax over the 3 outputs; the package reports ``score_arr[0]``, the probability of
   class 0, as the face's liveness score (higher is more live).

The package documents neither the training data nor the threshold; ours is chosen by
measurement on the shared photos (BENCHMARKS.md, quality benchmark), and is read from the
manifest.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from biometric.liveness.base import LivenessResult
from biometric.onnx_session import open_session

_DEFAULT_SIZE = 128
_DEFAULT_SCALE = 2.7  # fr_liveness.js: alignLivenessImage(img, bbox, 2.7)
_DEFAULT_LIVE_CLASS = 0  # fr_liveness.js: result.push([..., score_arr[0]])


def enlarged_crop_box(
    box: tuple[float, float, float, float], width: int, height: int, scale: float = _DEFAULT_SCALE
) -> tuple[int, int, int, int]:
    """The package's crop for a detector box (x1, y1, x2, y2): (left, top, right, bottom),
    right/bottom exclusive. Follows alignLivenessImage line by line, including its quirks
    (the width is clamped to W-1, not to what is left of the image after ``left``)."""
    # parseInt() on the detector's floats truncates toward zero, as int() does.
    x1, y1, x2, y2 = (int(v) for v in box)
    box_w, box_h = abs(x2 - x1), abs(y2 - y1)
    if box_w <= 0 or box_h <= 0:
        raise ValueError(f"face box {box} is empty")
    s = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * s, box_h * s
    cx, cy = box_w / 2 + x1, box_h / 2 + y1
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    rx, ry = max(int(left), 0), max(int(top), 0)
    rw, rh = min(int(right - left), width - 1), min(int(bottom - top), height - 1)
    # cv.Rect outside the Mat makes opencv.js throw; keep the same rectangle where it fits.
    rw, rh = min(rw, width - rx), min(rh, height - ry)
    return rx, ry, rx + rw, ry + rh


def network_input(crop_rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HxWx3 (or a batch NxHxWx3) -> float32 NCHW, raw 0-255 values."""
    batch = crop_rgb[None] if crop_rgb.ndim == 3 else crop_rgb
    return np.ascontiguousarray(batch.astype(np.float32).transpose(0, 3, 1, 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class MiniFasNetDetector:
    """One onnxruntime session, reused for every call."""

    higher_is_live = True

    def __init__(self, onnx_path: Path, facts: dict, threads: int = 1) -> None:
        self._session = open_session(Path(onnx_path), threads)
        self._input_name = str(facts.get("input_name", "input"))
        self._output_name = str(facts.get("output_name", "output"))
        self._size = int(facts.get("input_size", [_DEFAULT_SIZE])[0])
        self._scale = float(facts.get("crop_scale", _DEFAULT_SCALE))
        self._live_class = int(facts.get("live_class", _DEFAULT_LIVE_CLASS))
        # No package threshold exists; the manifest records the measured one.
        self.threshold = float(facts["threshold"])

    def crop(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        height, width = image_rgb.shape[:2]
        x1, y1, x2, y2 = enlarged_crop_box(box, width, height, self._scale)
        return cv2.resize(
            image_rgb[y1:y2, x1:x2], (self._size, self._size), interpolation=cv2.INTER_LINEAR
        )

    def probabilities(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Softmax class probabilities (N x 3) for 128x128 RGB crops."""
        logits = self._session.run(
            [self._output_name], {self._input_name: network_input(crops_rgb)}
        )
        return softmax(logits[0])

    def score(
        self, image_rgb: np.ndarray, box: tuple[float, float, float, float]
    ) -> LivenessResult:
        """Probability that the face in ``box`` is live (higher is more live)."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        crop_box = enlarged_crop_box(box, width, height, self._scale)
        p_live = float(self.probabilities(self.crop(image_rgb, box))[0, self._live_class])
        return LivenessResult(
            score=p_live,
            is_live=p_live >= self.threshold,
            sharpness=None,
            is_sharp=None,
            threshold=self.threshold,
            crop_box=crop_box,
            higher_is_live=self.higher_is_live,
        )
