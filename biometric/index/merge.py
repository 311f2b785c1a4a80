"""Merging top-k result lists from several indexes (shards, or a saved index and its delta)."""

from __future__ import annotations

import numpy as np


def merge_top_k(
    parts: list[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-index ``(scores, ids)`` results (each ``(n, k_i)``, best first) into the best
    ``k`` per query; missing results keep id -1 and score -inf, as ``FaceIndex.search``."""
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    if scores.shape[1] < k:
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    # Stable on the negated scores: equal scores keep part order, so results are reproducible.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
