"""Write and read the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biometric.store.models import AuditEvent


def record(session: Session, **fields: Any) -> AuditEvent:
    event = AuditEvent(**fields)
    session.add(event)
    session.commit()
    return event


@dataclass(frozen=True)
class AuditQuery:
    citizen_id: str | None = None
    counter_id: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    before_id: int | None = None  # cursor: newest first, rows with id < before_id


def query(session: Session, q: AuditQuery) -> list[AuditEvent]:
    stmt = select(AuditEvent)
    if q.citizen_id is not None:
        stmt = stmt.where(AuditEvent.citizen_id == q.citizen_id)
    if q.counter_id is not None:
        stmt = stmt.where(AuditEvent.counter_id == q.counter_id)
    if q.decision is not None:
        stmt = stmt.where(AuditEvent.decision == q.decision)
    if q.since is not None:
        stmt = stmt.where(AuditEvent.time >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEvent.time < q.until)
    if q.before_id is not None:
        stmt = stmt.where(AuditEvent.id < q.before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(q.limit)))
