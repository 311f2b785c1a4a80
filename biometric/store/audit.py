"""Write, read and verify the audit trail.

Tamper evidence: each row carries ``row_hash = SHA-256(prev_hash || canonical JSON of the
row)``, the previous row's hash being ``prev_hash`` (64 zeros for the first row), and the
one-row ``audit_chain`` table holds the chain's length and last hash. Editing a row breaks its
hash, deleting or reordering rows breaks the next row's link, and deleting the newest rows no
longer matches the head. :func:`verify_chain` (``biometric audit verify``) checks it all. It
shows tampering by someone without the code to re-hash; it is no signature: whoever can write
the database and run the code can rebuild a chain, so keep the database's write access narrow
and copy the head hash elsewhere (a log shipper) to pin it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from biometric.store.models import AuditChain, AuditEvent, utcnow

GENESIS = "0" * 64
_HEAD = 1  # id of the one audit_chain row


def row_digest(prev_hash: str, event: AuditEvent) -> str:
    """The hash of one row, over every field but the hashes, as they read back from the store
    (a JSON round trip makes tuples lists, as the JSON columns do)."""
    fields = json.loads(json.dumps(event.to_dict()))
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def record(session: Session, **fields: Any) -> AuditEvent:
    """Append one row to the chain and commit. Updating the head first takes its row lock
    (PostgreSQL) or the write lock (SQLite), so concurrent appends queue up, never fork."""
    head = session.execute(
        update(AuditChain)
        .where(AuditChain.id == _HEAD)
        .values(length=AuditChain.length + 1)
        .returning(AuditChain.last_hash)
    ).scalar_one()
    event = AuditEvent(**fields, prev_hash=head)
    event.time = event.time or utcnow()
    session.add(event)
    session.flush()  # assigns the id, which is hashed
    event.row_hash = row_digest(head, event)
    session.execute(
        update(AuditChain).where(AuditChain.id == _HEAD).values(last_hash=event.row_hash)
    )
    session.commit()
    return event


def chain_existing(session: Session) -> None:
    """Chain the rows written before the chain existed (migration 0006), in id order, and
    create the head."""
    prev, n = GENESIS, 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        event.prev_hash, event.row_hash = prev, row_digest(prev, event)
        prev, n = event.row_hash, n + 1
    session.add(AuditChain(id=_HEAD, length=n, last_hash=prev))
    session.flush()


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_bad_id: int | None = None
    problem: str | None = None


def verify_chain(session: Session, batch: int = 1000) -> ChainReport:
    """Recompute the chain from the first row; report the first row that does not fit. The
    head is read first, so rows appended while this runs (a live service) are left for the
    next check rather than reported."""
    head = session.get(AuditChain, _HEAD)
    length, last = (head.length, head.last_hash) if head else (0, GENESIS)
    session.expunge_all()
    prev, n, last_id = GENESIS, 0, 0
    while n < length:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > last_id)
            .order_by(AuditEvent.id)
            .limit(min(batch, length - n))
        ).all()
        if not rows:
            break
        for event in rows:
            if event.prev_hash != prev:
                return ChainReport(n, False, event.id, "does not link to the row before it")
            if row_digest(prev, event) != event.row_hash:
                return ChainReport(n, False, event.id, "content does not match its hash")
            prev, n, last_id = event.row_hash, n + 1, event.id
        session.expunge_all()
    if n != length or prev != last:
        return ChainReport(n, False, None, "rows were removed (the chain's head does not match)")
    return ChainReport(n, True)


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
