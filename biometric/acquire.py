"""Acquisition: every whole face in an image, whatever its framing.

Images come framed in every way: counter frames (640x480, the face a fifth of the width), ID and
web portraits (LFW-like 250x250, the face ~40 % of the width) and tight crops (Yale B, East-Asian
webcam crops 168x193, the face wider than the frame). Nothing here depends on how large the face
is relative to the frame: a rule of that kind, fitted to tight crops, refused 97.6 % of colour
portraits (see README, "Acquisition and calibration").

Small images (tight crops, chip portraits) give MTCNN too little context, so they are padded with
replicated borders and detected again at a few margins. In a tight crop a *part* of the face (an
eye, the nose) can pass the cascade with a high score: O-Net regresses five landmarks in the
canonical layout whatever it is shown, so neither the score nor the landmark geometry tells a part
from a face (measured on yaleb_moderate: inter-eye / box width 0.34-0.46 for parts against
0.33-0.58 for whole faces across the colour sets). What does tell them apart is what a part is:
a region *inside* a larger face. So a small image is detected at two margins; when they agree
(same largest face), that is the answer; when they disagree, every margin is tried, and any face
lying inside a much larger confident face is dropped as a part of it.

Measured with MTCNN on every image of yaleb_moderate (458, detections at each margin recorded
once and the rule replayed on them): 11 images with no whole face at any margin (2.4 %), 3 left
with a part (no margin finds the whole face), 2.27 detector runs per image; 2.0 runs and no part
chosen on asian_celeb and fr_examples. Through the shipped pipeline (README, "Acquisition and
calibration"): failure to acquire 0 % on lfw_dev, asian_celeb and fr_examples, 1.0 % on
yaleb_moderate with the BlazeFace front end (2.5 % with MTCNN alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from biometric.detect import MtcnnDetector
from biometric.faces import Face


@dataclass(frozen=True)
class AcquisitionConfig:
    # Images whose long side is at most this are padded before detection: tight crops and chip
    # portraits (ICAO DG2 is typically 240x320 or smaller). Larger frames carry their own context.
    pad_below_px: int = 400
    # Margins, as a fraction of the long side, tried in this order. MTCNN's response depends on
    # the margin (measured on yaleb_moderate: 85 % found with 0.2 alone, 97.6 % with all four).
    pad_ratios: tuple[float, ...] = (0.2, 0.3, 0.15, 0.45)
    # A padded small image holds one large face, so false positives are unlikely: looser cascade
    # thresholds than MTCNN's defaults (0.6, 0.7, 0.7) for the recall of hard-lit crops.
    portrait_thresholds: tuple[float, float, float] = (0.5, 0.6, 0.6)
    # Two margins agree when their largest confident faces overlap this much (IoU).
    agree_iou: float = 0.5
    # A face is a part of another when this share of its box lies inside the other's box and
    # the other is at least ``part_area_ratio`` times larger (an eye box is ~1/10 of the face's).
    part_overlap: float = 0.8
    part_area_ratio: float = 2.0


def _intersection(a: Face, b: Face) -> float:
    w = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    h = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return max(w, 0.0) * max(h, 0.0)


def _iou(a: Face, b: Face) -> float:
    inter = _intersection(a, b)
    return inter / max(a.area + b.area - inter, 1e-9)


def drop_face_parts(faces: list[Face], confident: float, cfg: AcquisitionConfig) -> list[Face]:
    """Faces that are not parts of a larger confident face (nor duplicates of a better one)."""
    big = [f for f in faces if f.score >= confident]
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        inside_larger = any(
            g is not f
            and g.area >= cfg.part_area_ratio * f.area
            and _intersection(f, g) >= cfg.part_overlap * f.area
            for g in big
        )
        duplicate = any(_iou(f, k) > cfg.agree_iou for k in kept)
        if not inside_larger and not duplicate:
            kept.append(f)
    return kept


def unpad(faces: list[Face], pad: int, width: int, height: int) -> list[Face]:
    """Faces found in an image padded by ``pad`` on every side, in the original's pixels."""
    out = []
    for f in faces:
        x1, y1, x2, y2 = (v - pad for v in f.box)
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0))
        out.append(Face(box=box, score=f.score, landmarks=f.landmarks - pad))
    return out


def _detect_padded(
    detector: MtcnnDetector, rgb: np.ndarray, ratio: float, cfg: AcquisitionConfig
) -> list[Face]:
    height, width = rgb.shape[:2]
    pad = round(ratio * max(height, width))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return unpad(detector.detect(padded, cfg.portrait_thresholds), pad, width, height)


def find_faces(
    detector: MtcnnDetector, rgb: np.ndarray, confident: float, cfg: AcquisitionConfig
) -> list[Face]:
    """Every whole face in ``rgb``, best score first. ``confident`` is the score from which a
    face counts as found (the subject policy's minimum)."""
    height, width = rgb.shape[:2]
    if max(height, width) > cfg.pad_below_px:
        return drop_face_parts(detector.detect(rgb), confident, cfg)
    pool: list[Face] = []
    first: Face | None = None
    for ratio in cfg.pad_ratios:
        faces = _detect_padded(detector, rgb, ratio, cfg)
        pool += faces
        sure = [f for f in faces if f.score >= confident]
        if not sure:
            continue
        largest = max(sure, key=lambda f: f.area)
        if first is None:
            first = largest
        elif _iou(first, largest) > cfg.agree_iou:
            break
    return drop_face_parts(pool, confident, cfg)
