"""An index kept in step with the store: built from its templates, then replaying its change log.

The store is the source of truth. Every template insert or delete writes a row to
``index_changes`` in the same transaction; a replica replays the rows after the change number it
reflects (:meth:`IndexReplica.sync`). One class for the single-process gallery
(:mod:`biometric.gallery.local`) and for each Ray shard (:mod:`biometric.distributed.shards`),
which keeps only its own citizen ids (``keep``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from biometric.gallery.models import Claimant, IndexChange, Template
from biometric.index import FaceIndex, IndexKind, IndexSpec, SharedIndex, default_kind_for
from biometric.index.spec import ProgressFn


def vectors_of(blobs: list[bytes], dim: int) -> np.ndarray:
    """Stored templates (float32 little-endian blobs) as an ``(n, dim)`` array."""
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim).astype(np.float32)


class IndexReplica:
    """``index`` (in memory, or a :class:`SharedIndex` over a mapped file) at change ``seq``.

    ``keep(citizen_id)``: only templates of these claimants (a shard's share); None keeps all.
    ``kind``: the index kind; None picks :func:`default_kind_for` the number of templates.
    Not thread safe: the owner serialises calls."""

    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        model: str,
        dim: int,
        *,
        keep: Callable[[str], bool] | None = None,
        kind: IndexKind | None = None,
    ) -> None:
        self._sessions = sessions
        self.model, self.dim, self.keep, self.kind = model, dim, keep, kind
        self.index: FaceIndex | SharedIndex = FaceIndex(IndexSpec(IndexKind.FLAT, dim))
        self.seq = 0

    def adopt(self, index: FaceIndex | SharedIndex, seq: int) -> None:
        """Take a built or loaded index reflecting change ``seq`` (then :meth:`sync`)."""
        self.index, self.seq = index, int(seq)

    def _templates(self, s: Session, ids: list[int] | None = None) -> list:
        """(id, blob, citizen id) rows of this model, or of ``ids``, kept by ``keep``."""
        query = select(Template.id, Template.embedding, Claimant.citizen_id).join(
            Claimant, Claimant.id == Template.claimant_id
        )
        where = Template.id.in_(ids) if ids is not None else Template.model == self.model
        query = query.where(where)
        rows = s.execute(query).all()
        return [r for r in rows if self.keep(r[2])] if self.keep else rows

    def build(self, progress: ProgressFn | None = None) -> None:
        """From the store's templates, then caught up with the change log."""
        # The change number is read first: a change committed between the two reads is then
        # replayed over templates that may include it already, which is harmless (an add
        # replaces the same id, a removal of an absent id is ignored). Nothing is locked while
        # the index is built.
        with self._sessions() as s:
            seq = s.scalar(select(func.coalesce(func.max(IndexChange.seq), 0))) or 0
            rows = self._templates(s)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = vectors_of([r[1] for r in rows], self.dim)
        del rows
        spec = IndexSpec.for_size(self.kind or default_kind_for(len(ids)), self.dim, len(ids))
        self.adopt(FaceIndex.build(ids, vectors, spec, progress=progress), seq)
        self.sync()

    def sync(self) -> int:
        """Replay store changes newer than the index; returns how many were read."""
        if self._sessions is None:
            return 0
        with self._sessions() as s:
            changes = s.execute(
                select(IndexChange.seq, IndexChange.op, IndexChange.template_id)
                .where(IndexChange.seq > self.seq, IndexChange.model == self.model)
                .order_by(IndexChange.seq)
            ).all()
            # No second query for the newest change number here: a change committed between
            # two statements would be skipped (each statement has its own snapshot).
            if not changes:
                return 0
            added = [c.template_id for c in changes if c.op == "add"]
            current = {int(r[0]): r[1] for r in self._templates(s, added)} if added else {}
        for change in changes:
            if change.op == "remove":
                self.index.remove([change.template_id])  # unknown here: ignored
            elif change.template_id in current:
                # A template added and later deleted is absent (or not this replica's): its
                # removal follows.
                vec = vectors_of([current[change.template_id]], self.dim)
                self.index.add([change.template_id], vec)
            self.seq = int(change.seq)
        return len(changes)

    def matches_store(self) -> bool:
        """Whether the index holds exactly the store's templates of this model (kept ones)."""
        with self._sessions() as s:
            if self.keep is None:
                stored = s.scalars(select(Template.id).where(Template.model == self.model)).all()
            else:
                stored = [r[0] for r in self._templates(s)]
        return np.array_equal(np.sort(np.asarray(stored, np.int64)), np.sort(self.index.ids()))
