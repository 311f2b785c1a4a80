"""Prepared chips (``POST /v1/chip``): sealed, short-lived handles (biometric.store.chip_handles).

Revision ID: 0008_chip_handles
Revises: 0007_audit_subjects
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from biometric.store.models import UtcDateTime

revision = "0008_chip_handles"
down_revision = "0007_audit_subjects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chip_handles",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_chip_handles_expires_at", "chip_handles", ["expires_at"])


def downgrade() -> None:
    op.drop_table("chip_handles")
