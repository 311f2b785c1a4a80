"""Slot bookkeeping: the id -> slot map and the bitmap of live slots (see the package doc)."""

from __future__ import annotations

import numpy as np


class IdMap:
    """External id -> slot: sorted numpy arrays plus a small dict of changes since the last merge.

    About 16 bytes per template instead of ~100 for a Python dict; single enrolments cost a dict
    update, bulk loads a vectorised merge.
    """

    _MERGE_AT = 8192

    def __init__(self) -> None:
        self._keys = np.empty(0, np.int64)  # sorted, unique
        self._vals = np.empty(0, np.int64)  # slot, -1 = removed since the last merge
        self._recent: dict[int, int] = {}  # overrides the arrays; -1 = removed

    @classmethod
    def from_slots(cls, slot_ids: np.ndarray) -> IdMap:
        m = cls()
        live = np.flatnonzero(slot_ids >= 0)
        order = np.argsort(slot_ids[live], kind="stable")
        m._keys = slot_ids[live][order].astype(np.int64)
        m._vals = live[order].astype(np.int64)
        return m

    @classmethod
    def from_arrays(cls, keys: np.ndarray, vals: np.ndarray) -> IdMap:
        """From :meth:`arrays` of a saved map (may be read-only memory maps: never written)."""
        m = cls()
        m._keys, m._vals = keys, vals
        return m

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ids and their slots."""
        self._merge()
        return self._keys, self._vals

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        out = np.full(len(ids), -1, np.int64)
        if len(self._keys):
            pos = np.minimum(np.searchsorted(self._keys, ids), len(self._keys) - 1)
            hit = self._keys[pos] == ids
            out[hit] = self._vals[pos[hit]]
        if self._recent:
            rk = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
            rv = np.fromiter(self._recent.values(), np.int64, len(self._recent))
            order = np.argsort(rk)
            rk, rv = rk[order], rv[order]
            pos = np.minimum(np.searchsorted(rk, ids), len(rk) - 1)
            hit = rk[pos] == ids
            out[hit] = rv[pos[hit]]
        return out

    def assign(self, ids: np.ndarray, slots: np.ndarray) -> None:
        """Set ``ids`` (unique) to ``slots``; slot -1 removes the id."""
        if len(ids) >= self._MERGE_AT:
            self._merge()
            self._merge_arrays(ids, slots)
            return
        self._recent.update(zip(ids.tolist(), slots.tolist(), strict=True))
        if len(self._recent) >= self._MERGE_AT:
            self._merge()

    def remap(self, new_slot_of: np.ndarray) -> None:
        """Apply a slot renumbering (after compaction); every mapped slot must be live."""
        self._merge()
        self._vals = new_slot_of[self._vals]

    def _merge(self) -> None:
        if not self._recent:
            return
        ids = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
        slots = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        self._recent = {}
        self._merge_arrays(ids, slots)

    def _merge_arrays(self, ids: np.ndarray, slots: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        ids, slots = ids[order], slots[order]
        keys, vals = self._keys, self._vals
        pos = np.searchsorted(keys, ids)
        exists = np.zeros(len(ids), bool)
        inside = pos < len(keys)
        exists[inside] = keys[pos[inside]] == ids[inside]
        vals = vals.copy()
        vals[pos[exists]] = slots[exists]
        new = ~exists & (slots >= 0)
        keys = np.insert(keys, pos[new], ids[new])
        vals = np.insert(vals, pos[new], slots[new])
        keep = vals >= 0
        self._keys, self._vals = keys[keep], vals[keep]



def bitmap_of(live: np.ndarray) -> np.ndarray:
    packed = np.packbits(live, bitorder="little")
    out = np.zeros(max(128, len(packed)), np.uint8)
    out[: len(packed)] = packed
    return out

