"""The gallery: enrol with screening, 1:N search, erasure, duplicate cases.

Consistency. Every template insert or delete writes a row to ``index_changes`` in the same
transaction, so an acknowledged (committed) enrolment is in the store and in the change log
together. The 1:N index only ever *replays* that log: the gallery searches through a
:class:`~biometric.gallery.searcher.Searcher` (an index replica in this process, in memory or
mapped from a file every worker shares, or the index sharded over Ray actors: see
:func:`open_gallery`), which catches up from the log before it searches. After a crash, a saved
index is loaded with the change number it reflects and the newer changes are replayed, or,
without one, it is rebuilt from the templates. Several processes can share one store.

Change numbers follow commit order. Replaying ``seq > last_seen`` is only sound if no
transaction can commit a change number below one a reader has already seen. PostgreSQL hands out
``seq`` at insert, not at commit, so every transaction that writes the change log first takes
one transaction-scoped advisory lock (:func:`_change_log_transaction`): writers of the log are
serialised from their first insert to their commit, and the numbers become visible in order.
SQLite has a single writer per database, which gives the same guarantee. The lock covers only
the short write transaction; screening searches run before it.

Erasure leaves no copy: the searcher drops the erased template's slot and rewrites a saved index
file at once (:meth:`Searcher.erased`), every saved index is compacted first, and on SQLite
deleted rows are overwritten (``secure_delete``, see :mod:`biometric.store.db`) and the WAL is
checkpointed and truncated after an erase.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biometric.gallery.backend import IndexBackend
from biometric.gallery.bulk import NewTemplate, enrolled_among, insert_new
from biometric.gallery.cases import CaseQueue, CaseView, open_case
from biometric.gallery.changelog import change_log_transaction
from biometric.gallery.citizen import CITIZEN_ID, CITIZEN_ID_PATTERN, check_citizen_id
from biometric.gallery.errors import (
    CaseAlreadyDecided,
    CaseNotFound,
    ClaimantNotFound,
    EnrolmentConflict,
    GalleryError,
    IndexUnavailable,
    InvalidCitizenId,
)
from biometric.gallery.models import Claimant, DuplicateCase, FaceThumbnail, IndexChange, Template
from biometric.gallery.searcher import Searcher
from biometric.gallery_fmr import GalleryFmrMonitor
from biometric.store.db import purge_deleted, session_factory

__all__ = [
    "CITIZEN_ID",
    "CITIZEN_ID_PATTERN",
    "Candidate",
    "CaseAlreadyDecided",
    "CaseNotFound",
    "CaseView",
    "ClaimantNotFound",
    "DuplicatePolicy",
    "EnrolResult",
    "EnrolmentConflict",
    "Gallery",
    "GalleryError",
    "IndexBackend",
    "IndexUnavailable",
    "InvalidCitizenId",
    "check_citizen_id",
    "expected_false_candidates",
    "open_gallery",
]



# Tables an erasure deletes rows from (VACUUMed afterwards on PostgreSQL).
ERASED_TABLES = ("templates", "face_thumbnails", "claimants", "duplicate_cases")


class DuplicatePolicy(StrEnum):
    FLAG = "flag"  # enrol, and open a case for review
    HOLD = "hold"  # enrol as "held" until a reviewer decides


@dataclass(frozen=True)
class Candidate:
    citizen_id: str
    claimant_id: int
    template_id: int
    score: float

    def to_dict(self) -> dict:
        return {
            "citizen_id": self.citizen_id,
            "score": round(self.score, 4),
            "template_id": self.template_id,
        }


@dataclass(frozen=True)
class EnrolResult:
    citizen_id: str
    claimant_id: int
    template_id: int
    status: str
    candidates: list[Candidate]
    case_ids: list[int]
    replaced_templates: int


def _to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


Progress = Callable[[str, int, int], None]


class Gallery:
    """The store side of 1:N (enrolment, erasure, cases) composed with a :class:`Searcher`.
    Thread-safe within a process (one lock around writes and their replay)."""

    def __init__(
        self,
        engine: Engine,
        searcher: Searcher | None = None,
        *,
        model: str,
        model_version: str,
        dim: int,
        duplicate_threshold: float,
        duplicate_fmr: float,
        top_k: int = 10,
        policy: DuplicatePolicy = DuplicatePolicy.FLAG,
        index_path: Path | None = None,
        operating_point: str = "",
    ) -> None:
        """Without ``searcher``: the default backend's (:class:`IndexBackend`), its file at
        ``index_path`` (None: in memory, not saved)."""
        self._sessions = session_factory(engine)
        self.searcher = searcher or IndexBackend().searcher(engine, model, dim, index_path)
        self.model = model
        self.model_version = model_version
        self.dim = dim
        self.duplicate_threshold = duplicate_threshold
        self.duplicate_fmr = duplicate_fmr
        self.top_k = top_k
        self.policy = policy
        self.cases = CaseQueue(self._sessions, duplicate_threshold)
        self._lock = threading.RLock()
        # Live FMR estimate from the enrolment searches (biometric.gallery_fmr): counts only.
        self.fmr_monitor = GalleryFmrMonitor(duplicate_threshold, duplicate_fmr, operating_point)

    # -- index ----------------------------------------------------------------------------

    def sync(self) -> int:
        """Replay store changes newer than the index; returns how many were read."""
        return self.searcher.sync()

    def save_index(self) -> None:
        """Persist the index (compacted first, so that it holds no removed template)."""
        self.searcher.save()

    def close(self) -> None:
        self.searcher.close()

    @property
    def change_number(self) -> int:
        return self.searcher.change_number

    def index_ids(self) -> np.ndarray:
        return self.searcher.ids()

    def index_matches_store(self) -> bool:
        """Whether the index holds exactly the store's templates of this model."""
        with self._sessions() as s:
            stored = s.scalars(select(Template.id).where(Template.model == self.model)).all()
        return np.array_equal(np.sort(np.asarray(stored, np.int64)), self.index_ids())

    # -- enrolment and search -------------------------------------------------------------

    def search(self, embedding: np.ndarray, k: int | None = None) -> list[Candidate]:
        """Top-k claimants by their best template score (best first)."""
        k = k or self.top_k
        scores, ids = self.searcher.search(np.asarray(embedding, np.float32)[None], k + 4)
        hits = [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0], strict=True) if i >= 0]
        if not hits:
            return []
        with self._sessions() as s:
            rows = s.execute(
                select(Template.id, Template.claimant_id, Claimant.citizen_id)
                .join(Claimant, Claimant.id == Template.claimant_id)
                .where(Template.id.in_([h[0] for h in hits]))
            ).all()
        owner = {r[0]: (r[1], r[2]) for r in rows}
        best: dict[int, Candidate] = {}
        for tid, score in hits:
            if tid not in owner:
                continue
            cid, citizen = owner[tid]
            if cid not in best or score > best[cid].score:
                best[cid] = Candidate(citizen, cid, tid, score)
        return sorted(best.values(), key=lambda c: -c.score)[:k]

    def enrol(
        self,
        citizen_id: str,
        embedding: np.ndarray,
        *,
        source: str = "chip",
        quality: float | None = None,
        display_name: str | None = None,
        screen: bool = True,
        policy: DuplicatePolicy | None = None,
        thumbnail: bytes | None = None,
        record: Callable[[Session, EnrolResult], object] | None = None,
    ) -> EnrolResult:
        """Store a template for the claimant (replacing earlier ones of this model), and with
        ``screen`` open a case for every other claimant scoring above the duplicate threshold.
        ``thumbnail`` (a small JPEG face crop, only where the deployment opts in) is stored with
        the template in the same transaction, and so is what ``record`` writes (the audit row:
        an enrolment is never stored without it)."""
        check_citizen_id(citizen_id)
        policy = policy or self.policy
        with self._lock:
            with self._sessions() as s:
                existed = s.scalar(select(Claimant.id).where(Claimant.citizen_id == citizen_id))
                # Templates this search compares against (the searcher may be sharded: the
                # store, its source of truth, counts them in one query).
                stored = s.scalar(
                    select(func.count(Template.id)).where(Template.model == self.model)
                ) if screen else 0
            candidates = []
            if screen:
                others = [c for c in self.search(embedding) if c.citizen_id != citizen_id]
                compared = stored - (existed is not None)
                self.fmr_monitor.observe_search([c.score for c in others], compared, self.top_k)
                candidates = [c for c in others if c.score >= self.duplicate_threshold]
            try:
                with change_log_transaction(self._sessions) as s:
                    claimant, template, replaced = self._store_template(
                        s, citizen_id, embedding, quality, source, display_name, existed is None
                    )
                    if thumbnail:
                        s.add(FaceThumbnail(template_id=template.id, jpeg=thumbnail))
                    case_ids = [
                        open_case(
                            s, claimant.id, c.claimant_id, c.score, self.duplicate_threshold,
                            "enrolment",
                        )
                        for c in candidates
                    ]
                    if candidates and policy is DuplicatePolicy.HOLD:
                        claimant.status = "held"
                    result = EnrolResult(
                        citizen_id,
                        claimant.id,
                        template.id,
                        claimant.status,
                        candidates,
                        [c for c in case_ids if c is not None],
                        replaced,
                    )
                    if record is not None:
                        record(s, result)
            except IntegrityError:
                # The unique citizen id caught a concurrent enrolment of the same new claimant.
                raise self._conflict(citizen_id) from None
            self.sync()
        return result

    def enrol_many(self, items: list[tuple[str, np.ndarray, float | None, str]]) -> list[int]:
        """Bulk enrolment without per-item screening (bulk screening self-joins afterwards):
        ``(citizen_id, embedding, quality, source)`` items, one transaction for the batch."""
        template_ids = []
        with self._lock:
            with change_log_transaction(self._sessions) as s:
                for citizen_id, embedding, quality, source in items:
                    check_citizen_id(citizen_id)
                    _, template, _ = self._store_template(s, citizen_id, embedding, quality, source)
                    template_ids.append(template.id)
            self.sync()
        return template_ids

    def enrol_new_bulk(self, items: list[NewTemplate]) -> int:
        """Bulk enrolment of claimants without a template of this model (``load-templates``):
        COPY on PostgreSQL, executemany on SQLite (:mod:`biometric.gallery.bulk`)."""
        with self._lock:
            n = insert_new(self._sessions, self.model, self.model_version, items)
            self.sync()
        return n

    def enrolled_among(self, citizen_ids: list[str]) -> set[str]:
        """Which of ``citizen_ids`` hold a template of this model."""
        return enrolled_among(self._sessions, self.model, citizen_ids)

    def _store_template(
        self,
        s: Session,
        citizen_id: str,
        embedding: np.ndarray,
        quality: float | None,
        source: str,
        display_name: str | None = None,
        expect_new: bool = False,
    ) -> tuple[Claimant, Template, int]:
        """Create the claimant if new, replace its templates of this model, log the change.
        Returns the claimant, the new template and how many templates it replaced.
        ``expect_new``: the claimant was absent when screening began, so finding it now means a
        concurrent enrolment committed first (:class:`EnrolmentConflict`)."""
        claimant = s.scalar(select(Claimant).where(Claimant.citizen_id == citizen_id))
        if claimant is not None and expect_new:
            raise self._conflict(citizen_id)
        if claimant is None:
            claimant = Claimant(citizen_id=citizen_id, display_name=display_name)
            s.add(claimant)
            s.flush()
        elif display_name:
            claimant.display_name = display_name
        replaced = self._delete_templates(s, claimant.id)
        template = Template(
            claimant_id=claimant.id,
            model=self.model,
            model_version=self.model_version,
            embedding=_to_blob(embedding),
            quality=quality,
            source=source,
        )
        s.add(template)
        s.flush()
        s.add(IndexChange(op="add", template_id=template.id, model=self.model))
        return claimant, template, replaced

    @staticmethod
    def _conflict(citizen_id: str) -> EnrolmentConflict:
        # The other enrolment's screening did not see this one (nor this one's the other), so it
        # is refused rather than merged; a retry is a re-enrolment, screened afresh.
        return EnrolmentConflict(
            f"claimant {citizen_id} was enrolled by a concurrent request; retry to replace "
            "that enrolment"
        )

    def _delete_templates(self, s: Session, claimant_id: int) -> int:
        old = s.scalars(
            select(Template.id).where(
                Template.claimant_id == claimant_id, Template.model == self.model
            )
        ).all()
        for tid in old:
            s.add(IndexChange(op="remove", template_id=tid, model=self.model))
        if old:
            s.execute(delete(FaceThumbnail).where(FaceThumbnail.template_id.in_(old)))
            s.execute(delete(Template).where(Template.id.in_(old)))
        return len(old)

    def open_cases_for_pairs(self, pairs: list[tuple[int, int, float]], origin: str) -> int:
        """Open cases for (claimant_a, claimant_b, score) pairs not already cased."""
        return self.cases.open_for_pairs(pairs, origin)

    def erase(self, citizen_id: str, record: Callable[[Session], object] | None = None) -> int:
        """Right to erasure: claimant, templates and cases are deleted, the index follows.
        ``record`` writes in the same transaction (the audit row). Returns the number of
        templates removed."""
        check_citizen_id(citizen_id)
        with self._lock:
            with change_log_transaction(self._sessions) as s:
                claimant = s.scalar(select(Claimant).where(Claimant.citizen_id == citizen_id))
                if claimant is None:
                    raise ClaimantNotFound(f"no claimant with citizen id {citizen_id}")
                rows = s.execute(
                    select(Template.id, Template.model).where(Template.claimant_id == claimant.id)
                ).all()
                for tid, model in rows:
                    s.add(IndexChange(op="remove", template_id=tid, model=model))
                if rows:
                    # The foreign key cascades too; explicit so no backend can keep a face.
                    s.execute(
                        delete(FaceThumbnail).where(
                            FaceThumbnail.template_id.in_([tid for tid, _ in rows])
                        )
                    )
                s.execute(delete(Template).where(Template.claimant_id == claimant.id))
                s.execute(
                    delete(DuplicateCase).where(
                        (DuplicateCase.claimant_id == claimant.id)
                        | (DuplicateCase.candidate_id == claimant.id)
                    )
                )
                s.delete(claimant)
                if record is not None:
                    record(s)
            # No copy left behind: the searcher drops the dead slots and rewrites its saved
            # index (under the file's lock, caught up with every worker's erasures first), and
            # the deleted rows are purged from the database files (SQLite: WAL checkpoint into
            # the zeroed pages; PostgreSQL: VACUUM of the tables that held them).
            self.searcher.erased()
            purge_deleted(self._sessions, ERASED_TABLES)
        return len(rows)

    # -- queries --------------------------------------------------------------------------

    def enrolled_citizen_ids(self) -> set[str]:
        with self._sessions() as s:
            return set(
                s.scalars(
                    select(Claimant.citizen_id)
                    .join(Template, Template.claimant_id == Claimant.id)
                    .where(Template.model == self.model)
                ).all()
            )

    def claimant_ids_of_templates(self, template_ids: list[int]) -> dict[int, tuple[int, str]]:
        with self._sessions() as s:
            rows = s.execute(
                select(Template.id, Claimant.id, Claimant.citizen_id)
                .join(Claimant, Claimant.id == Template.claimant_id)
                .where(Template.id.in_(template_ids))
            ).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def face_thumbnail(self, citizen_id: str) -> bytes | None:
        """The stored face thumbnail of the claimant's current template, or None when none is
        stored (thumbnails are opt-in). Raises :class:`ClaimantNotFound` for an unknown id."""
        check_citizen_id(citizen_id)
        with self._sessions() as s:
            claimant_id = s.scalar(select(Claimant.id).where(Claimant.citizen_id == citizen_id))
            if claimant_id is None:
                raise ClaimantNotFound(f"no claimant with citizen id {citizen_id}")
            return s.scalar(
                select(FaceThumbnail.jpeg)
                .join(Template, Template.id == FaceThumbnail.template_id)
                .where(Template.claimant_id == claimant_id, Template.model == self.model)
                .order_by(Template.id.desc())
                .limit(1)
            )

    def faces_stored(self, citizen_ids: list[str]) -> set[str]:
        """Which of these claimants have a face thumbnail stored (one query: a review page
        asks only for faces that exist, so its loads write no "not found" refusals)."""
        if not citizen_ids:
            return set()
        with self._sessions() as s:
            rows = s.scalars(
                select(Claimant.citizen_id)
                .join(Template, Template.claimant_id == Claimant.id)
                .join(FaceThumbnail, FaceThumbnail.template_id == Template.id)
                .where(Claimant.citizen_id.in_(set(citizen_ids)), Template.model == self.model)
            ).all()
        return set(rows)

    def template_count(self) -> int:
        with self._sessions() as s:
            return (
                s.scalar(
                    select(func.count()).select_from(Template).where(Template.model == self.model)
                )
                or 0
            )

    def self_join(
        self, k: int, threshold: float, progress: Progress | None = None
    ) -> list[tuple[int, int, float]]:
        """Template pairs scoring >= threshold among each template's k nearest neighbours."""
        return self.searcher.self_join(k, threshold, progress)

    # -- review queue (biometric.gallery.cases) ------------------------------------------

    def list_cases(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        citizen_id: str | None = None,
    ) -> tuple[list[CaseView], int]:
        return self.cases.list(status, limit, offset, citizen_id)

    def decide_case(
        self, case_id: int, status: str, reviewer: str, note: str | None = None
    ) -> CaseView:
        return self.cases.decide(case_id, status, reviewer, note)

    def reopen_case(self, case_id: int, reason: str | None = None) -> CaseView:
        return self.cases.reopen(case_id, reason)


def open_gallery(
    engine: Engine,
    pipeline,
    index_dir: Path | None = None,
    fmr: float | None = None,
    policy: DuplicatePolicy = DuplicatePolicy.FLAG,
    progress: Progress | None = None,
    backend: IndexBackend | None = None,
) -> Gallery:
    """A gallery for the pipeline's embedder, with the duplicate threshold calibrated for it.
    ``backend``: where its index lives (default: in memory, saved under ``index_dir``).

    ``fmr`` is the false-match rate per comparison: a search over N claimants expects about
    ``fmr * N`` false candidates, and a self-join over N about ``fmr * N * (N - 1) / 2`` false
    pairs, so large galleries need a lower FMR (see :func:`expected_false_candidates`).
    """
    from biometric.operating_point import shipped_id

    spec = pipeline.embedder.spec
    entry = pipeline.manifest.get(spec.name)
    calibrated = entry.threshold_for(fmr or pipeline.manifest.default_fmr)
    index_path = (index_dir / f"{spec.name}.faiss") if index_dir else None
    searcher = (backend or IndexBackend()).searcher(
        engine, spec.name, spec.embedding_size, index_path, progress
    )
    choice = pipeline.manifest.default_choice or {}
    return Gallery(
        engine,
        searcher,
        model=spec.name,
        model_version=entry.sha256[:12],
        dim=spec.embedding_size,
        duplicate_threshold=calibrated.threshold,
        duplicate_fmr=calibrated.fmr,
        policy=policy,
        operating_point=f"{shipped_id(choice.get('date'))}/{spec.name}",
    )


def expected_false_candidates(
    fmr: float, gallery_sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
) -> dict[int, dict[str, float]]:
    """Expected impostors above threshold: per 1:N search, and for a full self-join."""
    return {
        n: {"per_search": fmr * n, "self_join_pairs": fmr * n * (n - 1) / 2} for n in gallery_sizes
    }
