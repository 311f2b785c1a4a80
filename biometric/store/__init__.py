"""The enrolment store's database: API keys and the audit trail (SQLAlchemy 2, Alembic).

SQLite by default (``var/biometric.db`` under the repository, WAL mode), PostgreSQL when
``BIOMETRIC_DATABASE_URL`` says so. :func:`migrate` brings any database to the newest schema;
later features add tables as new revisions under ``biometric/store/migrations/versions``.
"""

from biometric.store.db import database_url, make_engine, migrate, session_factory
from biometric.store.models import ApiKey, AuditEvent, Base, Role

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Role",
    "database_url",
    "make_engine",
    "migrate",
    "session_factory",
]
