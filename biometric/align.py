"""Align a face to an embedder's 5-point template with a similarity transform (Umeyama)."""

from __future__ import annotations

import cv2
import numpy as np

# InsightFace/ArcFace 112x112 five-point template: the alignment MobileFaceNet and SFace were
# trained on (OpenCV's FaceRecognizerSF::alignCrop uses the same points), and the reference frame
# in which biometric.conditions measures how tightly a photo is cropped.
ARCFACE_TEMPLATE = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
]
ARCFACE_SIZE = (112, 112)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    Umeyama (1991), the estimator InsightFace and OpenCV Zoo use for face alignment; it never
    shears or flips, so a face is not distorted to fit the template.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var if var > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


# What the embedder sees where its crop reaches past the image (tight crops: the Yale B and
# East-Asian webcam crops cover only the middle ~55 % of rows of a 112x112 ArcFace crop). Mid-grey
# is neutral after the embedders' normalisation. Replicating the border instead paints the same
# streaks into every tight crop, and the embedder reads them as shared features: MobileFaceNet's
# mean impostor score on yaleb_moderate was 0.369 with replicated borders and 0.171 with grey;
# on LFW photos cropped as tightly it rose from 0.013 (uncropped) to 0.261 with replicated borders
# and to 0.103 with grey, the genuine mean barely moving (0.73 -> 0.68-0.72).
OUTSIDE_FILL = (128, 128, 128)


def outside_fraction(
    shape: tuple[int, ...], landmarks: np.ndarray, template: np.ndarray, size: tuple[int, int]
) -> float:
    """Share of the aligned crop that lies outside an image of ``shape`` (what the embedder
    sees as :data:`OUTSIDE_FILL`)."""
    matrix = similarity_transform(landmarks, template)
    inside = cv2.warpAffine(
        np.ones(shape[:2], np.uint8), matrix, size, flags=cv2.INTER_NEAREST, borderValue=0
    )
    return float(1.0 - inside.mean())


def align_face(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    template: np.ndarray,
    size: tuple[int, int],
    replicate_border: bool = False,
) -> np.ndarray:
    """Warp the face so its landmarks land on ``template``; returns an RGB crop of ``size``.
    Pixels outside the image are mid-grey, or (``replicate_border``) the nearest image pixel,
    which suits measurements of the face itself (quality) rather than the embedder."""
    matrix = similarity_transform(landmarks, template)
    if replicate_border:
        return cv2.warpAffine(
            rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return cv2.warpAffine(
        rgb,
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=OUTSIDE_FILL,
    )
