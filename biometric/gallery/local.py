"""The gallery's index in this process (:class:`LocalSearcher`), in one of two modes.

``memory``: each process builds or loads its own full copy and saves it at shutdown.

``shared`` (one index per machine): every process maps the same saved file
(:class:`~biometric.index.SharedIndex`), so N API workers hold the index once in the page cache,
and start by mapping it instead of building. Each replays the change log on top. Who writes the
file: whichever process holds its lock (``<file>.lock``, :func:`fcntl.flock`) -- the first to
start when there is no file (it builds from the store; the others wait and then map it), the one
that serves an erasure, and each at shutdown. A writer first maps the newest file and catches up
with the whole change log, so it never writes back a template another worker erased; it then
writes the file with every dead slot dropped. The other workers map the new file at their next
:meth:`LocalSearcher.sync` (every search, enrolment, and the API's periodic refresh), which
releases the last mapping of the old file.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from biometric.gallery.replica import IndexReplica
from biometric.index import FaceIndex, SharedIndex
from biometric.index.spec import IndexKind, ProgressFn


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock between the processes of this machine (released if one dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class LocalSearcher:
    """Thread-safe (one lock around the replica)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        model: str,
        dim: int,
        index_path: Path | None = None,
        *,
        shared: bool = False,
        kind: IndexKind | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.index_path = index_path
        self.shared = shared and index_path is not None
        self._lock = threading.RLock()
        self.replica = IndexReplica(sessions, model, dim, kind=kind)
        with self._lock:
            if self.shared:
                with file_lock(self.index_path):
                    if not self._map_current(check=True):
                        self._write_file(progress, rebuild=True)
            elif not self._load_saved():
                self.replica.build(progress)

    # -- opening --------------------------------------------------------------------------

    def _load_saved(self) -> bool:
        """Memory mode: load the saved file and catch up; False when it must be rebuilt."""
        if self.index_path is None or not self.index_path.is_file():
            return False
        self.replica.adopt(*FaceIndex.load(self.index_path, expected_dim=self.replica.dim))
        self.replica.sync()
        # Saved by a version that could skip changes committed out of order: rebuild.
        return self.replica.matches_store()

    def _map_current(self, check: bool = False) -> bool:
        """Shared mode: map the saved file and catch up; False when absent or (``check``, at
        start-up: reads every template id of the store) out of step with the store."""
        if not self.index_path.is_file():
            return False
        self.replica.adopt(*SharedIndex.open(self.index_path, expected_dim=self.replica.dim))
        self.replica.sync()
        return not check or self.replica.matches_store()

    def _write_file(self, progress: ProgressFn | None = None, rebuild: bool = False) -> None:
        """Shared mode, holding the file lock: write what the file should hold now (the
        mapped file plus every change, or with ``rebuild`` a build from the store) and map
        it."""
        index = self.replica.index
        if not rebuild and isinstance(index, SharedIndex) and not index.stale():
            self.replica.sync()
            full = index.materialise()
        else:
            self.replica.build(progress)
            full = self.replica.index
            full.compact()
        full.save(self.index_path, self.replica.seq)
        del full
        self.replica.adopt(*SharedIndex.open(self.index_path, expected_dim=self.replica.dim))
        self.replica.sync()

    # -- the Searcher protocol ------------------------------------------------------------

    @property
    def change_number(self) -> int:
        return self.replica.seq

    def sync(self) -> int:
        with self._lock:
            index = self.replica.index
            if self.shared and isinstance(index, SharedIndex) and index.stale():
                with file_lock(self.index_path):
                    if not self._map_current():
                        self._write_file(rebuild=True)
            return self.replica.sync()

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self.sync()
            return self.replica.index.search(vectors, k)

    def ids(self) -> np.ndarray:
        with self._lock:
            return np.sort(self.replica.index.ids())

    def self_join(
        self, k: int, threshold: float, progress: ProgressFn | None = None
    ) -> list[tuple[int, int, float]]:
        with self._lock:
            self.sync()
            return list(self.replica.index.self_join(k=k, threshold=threshold, progress=progress))

    def erased(self) -> None:
        """Drop the dead slots now and rewrite the saved file, so no copy of an erased
        template stays in memory or on disk (other workers remap at their next sync)."""
        with self._lock:
            self.replica.sync()
            self.replica.index.compact()
            self.save()

    def save(self) -> None:
        """Write the index file, caught up with the store and compacted first, so that it
        holds no removed template. Every process writing the file does so under its lock and
        replays the change log inside it: a process saving at shutdown cannot write back a
        template another process erased."""
        if self.index_path is None:
            return
        with self._lock, file_lock(self.index_path):
            if not self.shared:
                self.replica.sync()
                self.replica.index.compact()
                self.replica.index.save(self.index_path, self.replica.seq)
                return
            if self.replica.index.stale():  # type: ignore[union-attr]
                self._map_current()
            self._write_file()

    def close(self) -> None:
        self.save()
