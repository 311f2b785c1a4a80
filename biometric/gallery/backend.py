"""Where the gallery's 1:N index lives (``BIOMETRIC_INDEX``), and the searcher for it.

- ``memory``: each process builds or loads its own copy (one process, or a few small galleries).
- ``shared`` (default): one saved index per machine, mapped by every worker
  (:mod:`biometric.gallery.local`).
- ``store``: no index in this process (:class:`~biometric.gallery.searcher.StoreOnly`).
- ``ray:local`` (Ray embedded on this machine), ``ray:auto`` (this machine's cluster),
  ``ray://host:10001``: the index sharded over Ray actors
  (:class:`~biometric.distributed.shards.ShardedSearcher`); ``?shards=N`` sets the shard count.

Any of them takes ``?kind=flat|hnsw|ivf_sq8|ivf_pq`` to fix the index kind (default: the one
:func:`~biometric.index.default_kind_for` picks for the gallery's size). At a million templates
and more, ``shared?kind=ivf_sq8`` builds in minutes where ``hnsw`` takes hours on 2 cores, and
maps ~150 B per 128-d template (see the shared-index benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy import Engine

from biometric.gallery.errors import GalleryError
from biometric.gallery.local import LocalSearcher
from biometric.gallery.searcher import Searcher, StoreOnly
from biometric.index.spec import IndexKind, ProgressFn
from biometric.store.db import session_factory

MODES = ("memory", "shared", "store", "ray")
# Shards of a sharded index by default: one per core of this 2-core machine; on a cluster, set
# it from memory per node (the capacity model in BENCHMARKS.md).
DEFAULT_SHARDS = 2


@dataclass(frozen=True)
class IndexBackend:
    mode: str = "shared"
    ray_address: str | None = None  # ray mode: None = embedded on this machine
    shards: int = DEFAULT_SHARDS
    kind: IndexKind | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise GalleryError(f"index backend must be one of {MODES}, not {self.mode!r}")
        if self.shards < 1:
            raise GalleryError("a sharded index needs at least 1 shard")

    @classmethod
    def parse(cls, value: str | None) -> IndexBackend:
        """From ``BIOMETRIC_INDEX``: ``memory``, ``shared``, ``store``, ``ray:local``,
        ``ray:auto`` or ``ray://host:port``, the ray ones with an optional ``?shards=N``."""
        target, _, query = (value or "shared").strip().partition("?")
        options = parse_qs(query)
        try:
            shards = int(options.get("shards", [DEFAULT_SHARDS])[0])
            kind = IndexKind(options["kind"][0]) if "kind" in options else None
        except ValueError as exc:
            raise GalleryError(f"bad shard count or index kind in {value!r}") from exc
        if not target.startswith("ray"):
            return cls(target, kind=kind)
        if target == "ray:local":
            return cls("ray", None, shards, kind)
        if target == "ray:auto":
            return cls("ray", "auto", shards, kind)
        if target.startswith("ray://"):
            return cls("ray", target, shards, kind)
        raise GalleryError(f"unknown index backend {value!r} (ray:local, ray:auto, ray://host:port)")

    def searcher(
        self,
        engine: Engine,
        model: str,
        dim: int,
        index_path: Path | None,
        progress: ProgressFn | None = None,
    ) -> Searcher:
        if self.mode == "store":
            return StoreOnly()
        if self.mode == "ray":
            # Imported here: Ray is only loaded where a sharded index is configured.
            from biometric.distributed.runtime import RayTarget
            from biometric.distributed.shards import ShardedSearcher

            return ShardedSearcher(
                engine, model, dim, self.shards, RayTarget(self.ray_address), self.kind
            )
        return LocalSearcher(
            session_factory(engine),
            model,
            dim,
            index_path,
            shared=self.mode == "shared",
            kind=self.kind,
            progress=progress,
        )
