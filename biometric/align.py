"""Align a face to an embedder's 5-point template with a similarity transform (Umeyama)."""

from __future__ import annotations

import cv2
import numpy as np


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


def align_face(
    rgb: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Warp the face so its landmarks land on ``template``; returns an RGB crop of ``size``."""
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(
        rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
