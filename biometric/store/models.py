"""Tables. Times are stored and returned as UTC (aware datetimes in Python)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Role(StrEnum):
    COUNTER = "counter"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps naive text: store it as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# SQLite reuses the largest rowid after the newest row is deleted; AUTOINCREMENT never hands
# an id out twice (an erased template's id must not name another person's template).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class ApiKey(Base):
    """A client credential. Only a salted SHA-256 of the secret is kept; ``prefix`` (public,
    part of the token) finds the row without scanning."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('counter', 'reviewer', 'admin')", name="ck_api_keys_role"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    salt: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AuditChain(Base):
    """The head of the audit hash chain (one row, id 1): how many rows are chained and the last
    row's hash, so that deleting the newest rows is detected too. Updating it first in every
    append also serialises appends on every backend."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """One access to personal data, decision or refusal. Never holds photos, templates or
    secrets."""

    __tablename__ = "audit_events"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(64))
    counter_id: Mapped[str | None] = mapped_column(String(64), index=True)
    citizen_id: Mapped[str | None] = mapped_column(String(12), index=True)
    action: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    fmr: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_versions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Quality score (0-100) per image and the liveness result, when they were computed.
    quality: Mapped[dict[str, float] | None] = mapped_column(JSON, default=None)
    liveness: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Hash chain (see biometric.store.audit): SHA-256 of the previous row's hash and this row.
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    row_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Passive authentication of the chip files (status, issuer, signer, policy), when sent.
    chip_auth: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The X-Request-ID a client sent, kept apart from the service's own ``request_id``.
    client_request_id: Mapped[str | None] = mapped_column(String(64), default=None)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "time": self.time.isoformat(),
            "request_id": self.request_id,
            "key_name": self.key_name,
            "counter_id": self.counter_id,
            "citizen_id": self.citizen_id,
            "action": self.action,
            "decision": self.decision,
            "score": self.score,
            "threshold": self.threshold,
            "fmr": self.fmr,
            "reasons": self.reasons,
            "model_versions": self.model_versions,
            "quality": self.quality,
            "liveness": self.liveness,
            "chip_auth": self.chip_auth,
        }
        # Only when set: rows written before the column keep the hash they were chained with.
        # (Read from __dict__: a migration loads rows without the columns added after it.)
        if self.__dict__.get("client_request_id") is not None:
            d["client_request_id"] = self.client_request_id
        return d


class AuditSubject(Base):
    """Every citizen an audit row names (its citizen and the candidates of a search or an
    enrolment), so a subject-access request finds each row that touched the person's data.
    Derived from the hashed row content, written in the same transaction (migration 0007)."""

    __tablename__ = "audit_subjects"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True
    )
    citizen_id: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)
