"""Claimant gallery: claimants, templates, index change log, duplicate cases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from biometric.store.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claimants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("citizen_id", sa.String(12), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'held')", name="ck_claimants_status"),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "claimant_id",
            sa.Integer,
            sa.ForeignKey("claimants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.Float, nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_templates_claimant_id", "templates", ["claimant_id"])
    op.create_index("ix_templates_model", "templates", ["model"])
    op.create_table(
        "index_changes",
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("template_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
    )
    op.create_index("ix_index_changes_template_id", "index_changes", ["template_id"])
    op.create_table(
        "duplicate_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "claimant_id",
            sa.Integer,
            sa.ForeignKey("claimants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "candidate_id",
            sa.Integer,
            sa.ForeignKey("claimants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.UniqueConstraint("claimant_id", "candidate_id", name="uq_case_pair"),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed')", name="ck_duplicate_cases_status"
        ),
    )
    op.create_index("ix_duplicate_cases_status", "duplicate_cases", ["status"])


def downgrade() -> None:
    op.drop_table("duplicate_cases")
    op.drop_table("index_changes")
    op.drop_table("templates")
    op.drop_table("claimants")
