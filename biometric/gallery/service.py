"""The gallery: enrol with screening, 1:N search, erasure, duplicate cases.

Consistency. Every template insert or delete writes a row to ``index_changes`` in the same
transaction, so an acknowledged (committed) enrolment is in the store and in the change log
together. The in-memory FAISS index only ever *replays* that log (:meth:`Gallery.sync`): after a
crash, the saved index is loaded with the change number it reflects and the newer changes are
replayed, or, without a saved index, it is rebuilt from the templates. Several processes can
share one store: each catches up from the log before it searches.

Change numbers follow commit order. Replaying ``seq > last_seen`` is only sound if no
transaction can commit a change number below one a reader has already seen. PostgreSQL hands out
``seq`` at insert, not at commit, so every transaction that writes the change log first takes
one transaction-scoped advisory lock (:func:`_change_log_transaction`): writers of the log are
serialised from their first insert to their commit, and the numbers become visible in order.
SQLite has a single writer per database, which gives the same guarantee. The lock covers only
the short write transaction; screening searches run before it.

Erasure leaves no copy: the erased template's slot is compacted out of the in-memory index and
the saved index file is rewritten at once, every saved index is compacted first, and on SQLite
deleted rows are overwritten (``secure_delete``, see :mod:`biometric.store.db`) and the WAL is
checkpointed and truncated after an erase.
"""

from __future__ import annotations

import fcntl
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from biometric.errors import BiometricError
from biometric.gallery.models import (
    Claimant,
    DuplicateCase,
    FaceThumbnail,
    IndexChange,
    Template,
)
from biometric.index import FaceIndex, IndexSpec, default_kind_for
from biometric.store.db import purge_deleted, session_factory

# ASCII digits only: ``\d`` also matches full-width and other Unicode digits, which would make
# a second claimant for the same person.
CITIZEN_ID_PATTERN = r"^[0-9]{12}$"
CITIZEN_ID = re.compile(CITIZEN_ID_PATTERN)
# Key of the PostgreSQL advisory lock that orders change-log writers (any constant, unique
# within the database; the migration lock uses 748213).
CHANGE_LOG_LOCK = 748214


class GalleryError(BiometricError):
    code = "gallery_error"


class InvalidCitizenId(GalleryError):
    code = "invalid_citizen_id"


class ClaimantNotFound(GalleryError):
    code = "claimant_not_found"


class CaseNotFound(GalleryError):
    code = "case_not_found"


class EnrolmentConflict(GalleryError):
    """Another enrolment of the same new claimant committed while this one was screening."""

    code = "enrolment_conflict"


class CaseAlreadyDecided(GalleryError):
    code = "case_already_decided"


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


@dataclass(frozen=True)
class CaseView:
    id: int
    citizen_id: str
    candidate_citizen_id: str
    score: float
    threshold: float
    origin: str
    status: str
    created_at: datetime
    claimant_enrolled_at: datetime
    candidate_enrolled_at: datetime
    decided_at: datetime | None
    reviewer: str | None
    note: str | None

    def to_dict(self) -> dict:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "id": self.id,
            "citizen_id": self.citizen_id,
            "candidate_citizen_id": self.candidate_citizen_id,
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "origin": self.origin,
            "status": self.status,
            "created_at": iso(self.created_at),
            "claimant_enrolled_at": iso(self.claimant_enrolled_at),
            "candidate_enrolled_at": iso(self.candidate_enrolled_at),
            "decided_at": iso(self.decided_at),
            "reviewer": self.reviewer,
            "note": self.note,
        }


def check_citizen_id(citizen_id: str) -> str:
    if not CITIZEN_ID.fullmatch(citizen_id or ""):
        raise InvalidCitizenId(f"citizen id must be 12 digits, got {citizen_id!r}")
    return citizen_id


# Tables an erasure deletes rows from (VACUUMed afterwards on PostgreSQL).
ERASED_TABLES = ("templates", "face_thumbnails", "claimants", "duplicate_cases")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process writing ``path`` (a sibling ``.lock`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def _change_log_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A write transaction that may append to ``index_changes``: on PostgreSQL it first takes
    the change-log advisory lock, so change numbers commit in the order they are handed out."""
    with sessions.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOG_LOCK})
        yield s


def _to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _from_blobs(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim).astype(np.float32)


Progress = Callable[[str, int, int], None]


class Gallery:
    """Thread-safe within a process (one lock around index and change replay)."""

    def __init__(
        self,
        engine: Engine,
        *,
        model: str,
        model_version: str,
        dim: int,
        duplicate_threshold: float,
        duplicate_fmr: float,
        index_path: Path | None = None,
        top_k: int = 10,
        policy: DuplicatePolicy = DuplicatePolicy.FLAG,
        progress: Progress | None = None,
    ) -> None:
        self._sessions = session_factory(engine)
        self.model = model
        self.model_version = model_version
        self.dim = dim
        self.duplicate_threshold = duplicate_threshold
        self.duplicate_fmr = duplicate_fmr
        self.index_path = index_path
        self.top_k = top_k
        self.policy = policy
        self._lock = threading.RLock()
        self._index, self._seq = self._open_index(progress)

    # -- index lifecycle ------------------------------------------------------------------

    def _open_index(self, progress: Progress | None) -> tuple[FaceIndex, int]:
        if self.index_path is not None and self.index_path.is_file():
            index, seq = FaceIndex.load(self.index_path, expected_dim=self.dim)
            self._index, self._seq = index, seq
            self.sync()
            if self.index_matches_store():
                return self._index, self._seq
            # Saved by a version that could skip changes committed out of order: rebuild.
        return self.rebuild(progress)

    def index_matches_store(self) -> bool:
        """Whether the index holds exactly the store's templates of this model."""
        with self._lock, self._sessions() as s:
            stored = s.scalars(select(Template.id).where(Template.model == self.model)).all()
            return np.array_equal(np.sort(np.asarray(stored, np.int64)), self.index_ids())

    def rebuild(self, progress: Progress | None = None) -> tuple[FaceIndex, int]:
        """Build the index from the store's templates (the store is the source of truth)."""
        # The change number is read first: a change committed between the two reads is then
        # replayed over templates that may include it already, which is harmless (an add
        # replaces the same id, a removal of an absent id is ignored). Nothing is locked while
        # the index is built.
        with self._lock:
            with self._sessions() as s:
                seq = s.scalar(select(func.coalesce(func.max(IndexChange.seq), 0))) or 0
                rows = s.execute(
                    select(Template.id, Template.embedding).where(Template.model == self.model)
                ).all()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = _from_blobs([r[1] for r in rows], self.dim)
            del rows
            spec = IndexSpec.for_size(default_kind_for(len(ids)), self.dim, len(ids))
            self._index = FaceIndex.build(ids, vectors, spec, progress=progress)
            self._seq = int(seq)
            self.sync()
            return self._index, self._seq

    def sync(self) -> int:
        """Replay store changes newer than the index; returns how many were applied."""
        with self._lock, self._sessions() as s:
            changes = s.execute(
                select(IndexChange.seq, IndexChange.op, IndexChange.template_id)
                .where(IndexChange.seq > self._seq, IndexChange.model == self.model)
                .order_by(IndexChange.seq)
            ).all()
            # No second query for the newest change number here: a change committed between
            # two statements would be skipped (each statement has its own snapshot).
            if not changes:
                return 0
            wanted = [c.template_id for c in changes if c.op == "add"]
            current: dict[int, bytes] = {}
            if wanted:
                query = select(Template.id, Template.embedding).where(Template.id.in_(wanted))
                current = {int(r[0]): r[1] for r in s.execute(query).all()}
            for change in changes:
                if change.op == "remove":
                    self._index.remove([change.template_id])
                elif change.template_id in current:
                    # A template added and later deleted is skipped; its removal follows.
                    vec = _from_blobs([current[change.template_id]], self.dim)
                    self._index.add([change.template_id], vec)
                self._seq = int(change.seq)
            return len(changes)

    def save_index(self) -> None:
        """Write the index file, caught up with the store and compacted first, so that it holds
        no removed template. Every process saving this file does so under one file lock and
        replays the change log inside it: a process saving at shutdown can no longer write back
        a template another process erased (issue 21: 3 of 6 trials with 2 workers did)."""
        if self.index_path is None:
            return
        with self._lock, _file_lock(self.index_path):
            self.sync()
            self._index.compact()
            self._index.save(self.index_path, self._seq)

    @property
    def change_number(self) -> int:
        return self._seq

    def index_ids(self) -> np.ndarray:
        with self._lock:
            return np.sort(self._index.ids())

    # -- enrolment and search -------------------------------------------------------------

    def search(self, embedding: np.ndarray, k: int | None = None) -> list[Candidate]:
        """Top-k claimants by their best template score (best first)."""
        k = k or self.top_k
        with self._lock:
            self.sync()
            scores, ids = self._index.search(np.asarray(embedding, np.float32)[None], k + 4)
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
            candidates = []
            if screen:
                candidates = [
                    c
                    for c in self.search(embedding)
                    if c.citizen_id != citizen_id and c.score >= self.duplicate_threshold
                ]
            try:
                with _change_log_transaction(self._sessions) as s:
                    claimant, template, replaced = self._store_template(
                        s, citizen_id, embedding, quality, source, display_name, existed is None
                    )
                    if thumbnail:
                        s.add(FaceThumbnail(template_id=template.id, jpeg=thumbnail))
                    case_ids = [self._open_case(s, claimant.id, c, "enrolment") for c in candidates]
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
            with _change_log_transaction(self._sessions) as s:
                for citizen_id, embedding, quality, source in items:
                    check_citizen_id(citizen_id)
                    _, template, _ = self._store_template(s, citizen_id, embedding, quality, source)
                    template_ids.append(template.id)
            self.sync()
        return template_ids

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

    def _open_case(self, s: Session, claimant_id: int, c: Candidate, origin: str) -> int | None:
        a, b = sorted((claimant_id, c.claimant_id))
        existing = s.scalar(
            select(DuplicateCase).where(
                ((DuplicateCase.claimant_id == a) & (DuplicateCase.candidate_id == b))
                | ((DuplicateCase.claimant_id == b) & (DuplicateCase.candidate_id == a))
            )
        )
        if existing is not None:
            return None
        case = DuplicateCase(
            claimant_id=claimant_id,
            candidate_id=c.claimant_id,
            score=c.score,
            threshold=self.duplicate_threshold,
            origin=origin,
        )
        s.add(case)
        s.flush()
        return case.id

    def open_cases_for_pairs(self, pairs: list[tuple[int, int, float]], origin: str) -> int:
        """Open cases for (claimant_a, claimant_b, score) pairs not already cased."""
        opened = 0
        with self._sessions.begin() as s:
            for a, b, score in pairs:
                cand = Candidate("", b, -1, score)
                opened += self._open_case(s, a, cand, origin) is not None
        return opened

    def erase(self, citizen_id: str, record: Callable[[Session], object] | None = None) -> int:
        """Right to erasure: claimant, templates and cases are deleted, the index follows.
        ``record`` writes in the same transaction (the audit row). Returns the number of
        templates removed."""
        check_citizen_id(citizen_id)
        with self._lock:
            with _change_log_transaction(self._sessions) as s:
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
            self.sync()
            # No copy left behind: drop the dead slots now, rewrite the saved index, and purge
            # the deleted rows from the database files (SQLite: WAL checkpoint into the zeroed
            # pages; PostgreSQL: VACUUM of the tables that held them).
            self._index.compact()
            self.save_index()
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
        with self._lock:
            self.sync()
            return list(self._index.self_join(k=k, threshold=threshold, progress=progress))

    # -- review queue ---------------------------------------------------------------------

    def list_cases(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        citizen_id: str | None = None,
    ) -> tuple[list[CaseView], int]:
        from sqlalchemy.orm import aliased

        a, b = aliased(Claimant), aliased(Claimant)
        query = (
            select(DuplicateCase, a, b)
            .join(a, a.id == DuplicateCase.claimant_id)
            .join(b, b.id == DuplicateCase.candidate_id)
        )
        if status:
            query = query.where(DuplicateCase.status == status)
        if citizen_id:
            query = query.where((a.citizen_id == citizen_id) | (b.citizen_id == citizen_id))
        with self._sessions() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.execute(
                query.order_by(DuplicateCase.score.desc(), DuplicateCase.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [self._view(case, ca, cb) for case, ca, cb in rows], total

    @staticmethod
    def _view(case: DuplicateCase, a: Claimant, b: Claimant) -> CaseView:
        return CaseView(
            case.id,
            a.citizen_id,
            b.citizen_id,
            case.score,
            case.threshold,
            case.origin,
            case.status,
            case.created_at,
            a.created_at,
            b.created_at,
            case.decided_at,
            case.reviewer,
            case.note,
        )

    def decide_case(
        self, case_id: int, status: str, reviewer: str, note: str | None = None
    ) -> CaseView:
        """Confirm or dismiss a case. A held claimant is released when none of its cases is
        open or confirmed any more."""
        if status not in ("confirmed", "dismissed"):
            raise GalleryError(f"a case is decided as confirmed or dismissed, not {status!r}")
        with self._sessions.begin() as s:
            case = s.get(DuplicateCase, case_id)
            if case is None:
                raise CaseNotFound(f"no duplicate case {case_id}")
            # Only an open case is decided, in one conditional update: of two reviewers deciding
            # at once, one wins and the other is told, on every backend.
            decided = s.execute(
                update(DuplicateCase)
                .where(DuplicateCase.id == case_id, DuplicateCase.status == "open")
                .values(status=status, reviewer=reviewer, note=note, decided_at=datetime.now(UTC))
            ).rowcount
            s.refresh(case)
            if not decided:
                raise CaseAlreadyDecided(
                    f"case {case_id} was already {case.status} by {case.reviewer}; a decision "
                    "is final unless an admin reopens the case"
                )
            claimant = s.get(Claimant, case.claimant_id)
            pending = s.scalar(
                select(func.count())
                .select_from(DuplicateCase)
                .where(
                    DuplicateCase.claimant_id == case.claimant_id,
                    DuplicateCase.status.in_(("open", "confirmed")),
                )
            )
            if claimant is not None and claimant.status == "held" and not pending:
                claimant.status = "active"
            candidate = s.get(Claimant, case.candidate_id)
            return self._view(case, claimant, candidate)  # type: ignore[arg-type]

    def reopen_case(self, case_id: int, reason: str | None = None) -> CaseView:
        """Put a decided case back in the queue (an admin's call; the API checks the role).
        The earlier decision stays in the audit trail; the case row starts afresh."""
        with self._sessions.begin() as s:
            case = s.get(DuplicateCase, case_id)
            if case is None:
                raise CaseNotFound(f"no duplicate case {case_id}")
            if case.status == "open":
                raise GalleryError(f"case {case_id} is open already")
            case.status, case.reviewer, case.decided_at, case.note = "open", None, None, reason
            s.flush()
            claimant = s.get(Claimant, case.claimant_id)
            candidate = s.get(Claimant, case.candidate_id)
            return self._view(case, claimant, candidate)  # type: ignore[arg-type]


def open_gallery(
    engine: Engine,
    pipeline,
    index_dir: Path | None = None,
    fmr: float | None = None,
    policy: DuplicatePolicy = DuplicatePolicy.FLAG,
    progress: Progress | None = None,
    gallery_class: type[Gallery] = Gallery,
) -> Gallery:
    """A gallery for the pipeline's embedder, with the duplicate threshold calibrated for it.
    ``gallery_class`` may be a subclass (the distributed path's store-only gallery).

    ``fmr`` is the false-match rate per comparison: a search over N claimants expects about
    ``fmr * N`` false candidates, and a self-join over N about ``fmr * N * (N - 1) / 2`` false
    pairs, so large galleries need a lower FMR (see :func:`expected_false_candidates`).
    """
    spec = pipeline.embedder.spec
    entry = pipeline.manifest.get(spec.name)
    calibrated = entry.threshold_for(fmr or pipeline.manifest.default_fmr)
    return gallery_class(
        engine,
        model=spec.name,
        model_version=entry.sha256[:12],
        dim=spec.embedding_size,
        duplicate_threshold=calibrated.threshold,
        duplicate_fmr=calibrated.fmr,
        index_path=(index_dir / f"{spec.name}.faiss") if index_dir else None,
        policy=policy,
        progress=progress,
    )


def expected_false_candidates(
    fmr: float, gallery_sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
) -> dict[int, dict[str, float]]:
    """Expected impostors above threshold: per 1:N search, and for a full self-join."""
    return {
        n: {"per_search": fmr * n, "self_join_pairs": fmr * n * (n - 1) / 2} for n in gallery_sizes
    }
