"""Calibrate decision thresholds at stated false-match rates on real genuine/impostor pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from biometric.evaluation import (
    EmbeddedSet,
    PairScores,
    discover_sets,
    embed_set,
    pair_scores,
    rate_at_or_above,
    threshold_at_fmr,
)
from biometric.manifest import CalibratedThreshold, FusionSpec, save_manifest
from biometric.pipeline import Pipeline

DEFAULT_FMRS = (1e-2, 1e-3, 1e-4)
FUSION_EMBEDDERS = ("dlib_resnet", "mobilefacenet")
# Equal weights, fixed in advance rather than fitted, so the only parameters learnt from the
# calibration photos are each model's impostor mean and spread.
FUSION_WEIGHTS = (0.5, 0.5)


def _thresholds(
    scores: PairScores, fmrs: tuple[float, ...], datasets: list[str]
) -> list[CalibratedThreshold]:
    """An FMR is only calibrated when the impostor pairs can support it: at least 10 impostor
    scores must lie above the threshold's rank (1e-4 needs 100k impostor pairs)."""
    out = []
    for fmr in fmrs:
        if fmr * len(scores.impostor) < 10:
            continue
        threshold = threshold_at_fmr(scores.impostor, fmr)
        out.append(
            CalibratedThreshold(
                fmr=fmr,
                threshold=round(threshold, 6),
                tar=round(rate_at_or_above(scores.genuine, threshold), 6),
                genuine_pairs=len(scores.genuine),
                impostor_pairs=len(scores.impostor),
                datasets=datasets,
            )
        )
    return out


def calibrate(
    pipeline: Pipeline,
    data_dir: Path,
    fmrs: tuple[float, ...] = DEFAULT_FMRS,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[CalibratedThreshold]:
    """Thresholds for the pipeline's embedder, pooled over every identity set in ``data_dir``."""
    sets = discover_sets(data_dir)
    embedded = [embed_set(pipeline, s, cache_dir, progress) for s in sets]
    return _thresholds(pair_scores(embedded), fmrs, [s.name for s in sets])


def calibrate_and_record(pipeline: Pipeline, data_dir: Path, **kwargs) -> list[CalibratedThreshold]:
    thresholds = calibrate(pipeline, data_dir, **kwargs)
    entry = pipeline.manifest.get(pipeline.embedder.spec.name)
    entry.thresholds = thresholds
    save_manifest(pipeline.manifest, pipeline.models_dir)
    return thresholds


def calibrate_fusion(
    models_dir: Path,
    data_dir: Path,
    fmrs: tuple[float, ...] = DEFAULT_FMRS,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> FusionSpec:
    """Fit the fusion's normalisation and thresholds on images both embedders acquired, and
    record them in the manifest."""
    sets = discover_sets(data_dir)
    pipelines = [Pipeline(models_dir, embedder=name) for name in FUSION_EMBEDDERS]
    per_model = [[embed_set(p, s, cache_dir, progress) for s in sets] for p in pipelines]
    both = [np.logical_and.reduce([m[i].acquired for m in per_model]) for i in range(len(sets))]

    def only_common(e: EmbeddedSet, keep: np.ndarray) -> EmbeddedSet:
        return replace(e, embeddings=np.where(keep[:, None], e.embeddings, np.nan))

    scores = [
        pair_scores([only_common(e, k) for e, k in zip(m, both, strict=True)]) for m in per_model
    ]
    spec = FusionSpec(
        embedders=list(FUSION_EMBEDDERS),
        weights=list(FUSION_WEIGHTS),
        impostor_mean=[float(s.impostor.mean()) for s in scores],
        impostor_std=[float(s.impostor.std()) for s in scores],
    )

    def fused(kind: str) -> np.ndarray:
        return spec.fuse([getattr(s, kind) for s in scores])

    spec.thresholds = _thresholds(
        PairScores(fused("genuine"), fused("impostor")), fmrs, [s.name for s in sets]
    )
    manifest = pipelines[0].manifest
    manifest.fusion = spec
    save_manifest(manifest, models_dir)
    return spec
