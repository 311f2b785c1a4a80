"""Face embedding: aligned crops -> L2-normalised templates, in batches, on one ONNX session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biometric.align import align_face
from biometric.onnx_session import open_session


@dataclass(frozen=True)
class EmbedderSpec:
    """What the manifest says about an embedder; the pipeline needs nothing else."""

    name: str
    file: str
    input_name: str
    output_name: str
    input_size: tuple[int, int]  # width, height
    layout: str  # "NCHW" or "NHWC"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    template: np.ndarray  # (5, 2) landmark positions in the aligned crop
    embedding_size: int


class Embedder:
    def __init__(self, spec: EmbedderSpec, models_dir: Path, threads: int = 1) -> None:
        self.spec = spec
        self._session = open_session(models_dir / spec.file, threads)
        self._mean = np.asarray(spec.mean, dtype=np.float32)
        self._scale = 1.0 / np.asarray(spec.std, dtype=np.float32)

    def align(
        self, rgb: np.ndarray, landmarks: np.ndarray, replicate_border: bool = False
    ) -> np.ndarray:
        return align_face(
            rgb, landmarks, self.spec.template, self.spec.input_size, replicate_border
        )

    def network_input(self, batch: np.ndarray) -> np.ndarray:
        """Aligned RGB crops (N x H x W x 3 uint8) -> the network's normalised input tensor."""
        x = (batch.astype(np.float32) - self._mean) * self._scale
        if self.spec.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def embed_crops(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed aligned RGB crops (N x H x W x 3 uint8) -> (N, D) float32, unit length."""
        batch = np.asarray(crops)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.shape[0] == 0:
            return np.empty((0, self.spec.embedding_size), dtype=np.float32)
        out = self._session.run(
            [self.spec.output_name], {self.spec.input_name: self.network_input(batch)}
        )[0]
        out = out.reshape(out.shape[0], -1).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-10)
