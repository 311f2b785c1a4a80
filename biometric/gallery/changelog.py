"""Writing the change log (``index_changes``) in commit order.

Change numbers follow commit order. Replaying ``seq > last_seen`` is only sound if no
transaction can commit a change number below one a reader has already seen. PostgreSQL hands out
``seq`` at insert, not at commit, so every transaction that writes the change log first takes
one transaction-scoped advisory lock: writers of the log are serialised from their first insert
to their commit, and the numbers become visible in order. SQLite has a single writer per
database, which gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

# Key of the PostgreSQL advisory lock that orders change-log writers (any constant, unique
# within the database; the migration lock uses 748213).
CHANGE_LOG_LOCK = 748214


@contextmanager
def change_log_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A write transaction that may append to ``index_changes``: on PostgreSQL it first takes
    the change-log advisory lock, so change numbers commit in the order they are handed out."""
    with sessions.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOG_LOCK})
        yield s
