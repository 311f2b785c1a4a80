"""The duplicate review queue: cases opened at enrolment or by bulk screening, decided by
reviewers (one decision per case, on every backend), reopened by an admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from biometric.gallery.errors import CaseAlreadyDecided, CaseNotFound, GalleryError
from biometric.gallery.models import Claimant, DuplicateCase


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


def open_case(
    s: Session, claimant_id: int, candidate_id: int, score: float, threshold: float, origin: str
) -> int | None:
    """Open a case for the pair in the caller's transaction; None if the pair has one already."""
    a, b = sorted((claimant_id, candidate_id))
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
        candidate_id=candidate_id,
        score=score,
        threshold=threshold,
        origin=origin,
    )
    s.add(case)
    s.flush()
    return case.id


class CaseQueue:
    def __init__(self, sessions: sessionmaker[Session], threshold: float) -> None:
        self._sessions = sessions
        self.threshold = threshold

    def open_for_pairs(self, pairs: list[tuple[int, int, float]], origin: str) -> int:
        """Open cases for (claimant_a, claimant_b, score) pairs not already cased."""
        opened = 0
        with self._sessions.begin() as s:
            for a, b, score in pairs:
                opened += open_case(s, a, b, score, self.threshold, origin) is not None
        return opened

    def list(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        citizen_id: str | None = None,
    ) -> tuple[list[CaseView], int]:
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
        return [_view(case, ca, cb) for case, ca, cb in rows], total

    def decide(self, case_id: int, status: str, reviewer: str, note: str | None = None) -> CaseView:
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
            return _view(case, claimant, candidate)  # type: ignore[arg-type]

    def reopen(self, case_id: int, reason: str | None = None) -> CaseView:
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
            return _view(case, claimant, candidate)  # type: ignore[arg-type]


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
