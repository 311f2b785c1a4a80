"""Genuine/impostor evaluation on folders of real photos (ISO/IEC 19795-1 terms).

A *set* is a folder under the data root; its identities are the sub-folders of ``<set>/identities``
if that exists, else of ``<set>`` itself. Every image is embedded once (cached on disk per model
version); all same-identity pairs are genuine, all cross-identity pairs impostor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biometric.decode import read_image
from biometric.errors import ImageDecodeError
from biometric.pipeline import CHIP, FrontEnd, Pipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".webp", ".jp2", ".j2k", ".bmp"}


@dataclass(frozen=True)
class IdentitySet:
    name: str
    images: list[Path]
    labels: list[str]


def discover_sets(data_dir: Path) -> list[IdentitySet]:
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"data folder {data_dir} does not exist; set BIOMETRIC_DATA_DIR to the shared photos"
        )
    sets = []
    for set_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        root = set_dir / "identities" if (set_dir / "identities").is_dir() else set_dir
        images, labels = [], []
        for ident in sorted(p for p in root.iterdir() if p.is_dir()):
            for img in sorted(ident.iterdir()):
                if img.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(img)
                    labels.append(f"{set_dir.name}/{ident.name}")
        if len(set(labels)) >= 2:
            sets.append(IdentitySet(set_dir.name, images, labels))
    return sets


@dataclass
class EmbeddedSet:
    name: str
    images: list[Path]
    labels: np.ndarray  # (N,) str
    embeddings: np.ndarray  # (N, D) float32; NaN rows where no usable face was found

    @property
    def acquired(self) -> np.ndarray:
        return ~np.isnan(self.embeddings[:, 0])

    @property
    def failure_to_acquire(self) -> float:
        return float(1.0 - self.acquired.mean()) if len(self.images) else 0.0


def embedding_cache_key(pipeline: Pipeline, images: list[Path], *extra: object) -> str:
    """A key for cached embeddings: changes whenever an embedding could change (detector and
    active embedder versions, detection settings, the files), plus the caller's ``extra``."""
    active = {pipeline.embedder.spec.name}
    if pipeline.secondary is not None:
        active.add(pipeline.secondary.spec.name)
    s = pipeline.settings
    fast = s.front_end is not FrontEnd.MTCNN
    versions = {
        name: v
        for name, v in pipeline.model_versions.items()
        if name.startswith("mtcnn") or name in active or (fast and name == "blazeface")
    }
    settings = repr((s.detector, s.pad_ratios, s.portrait_thresholds, s.portrait_min_face_fraction))
    if fast:  # MTCNN-only keys stay as they were, so their caches stay valid
        settings += repr((s.front_end, s.fast, s.fast_pad_ratio))
    stat = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in images]
    blob = json.dumps([versions, sorted(active), settings, stat, [repr(e) for e in extra]])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def embed_set(
    pipeline: Pipeline,
    ident: IdentitySet,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> EmbeddedSet:
    """Embed every image of a set as a chip-like portrait (lenient size bounds)."""
    cache = None
    if cache_dir is not None:
        cache = cache_dir / f"{ident.name}-{embedding_cache_key(pipeline, ident.images)}.npy"
        if cache.is_file():
            return EmbeddedSet(ident.name, ident.images, np.asarray(ident.labels), np.load(cache))
    dim = pipeline.embedder.spec.embedding_size
    out = np.full((len(ident.images), dim), np.nan, dtype=np.float32)
    for i, path in enumerate(ident.images):
        try:
            analysis = pipeline.template(read_image(path).rgb, CHIP)
        except ImageDecodeError:
            analysis = None
        if analysis is not None and analysis.embedding is not None:
            out[i] = analysis.embedding
        if progress:
            progress(1)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, out)
    return EmbeddedSet(ident.name, ident.images, np.asarray(ident.labels), out)


@dataclass(frozen=True)
class PairScores:
    genuine: np.ndarray
    impostor: np.ndarray


def pair_scores(sets: list[EmbeddedSet]) -> PairScores:
    """All genuine and all impostor pairs among acquired images, within each set."""
    genuine, impostor = [], []
    for s in sets:
        keep = s.acquired
        emb, labels = s.embeddings[keep], s.labels[keep]
        sims = emb @ emb.T
        same = labels[:, None] == labels[None, :]
        upper = np.triu(np.ones_like(same, dtype=bool), k=1)
        genuine.append(sims[same & upper])
        impostor.append(sims[~same & upper])
    return PairScores(np.concatenate(genuine), np.concatenate(impostor))


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest threshold whose false-match rate on these impostor scores is <= fmr.

    A pair matches when score >= threshold, so the threshold sits just above the
    (k+1)-th highest impostor score, k = floor(fmr * n).
    """
    ordered = np.sort(impostor)[::-1]
    k = int(np.floor(fmr * len(ordered)))
    if k >= len(ordered):
        return float(ordered[-1])
    return float(np.nextafter(np.float32(ordered[k]), np.float32(np.inf)))


def rate_at_or_above(scores: np.ndarray, threshold: float) -> float:
    return float((scores >= threshold).mean()) if len(scores) else float("nan")
