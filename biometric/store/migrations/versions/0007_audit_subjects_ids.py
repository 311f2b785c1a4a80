"""Audit subjects (who each row names), the client's request id kept apart, and ids that are
never handed out twice on SQLite (AUTOINCREMENT).

Revision ID: 0007_audit_subjects
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_audit_subjects"
down_revision = "0006"
branch_labels = None
depends_on = None

# Tables whose integer ids name something (a template id is a FAISS id and appears in audit
# rows): SQLite must not reuse the id of a deleted newest row.
_ID_TABLES = ("api_keys", "audit_events", "claimants", "templates", "duplicate_cases",
              "index_changes")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("client_request_id", sa.String(64), nullable=True))
    op.create_table(
        "audit_subjects",
        sa.Column("event_id", sa.Integer,
                  sa.ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("citizen_id", sa.String(12), primary_key=True),
    )
    op.create_index("ix_audit_subjects_citizen_id", "audit_subjects", ["citizen_id"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Recreated with AUTOINCREMENT (biometric.store.db.migrate turns foreign keys off for
        # the migration, so dropping the old table cascades nothing).
        for table in _ID_TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass
    from sqlalchemy.orm import Session

    from biometric.store.audit import stored_rows, subjects_of
    from biometric.store.models import AuditSubject

    s = Session(bind=bind)
    for event in s.scalars(stored_rows(s)):
        for citizen in subjects_of(event.citizen_id, event.reasons):
            s.add(AuditSubject(event_id=event.id, citizen_id=citizen[:12]))
    s.flush()


def downgrade() -> None:
    op.drop_index("ix_audit_subjects_citizen_id", "audit_subjects")
    op.drop_table("audit_subjects")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("client_request_id")
