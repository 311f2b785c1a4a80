"""The k-nearest-neighbour self-join of one index (bulk duplicate screening in one process).

Every live template queries the index with its stored vector (decoded, for the quantised kinds)
for its k nearest others; a pair found from both sides is reported once over the whole run, with
a log-structured set of the pairs whose second end is still to come as a query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from biometric.index.spec import ProgressFn


class SlotIndex(Protocol):
    """What the self-join needs of :class:`~biometric.index.core.FaceIndex`."""

    @property
    def version(self) -> int: ...

    @property
    def slot_ids(self) -> np.ndarray: ...

    def search_slots(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def reconstruct_slots(self, slots: np.ndarray) -> np.ndarray: ...


class PairSet:
    """Set of int64 keys as a few sorted runs (log-structured), for self-join de-duplication."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), bool)
        for run in self._runs:
            if not len(run):
                continue
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[pos] == keys
        return found

    def add(self, keys: np.ndarray, drop_below: Callable[[np.ndarray], np.ndarray]) -> None:
        if len(keys):
            self._runs.append(np.unique(keys))
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            merged = np.union1d(self._runs.pop(), self._runs.pop())
            self._runs.append(merged[~drop_below(merged)])



def iter_self_join(
    index: SlotIndex,
    k: int = 10,
    threshold: float = 0.0,
    batch_size: int = 4096,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """See :meth:`FaceIndex.iter_self_join`."""
    if k < 1 or batch_size < 1:
        raise ValueError("k and batch_size must be >= 1")
    slot_ids = index.slot_ids
    n_slots = len(slot_ids)
    live_slots = np.flatnonzero(slot_ids >= 0)
    total = len(live_slots)
    if total < 2:
        return
    seen = PairSet()
    version = index.version
    for start in range(0, total, batch_size):
        if index.version != version:
            raise RuntimeError("the index changed during a self-join")
        qs = live_slots[start : start + batch_size]
        scores, labels = index.search_slots(index.reconstruct_slots(qs), k + 1)
        other = (labels >= 0) & (labels != qs[:, None])
        valid = other & (np.cumsum(other, axis=1) <= k) & (scores >= threshold)
        a = np.broadcast_to(qs[:, None], labels.shape)[valid]
        b = labels[valid]
        s = scores[valid]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo * n_slots + hi
        order = np.lexsort((-s, key))  # per key, best score first
        key, lo, hi, s = key[order], lo[order], hi[order], s[order]
        first = np.ones(len(key), bool)
        first[1:] = key[1:] != key[:-1]
        key, lo, hi, s = key[first], lo[first], hi[first], s[first]
        # A pair whose lower slot was a query in an earlier batch may be out already.
        earlier = lo < qs[0]
        fresh = np.ones(len(key), bool)
        if earlier.any():
            fresh[earlier] = ~seen.contains(key[earlier])
        # Remember pairs whose other end is still to come as a query.
        first_query = int(qs[0])
        seen.add(
            key[fresh & (hi > qs[-1])],
            drop_below=lambda keys, q0=first_query: (keys % n_slots) < q0,
        )
        lo, hi, s = lo[fresh], hi[fresh], s[fresh]
        ida, idb = slot_ids[lo], slot_ids[hi]
        swap = ida > idb
        ida, idb = np.where(swap, idb, ida), np.where(swap, ida, idb)
        if progress:
            progress("self_join", min(start + batch_size, total), total)
        if len(s):
            yield ida, idb, s.astype(np.float32)
