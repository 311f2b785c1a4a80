"""The 1:N index split into S shards, each a FAISS index held by a Ray actor.

A template lives in shard ``shard_of(citizen_id, S)`` (a stable hash of its owner's citizen id),
so one claimant's templates are always together and every process agrees where they are. Each
shard is the kind of index ``IndexSpec.for_size`` chooses for the shard's own size.

The store stays the source of truth, as for the single-process gallery: every shard builds from
the store's templates and then replays the store's change log (``index_changes``), keeping the
adds of its own citizen ids and every remove. Add and erase therefore go through the store
(:class:`~biometric.gallery.service.Gallery`), and a shard catches up before it searches. The
actors are restartable (``max_restarts=-1``): when one dies, Ray starts it again, its constructor
rebuilds it from the store, and calls in flight are retried (``max_task_retries=-1``; search is
read-only, so a retry is safe). Nothing acknowledged (committed) is lost.

Search fans out to every shard and merges the top k; the self-join sends every shard's templates,
in batches, to every shard and keeps each template's k nearest others, exactly as
:meth:`FaceIndex.iter_self_join` does in one process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from biometric.distributed.runtime import RayTarget, connect
from biometric.distributed.source import shard_of
from biometric.gallery.replica import IndexReplica
from biometric.index import (
    FaceIndex,
    IndexKind,
    IndexSpec,
    default_kind_for,
    merge_top_k,
    set_num_threads,
)
from biometric.store.db import make_engine, session_factory

__all__ = ["IndexShard", "ShardedIndex", "ShardedSearcher", "engine_url", "merge_top_k"]

# CPU reserved per shard actor for scheduling. Searches are short and mostly memory-bound, so
# shards share cores; on a cluster, memory (not CPU) decides how many fit on a node.
SHARD_CPUS = 0.5
SELF_JOIN_BATCH = 4096  # queries per fan-out, as FaceIndex.iter_self_join

Progress = Callable[[str, int, int], None]


def engine_url(engine: Engine) -> str:
    """The engine's URL for other processes: SQLite paths made absolute (workers may run in
    another folder), passwords kept (the actors must log in too)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


class IndexShard:
    """One shard (a Ray actor; plain class so it can also be tested in process): an
    :class:`IndexReplica` keeping the templates of its own citizen ids."""

    def __init__(
        self,
        db_url: str | None,
        model: str,
        dim: int,
        shard: int,
        n_shards: int,
        kind: str | None = None,
        threads: int = 1,
        templates: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """``templates`` (ids, vectors): build from these instead of a store, with nothing to
        sync (``db_url`` None); for benchmarks on synthetic templates only."""
        set_num_threads(threads)
        sessions = session_factory(make_engine(db_url)) if db_url else None
        self.shard, self.n_shards = shard, n_shards
        self.replica = IndexReplica(
            sessions, model, dim, keep=self._mine, kind=IndexKind(kind) if kind else None
        )
        if templates is None:
            self.replica.build()
        else:
            ids, vectors = templates
            kind_ = self.replica.kind or default_kind_for(len(ids))
            spec = IndexSpec.for_size(kind_, dim, len(ids))
            self.replica.adopt(FaceIndex.build(ids, vectors, spec), 0)

    @property
    def _index(self) -> FaceIndex:
        return self.replica.index  # type: ignore[return-value]

    def _mine(self, citizen_id: str) -> bool:
        return shard_of(citizen_id, self.n_shards) == self.shard

    def sync(self) -> int:
        """Replay the store's changes newer than this shard; returns how many were read."""
        return self.replica.sync()

    def compact(self) -> None:
        """Drop dead slots now (after an erasure: no copy of an erased template stays)."""
        self.replica.sync()
        self._index.compact()

    def search(self, vectors: np.ndarray, k: int, sync: bool = True) -> tuple[np.ndarray, ...]:
        if sync:
            self.sync()
        return self._index.search(vectors, k)

    def search_cost(self, vectors: np.ndarray, k: int) -> float:
        """CPU seconds per query of one batch search here (capacity planning)."""
        started = time.thread_time()
        self._index.search(vectors, k)
        return (time.thread_time() - started) / max(1, len(vectors))

    def ids(self) -> np.ndarray:
        return self._index.ids()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._index.vectors(ids)

    def info(self) -> dict:
        return {
            "shard": self.shard,
            "templates": len(self._index),
            "kind": self._index.spec.kind.value,
            "change_number": self.replica.seq,
            "pid": os.getpid(),
        }


class ShardedIndex:
    """The driver's handle on S shard actors (Ray must be connected first)."""

    def __init__(
        self,
        db_url: str | None,
        model: str,
        dim: int,
        n_shards: int,
        kind: str | None = None,
        shard_cpus: float = SHARD_CPUS,
        templates: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """``templates``: one (ids, vectors) per shard instead of a store (benchmarks)."""
        import ray

        if n_shards < 1:
            raise ValueError("n_shards must be >= 1")
        remote = ray.remote(IndexShard).options(
            num_cpus=shard_cpus,
            max_restarts=-1,
            max_task_retries=-1,
            scheduling_strategy="SPREAD",  # shards on different nodes where there are several
        )
        self.n_shards = n_shards
        parts = templates or [None] * n_shards
        self.actors = [
            remote.remote(db_url, model, dim, i, n_shards, kind, 1, parts[i])
            for i in range(n_shards)
        ]

    def _all(self, method: str, *args) -> list:
        import ray

        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def sync(self) -> int:
        return sum(self._all("sync"))

    def info(self) -> list[dict]:
        return self._all("info")

    def __len__(self) -> int:
        return sum(i["templates"] for i in self.info())

    def ids(self) -> np.ndarray:
        return np.concatenate(self._all("ids"))

    def compact(self) -> None:
        self._all("compact")

    def search(
        self, vectors: np.ndarray, k: int, sync: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over all shards, each caught up with the store's change log first."""
        x = np.asarray(vectors, np.float32)
        x = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        return merge_top_k(self._all("search", x, k, sync), k)

    def iter_self_join(
        self,
        k: int = 10,
        threshold: float = 0.0,
        batch_size: int = SELF_JOIN_BATCH,
        progress: Progress | None = None,
    ) -> Iterator[tuple[int, int, float]]:
        """Pairs ``(id_a, id_b, score)``, ``id_a < id_b``, each once, ``score >= threshold``,
        among each template's k nearest others: what ``FaceIndex.self_join`` gives in one
        process (identical with exact shards)."""
        import ray

        self.sync()  # then frozen: no sync while joining, as the single-process join
        shard_ids = self._all("ids")
        total = sum(len(i) for i in shard_ids)
        done = 0
        best: dict[tuple[int, int], float] = {}
        for actor, ids in zip(self.actors, shard_ids, strict=True):
            for start in range(0, len(ids), batch_size):
                q = ids[start : start + batch_size]
                x = ray.get(actor.vectors.remote(q))
                scores, labels = merge_top_k(self._all("search", x, k + 1, False), k + 1)
                other = (labels >= 0) & (labels != q[:, None])
                keep = other & (np.cumsum(other, axis=1) <= k) & (scores >= threshold)
                a = np.broadcast_to(q[:, None], labels.shape)[keep]
                b, s = labels[keep], scores[keep]
                for x_, y_, s_ in zip(
                    np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), s.tolist(), strict=True
                ):
                    if s_ > best.get((x_, y_), -np.inf):
                        best[(x_, y_)] = s_
                done += len(q)
                if progress:
                    progress("self_join", done, total)
        for (a_, b_), s_ in sorted(best.items()):
            yield a_, b_, s_

    def self_join(
        self, k: int, threshold: float, progress: Progress | None = None
    ) -> list[tuple[int, int, float]]:
        return list(self.iter_self_join(k, threshold, progress=progress))

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class ShardedSearcher:
    """The gallery's :class:`~biometric.gallery.searcher.Searcher` over a sharded index: the
    API enrols, searches and erases through the same endpoints as with a local index."""

    def __init__(
        self,
        engine: Engine,
        model: str,
        dim: int,
        n_shards: int,
        target: RayTarget,
        kind: IndexKind | None = None,
    ) -> None:
        connect(target)
        kind_ = kind.value if kind else None
        self.index = ShardedIndex(engine_url(engine), model, dim, n_shards, kind_)

    @property
    def change_number(self) -> int:
        return min(i["change_number"] for i in self.index.info())

    def sync(self) -> int:
        return self.index.sync()

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(vectors, k)  # every shard catches up first

    def ids(self) -> np.ndarray:
        return np.sort(self.index.ids())

    def self_join(
        self, k: int, threshold: float, progress: Progress | None = None
    ) -> list[tuple[int, int, float]]:
        return self.index.self_join(k, threshold, progress)

    def erased(self) -> None:
        self.index.compact()  # shards keep no file: memory is the only copy

    def save(self) -> None:
        """Nothing: shards rebuild from the store when (re)started."""

    def close(self) -> None:
        self.index.shutdown()
