"""Gallery tables, on the store's declarative base (migration 0002)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from biometric.store.models import NEVER_REUSE_IDS, Base, UtcDateTime, utcnow


class Claimant(Base):
    __tablename__ = "claimants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'held')", name="ck_claimants_status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[str] = mapped_column(String(12), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # "held": enrolment waits for a reviewer because it looked like a duplicate (hold policy).
    status: Mapped[str] = mapped_column(String(8), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Template(Base):
    """One face template. Its id is the FAISS id. Photos are not stored."""

    __tablename__ = "templates"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claimant_id: Mapped[int] = mapped_column(
        ForeignKey("claimants.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(String(64), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    quality: Mapped[float | None] = mapped_column(Float, default=None)
    source: Mapped[str] = mapped_column(String(8))  # chip | live
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class IndexChange(Base):
    """Append-only log of template additions and removals: ``seq`` is the store's change
    number. An index saved at change N catches up by replaying the rows after N."""

    __tablename__ = "index_changes"
    __table_args__ = (NEVER_REUSE_IDS,)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    op: Mapped[str] = mapped_column(String(8))  # add | remove
    template_id: Mapped[int] = mapped_column(Integer, index=True)
    model: Mapped[str] = mapped_column(String(64))


class DuplicateCase(Base):
    """A claimant who looks like another one, waiting for (or after) a reviewer's decision."""

    __tablename__ = "duplicate_cases"
    __table_args__ = (
        UniqueConstraint("claimant_id", "candidate_id", name="uq_case_pair"),
        CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed')", name="ck_duplicate_cases_status"
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claimant_id: Mapped[int] = mapped_column(ForeignKey("claimants.id", ondelete="CASCADE"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("claimants.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(16))  # enrolment | screening
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    reviewer: Mapped[str | None] = mapped_column(String(64), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class FaceThumbnail(Base):
    """A small JPEG face crop for a template, kept only when the deployment opts in
    (``BIOMETRIC_STORE_FACE_THUMBNAILS``) so reviewers can see who a case is about. Deleted with
    its template (foreign key cascade, and explicitly by the gallery)."""

    __tablename__ = "face_thumbnails"

    template_id: Mapped[int] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True
    )
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
