"""Calibrate decision thresholds at stated false-match rates on real genuine/impostor pairs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from biometric.evaluation import (
    discover_sets,
    embed_set,
    pair_scores,
    rate_at_or_above,
    threshold_at_fmr,
)
from biometric.manifest import CalibratedThreshold, save_manifest
from biometric.pipeline import Pipeline

DEFAULT_FMRS = (1e-2, 1e-3, 1e-4)


def calibrate(
    pipeline: Pipeline,
    data_dir: Path,
    fmrs: tuple[float, ...] = DEFAULT_FMRS,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[CalibratedThreshold]:
    """Thresholds for the pipeline's embedder, pooled over every identity set in ``data_dir``.

    An FMR is only calibrated when the impostor pairs can support it: at least 10 impostor
    scores must lie above the threshold's rank (so 1e-4 needs 100k impostor pairs), otherwise
    the figure would be read off a handful of pairs.
    """
    sets = discover_sets(data_dir)
    embedded = [embed_set(pipeline, s, cache_dir, progress) for s in sets]
    scores = pair_scores(embedded)
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
                datasets=[s.name for s in sets],
            )
        )
    return out


def calibrate_and_record(pipeline: Pipeline, data_dir: Path, **kwargs) -> list[CalibratedThreshold]:
    thresholds = calibrate(pipeline, data_dir, **kwargs)
    entry = pipeline.manifest.get(pipeline.embedder.spec.name)
    entry.thresholds = thresholds
    save_manifest(pipeline.manifest, pipeline.models_dir)
    return thresholds
