"""How the shipped decision does on labelled photos: the figures ``biometric evaluate`` prints,
the accuracy benchmark tabulates and the tests check. One source at a time; nothing pooled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biometric.calibrate import fmr_ratio, option_scores
from biometric.decide import OperatingPoint
from biometric.evaluation import AcquiredSet, IdentitySet, PairScores, acquire_sets
from biometric.pipeline import Pipeline
from biometric.rates import best_accuracy, tar_at_fmr, wilson_interval

REPORTED_FMRS = {"1e-3": 1e-3, "1e-4": 1e-4}


def source_figures(
    acq: AcquiredSet, scores: PairScores, point: OperatingPoint, role: str
) -> dict[str, Any]:
    """FTA, retakes, error rates at the shipped operating point (each pair at its condition's
    threshold) and TAR at fixed FMRs for one source. Rates are over acquired images
    (ISO/IEC 19795-1); None where the data cannot support them."""
    gen, imp, claim = scores.genuine, scores.impostor, point.fmr
    g_thr = point.pair_thresholds(scores.genuine_conditions, len(gen))
    i_thr = point.pair_thresholds(scores.impostor_conditions, len(imp))
    false_matches = int((imp >= i_thr).sum())
    fmr = false_matches / len(imp) if len(imp) else None
    figures: dict[str, Any] = {
        "name": acq.ident.name,
        "images": len(acq.ident.images),
        "fta": acq.failure_to_acquire,
        "retake_rate": acq.retake_rate(role),
        "genuine": len(gen),
        "impostor": len(imp),
        "fnmr_at_threshold": float((gen < g_thr).mean()) if len(gen) else None,
        "fmr_at_threshold": fmr,
        "fmr_ci": list(wilson_interval(false_matches, len(imp))) if len(imp) else None,
        "fmr_ratio": fmr_ratio(fmr, claim, len(imp)),
        "tar_at_fmr": {k: tar_at_fmr(gen, imp, f) for k, f in REPORTED_FMRS.items()},
    }
    if acq.ident.pairs is not None:
        figures.update(pairs_accuracy(acq, scores, g_thr, i_thr))
    return figures


def pairs_accuracy(
    acq: AcquiredSet, scores: PairScores, g_thr: np.ndarray, i_thr: np.ndarray
) -> dict[str, Any]:
    """Listed-pairs accuracy (LFW View-1 style): at the shipped threshold, with a pair whose
    photo gave no face counted as a non-match (what the counter would decide); and at the best
    threshold over the acquired pairs (the figure published for LFW)."""
    pairs = acq.ident.pairs
    assert pairs is not None
    ok = acq.acquired[pairs[:, 0]] & acq.acquired[pairs[:, 1]]
    same = pairs[:, 2] == 1
    correct = int((scores.genuine >= g_thr).sum()) + int((scores.impostor < i_thr).sum())
    correct += int((~ok & ~same).sum())  # an impostor pair not acquired is still not a match
    best, best_threshold = best_accuracy(scores.genuine, scores.impostor)
    return {
        "pairs": len(pairs),
        "pairs_not_acquired": int((~ok).sum()),
        "accuracy_at_threshold": correct / len(pairs),
        "best_accuracy": best,
        "best_threshold": best_threshold,
    }


def evaluate_sources(
    sources: Sequence[IdentitySet],
    pipeline: Pipeline,
    role: str,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The shipped decision (``pipeline``'s embedder or fusion, threshold and acquisition) on
    each source, reported separately; the threshold is the site's when the pipeline was given
    an operating-point file (``operating_point`` names which)."""
    option = pipeline.option
    embedders = [e.spec.name for e in pipeline.embedders]
    acquired = acquire_sets(sources, embedders, pipeline, workers, cache_dir, progress)
    scores = option_scores(acquired, option, pipeline.fusion)
    point = pipeline.operating_point
    return {
        "embedder": option,
        "fmr_claimed": point.fmr,
        "threshold": point.threshold,
        "condition_thresholds": dict(point.by_condition),
        "role": role,
        "operating_point": point.id,
        "sets": [source_figures(a, scores[a.ident.name], point, role) for a in acquired],
    }


def worst_set(report: dict[str, Any]) -> tuple[str | None, float | None]:
    """The set whose FMR at the shipped threshold is furthest above the claim."""
    rated = [(s["fmr_ratio"], s["name"]) for s in report["sets"] if s["fmr_ratio"] is not None]
    if not rated:
        return None, None
    ratio, name = max(rated)
    return name, float(ratio)

