"""Engine set-up and programmatic Alembic migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from biometric import config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


def default_sqlite_path() -> Path:
    return config.REPO_ROOT / "var" / "biometric.db"


def database_url(url: str | None = None) -> str:
    """The explicit URL, else ``BIOMETRIC_DATABASE_URL``, else SQLite under ``var/``."""
    return url or os.environ.get("BIOMETRIC_DATABASE_URL") or f"sqlite:///{default_sqlite_path()}"


def make_engine(url: str | None = None) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, hide_parameters=True
        )
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows (erased templates, thumbnails) are overwritten with zeros, not left
            # in free pages.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    # hide_parameters: SQL errors and logs never quote the values (citizen ids, names).
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade head`` on this engine. Safe to run from several processes at once on
    PostgreSQL (advisory lock); on SQLite the database write lock serialises writers."""
    cfg = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Off outside any transaction (SQLite ignores it inside one): a migration that
            # recreates a table must not cascade the old table's drop to its dependents.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(748213)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def checkpoint_sqlite_wal(sessions: sessionmaker[Session], attempts: int = 20) -> bool:
    """Copy SQLite's write-ahead log into the database file and truncate it, so pages holding
    deleted rows do not linger in ``-wal``. Retries while readers hold old snapshots; returns
    whether it completed (always True on other backends, which have no such file)."""
    with sessions() as s:
        if s.get_bind().dialect.name != "sqlite":
            return True
        for _ in range(attempts):
            busy = s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()[0]
            if not busy:
                return True
            time.sleep(0.05)
    return False


def purge_deleted(sessions: sessionmaker[Session], tables: tuple[str, ...]) -> None:
    """After deleting personal data: on SQLite move the WAL into the database file, whose
    deleted pages ``secure_delete`` zeroed; on PostgreSQL VACUUM ``tables`` (and their TOAST
    tables and indexes), so the dead row versions are removed from the table files rather than
    left until autovacuum. What stays in PostgreSQL's WAL: README, "Erasure"."""
    with sessions() as s:
        engine = s.get_bind()
    if engine.dialect.name == "postgresql":
        # Plain VACUUM unlinks the dead versions but may leave their bytes in the page's free
        # space (measured: the newest row of a page stays readable in the file); FULL rewrites
        # the tables (an exclusive lock, time proportional to the table).
        full = os.environ.get("BIOMETRIC_ERASURE_VACUUM", "full") != "plain"
        # VACUUM cannot run in a transaction block.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(("VACUUM FULL " if full else "VACUUM ") + ", ".join(tables)))
    else:
        checkpoint_sqlite_wal(sessions)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
