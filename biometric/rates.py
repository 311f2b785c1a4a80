"""Error rates of a comparison score (ISO/IEC 19795-1 terms): a pair matches when its score is at
least the threshold. FMR is measured on impostor pairs, FNMR on genuine pairs, both among images
where a face was acquired (failure to acquire is reported on its own)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# An FMR f is *supported* by a sample when it holds at least this many / f impostor pairs, so
# that about this many impostor scores lie above the threshold (ISO/IEC 19795-1 "rule of 30" is
# stricter; 10 is the usual floor for reporting a point of a DET curve).
SUPPORT_FACTOR = 10


def supported(impostor_pairs: int, fmr: float) -> bool:
    return impostor_pairs >= SUPPORT_FACTOR / fmr


def rate_at_or_above(scores: np.ndarray, threshold: float) -> float:
    return float((np.asarray(scores) >= threshold).mean()) if len(scores) else float("nan")


def threshold_at_fmr(
    impostor: np.ndarray | Sequence[np.ndarray], fmr: float, weights: Sequence[float] | None = None
) -> float:
    """Smallest threshold whose false-match rate is at most ``fmr``.

    ``impostor`` is one array of scores, or several (one per data set); with several, the FMR
    is the weighted mean of the per-set FMRs (``weights``: equal when omitted), so that no set
    dominates by its number of pairs. The threshold sits just above the highest impostor score
    that would push the (weighted) FMR over ``fmr``.
    """
    groups = [np.asarray(impostor)] if isinstance(impostor, np.ndarray) else list(impostor)
    groups = [np.asarray(g, dtype=np.float32) for g in groups if len(g)]
    if not groups:
        raise ValueError("no impostor scores")
    w = np.full(len(groups), 1.0 / len(groups)) if weights is None else np.asarray(weights, float)
    # Only a group's top scores can be reached before the rate passes ``fmr``: each of its
    # scores weighs w_i / n_i, so at most fmr * sum(w) * n_i / w_i + 1 of them. Keeping those
    # (a linear-time partition) gives the same threshold as sorting everything, ~100x faster
    # on lfw_dev's 4.9 million impostor pairs at FMR 1e-3.
    kept = []
    for g, wi in zip(groups, w, strict=True):
        k = min(len(g), int(fmr * float(w.sum()) * len(g) / wi) + 2) if wi > 0 else len(g)
        kept.append(g if k >= len(g) else np.partition(g, len(g) - k)[len(g) - k :])
    full = [len(g) for g in groups]
    groups = kept
    scores = np.concatenate(groups)
    mass = np.concatenate(
        [np.full(len(g), wi / n) for g, wi, n in zip(groups, w, full, strict=True)]
    )
    order = np.argsort(scores, kind="stable")[::-1]
    cumulative = np.cumsum(mass[order])
    # First position (from the top) whose inclusion would exceed the target rate.
    k = int(np.searchsorted(cumulative, fmr * float(w.sum()) * (1 + 1e-9), side="right"))
    if k >= len(order):
        return float(scores[order[-1]])
    return float(np.nextafter(np.float32(scores[order[k]]), np.float32(np.inf)))


def tar_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float | None:
    """TAR at the threshold giving ``fmr`` on these impostors; None when they cannot support it."""
    if not len(genuine) or not supported(len(impostor), fmr):
        return None
    return rate_at_or_above(genuine, threshold_at_fmr(impostor, fmr))


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion. Impostor pairs sharing a person are not
    independent, so the true interval is somewhat wider; it is a floor on the uncertainty."""
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = centre - half, centre + half
    return (lo if lo > 1e-12 else 0.0, min(1.0, hi))


def det_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) at every distinct score used as threshold."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    fnmr = np.searchsorted(g, thresholds, side="left") / max(len(g), 1)
    fmr = 1.0 - np.searchsorted(i, thresholds, side="left") / max(len(i), 1)
    return fmr, fnmr


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    if len(genuine) == 0 or len(impostor) == 0:
        return float("nan"), float("nan")
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    fmr, fnmr = det_points(genuine, impostor)
    k = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[k] + fnmr[k]) / 2.0), float(thresholds[k])


def best_accuracy(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Highest verification accuracy over all thresholds (LFW's "best threshold" figure) and
    the threshold that gives it."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    correct = (len(g) - np.searchsorted(g, thresholds, side="left")) + np.searchsorted(
        i, thresholds, side="left"
    )
    k = int(np.argmax(correct))
    return float(correct[k] / (len(g) + len(i))), float(thresholds[k])
