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

import numpy as np
from sqlalchemy import func, select

from biometric.distributed.source import shard_of
from biometric.gallery.models import Claimant, IndexChange, Template
from biometric.index import FaceIndex, IndexKind, IndexSpec, default_kind_for, set_num_threads
from biometric.store.db import make_engine, session_factory

# CPU reserved per shard actor for scheduling. Searches are short and mostly memory-bound, so
# shards share cores; on a cluster, memory (not CPU) decides how many fit on a node.
SHARD_CPUS = 0.5
SELF_JOIN_BATCH = 4096  # queries per fan-out, as FaceIndex.iter_self_join

Progress = Callable[[str, int, int], None]


def _vectors(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim).astype(np.float32)


class IndexShard:
    """One shard (a Ray actor; plain class so it can also be tested in process)."""

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
        self._sessions = session_factory(make_engine(db_url)) if db_url else None
        self.model, self.dim, self.shard, self.n_shards = model, dim, shard, n_shards
        self.kind = IndexKind(kind) if kind else None
        if templates is None:
            self._index, self._seq = self._build()
        else:
            ids, vectors = templates
            spec = IndexSpec.for_size(self.kind or default_kind_for(len(ids)), dim, len(ids))
            self._index, self._seq = FaceIndex.build(ids, vectors, spec), 0

    def _mine(self, citizen_id: str) -> bool:
        return shard_of(citizen_id, self.n_shards) == self.shard

    def _build(self) -> tuple[FaceIndex, int]:
        """From the store's templates (the store is the source of truth)."""
        with self._sessions() as s:
            seq = s.scalar(select(func.coalesce(func.max(IndexChange.seq), 0))) or 0
            rows = s.execute(
                select(Template.id, Template.embedding, Claimant.citizen_id)
                .join(Claimant, Claimant.id == Template.claimant_id)
                .where(Template.model == self.model)
            ).all()
        mine = [r for r in rows if self._mine(r[2])]
        ids = np.array([r[0] for r in mine], dtype=np.int64)
        vectors = _vectors([r[1] for r in mine], self.dim)
        spec = IndexSpec.for_size(self.kind or default_kind_for(len(ids)), self.dim, len(ids))
        return FaceIndex.build(ids, vectors, spec), int(seq)

    def sync(self) -> int:
        """Replay the store's changes newer than this shard; returns how many were read."""
        if self._sessions is None:
            return 0
        with self._sessions() as s:
            changes = s.execute(
                select(IndexChange.seq, IndexChange.op, IndexChange.template_id)
                .where(IndexChange.seq > self._seq, IndexChange.model == self.model)
                .order_by(IndexChange.seq)
            ).all()
            added = [c.template_id for c in changes if c.op == "add"]
            current: dict[int, tuple[bytes, str]] = {}
            if added:
                query = (
                    select(Template.id, Template.embedding, Claimant.citizen_id)
                    .join(Claimant, Claimant.id == Template.claimant_id)
                    .where(Template.id.in_(added))
                )
                current = {int(r[0]): (r[1], r[2]) for r in s.execute(query).all()}
        for change in changes:
            if change.op == "remove":
                self._index.remove([change.template_id])  # unknown here: ignored
            elif change.template_id in current:
                # A template added and later deleted is absent; its removal follows.
                blob, citizen_id = current[change.template_id]
                if self._mine(citizen_id):
                    self._index.add([change.template_id], _vectors([blob], self.dim))
            self._seq = int(change.seq)
        return len(changes)

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
            "change_number": self._seq,
            "pid": os.getpid(),
        }


def merge_top_k(
    parts: list[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard ``(scores, ids)`` results (each ``(n, k_i)``, best first) into the best
    ``k`` per query; missing results keep id -1 and score -inf, as ``FaceIndex.search``."""
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    if scores.shape[1] < k:
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
    # Stable on the negated scores: equal scores keep shard order, so results are reproducible.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


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
