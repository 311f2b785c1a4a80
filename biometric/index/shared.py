"""One index per machine: a saved index mapped read-only by every process, plus each process's
changes since it was saved.

Every API worker maps the same file (:meth:`FaceIndex.load` with ``mmap``): the FAISS codes,
lists or graph and the slot tables stay in the page cache once, whatever the number of workers,
and opening costs a checksum read instead of a build. The changes a worker replays from the
store's change log after the file was saved go on top: a removal marks the mapped slot dead in
this process's copy-on-write slot table and bitmap (a few bytes), an addition goes to a small
exact (flat) index of this process (``delta``). A search asks both and merges the top k.

Folding the delta back into the file is :meth:`materialise` (an in-memory copy of the file with
the changes applied and the dead slots dropped), saved by whoever holds the file's lock (see
:class:`biometric.gallery.local.LocalSearcher`); the others notice the file changed
(:meth:`stale`) and map the new one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from biometric.index.core import FaceIndex
from biometric.index.merge import merge_top_k
from biometric.index.spec import IndexKind, IndexSpec


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime) of the file, None when absent: a rewrite changes the inode."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


class SharedIndex:
    """A mapped saved index (read-only, shared) and this process's changes on top of it."""

    def __init__(self, path: Path, base: FaceIndex, identity: tuple[int, int, int] | None):
        self.path = path
        self.base = base
        self.delta = FaceIndex(IndexSpec(IndexKind.FLAT, base.dim))
        self._identity = identity

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, expected_dim: int | None = None
    ) -> tuple[SharedIndex, int]:
        """Map the saved index at ``path``; returns it and the change number it reflects."""
        path = Path(path)
        identity = file_identity(path)
        base, change_number = FaceIndex.load(path, expected_dim=expected_dim, mmap=True)
        return cls(path, base, identity), change_number

    def stale(self) -> bool:
        """True once the file was replaced (by this or another process) since it was mapped."""
        return file_identity(self.path) != self._identity

    @property
    def spec(self) -> IndexSpec:
        return self.base.spec

    @property
    def dim(self) -> int:
        return self.base.dim

    def __len__(self) -> int:
        return len(self.base) + len(self.delta)

    def ids(self) -> np.ndarray:
        return np.concatenate([self.base.ids(), self.delta.ids()])

    def add(self, ids, vectors) -> int:  # type: ignore[no-untyped-def]
        """Add or replace templates: a replaced one dies in the mapped base."""
        replaced = self.base.remove(ids)
        return replaced + self.delta.add(ids, vectors)

    def remove(self, ids) -> int:  # type: ignore[no-untyped-def]
        return self.base.remove(ids) + self.delta.remove(ids)

    def compact(self) -> None:
        """Compacts the delta; the mapped base is compacted by rewriting its file."""
        self.delta.compact()

    def search(self, vectors, k: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        parts = [self.base.search(vectors, k)]
        if len(self.delta):
            parts.append(self.delta.search(vectors, k))
        return merge_top_k(parts, k) if len(parts) > 1 else parts[0]

    def materialise(self) -> FaceIndex:
        """An in-memory index of the file with this process's changes applied and no dead
        slot: what the file should hold next. Reads the file once more (not mapped)."""
        full, _ = FaceIndex.load(self.path, expected_dim=self.dim, verify=False)
        full.remove(np.setdiff1d(full.ids(), self.base.ids()))
        delta_ids = self.delta.ids()
        if len(delta_ids):
            full.add(delta_ids, self.delta.vectors(delta_ids))
        full.compact()
        return full

    def self_join(self, k: int, threshold: float, progress=None):  # type: ignore[no-untyped-def]
        return self.materialise().self_join(k=k, threshold=threshold, progress=progress)
