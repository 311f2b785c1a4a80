"""What the gallery searches through: a :class:`Searcher`.

- :class:`biometric.gallery.local.LocalSearcher`: a replica of the index in this process, in
  memory or mapped from one saved file shared by every worker of the machine.
- :class:`biometric.distributed.shards.ShardedSearcher`: the index split over Ray actors.
- :class:`StoreOnly`: no index here (a process that only writes the store, e.g. loading
  templates, while shards or other processes search).

Every searcher catches up with the store's change log before it answers, so a committed
enrolment is found and an erased template is not, whichever process wrote them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from biometric.gallery.errors import IndexUnavailable
from biometric.index.spec import ProgressFn


class Searcher(Protocol):
    def sync(self) -> int:
        """Replay the store's newer changes; returns how many were read."""
        ...

    @property
    def change_number(self) -> int: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, template ids)`` of the k best per query, caught up with the store."""
        ...

    def ids(self) -> np.ndarray:
        """Live template ids (sorted)."""
        ...

    def self_join(
        self, k: int, threshold: float, progress: ProgressFn | None = None
    ) -> list[tuple[int, int, float]]: ...

    def erased(self) -> None:
        """An erasure committed: leave no copy of the erased templates behind."""
        ...

    def save(self) -> None:
        """Persist what can speed up the next start (nothing where nothing is kept)."""
        ...

    def close(self) -> None: ...


class StoreOnly:
    """No index in this process: the store is written, other processes search it."""

    change_number = 0

    def sync(self) -> int:
        return 0

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise IndexUnavailable("this gallery has no index here: search through the shards")

    def ids(self) -> np.ndarray:
        return np.empty(0, np.int64)

    def self_join(self, k, threshold, progress=None):  # type: ignore[no-untyped-def]
        raise IndexUnavailable("this gallery has no index here: self-join through the shards")

    def erased(self) -> None:
        pass

    def save(self) -> None:
        pass

    def close(self) -> None:
        pass
