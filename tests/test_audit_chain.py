"""The audit hash chain in the store: rows from before the chain are chained by the migration,
concurrent appends never fork it, and a removed newest row is noticed."""

from __future__ import annotations

import threading

from sqlalchemy import text

from biometric.store import audit as audit_store
from biometric.store.db import make_engine, migrate, session_factory


def _row(n: int) -> dict:
    return {
        "request_id": f"r{n}",
        "key_name": "k",
        "counter_id": None,
        "citizen_id": None,
        "action": "verify",
        "decision": "match",
        "score": 0.5 + n / 1000,
        "reasons": [],
    }


def test_migration_chains_old_rows_and_appends_do_not_fork(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, "0004")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text(
                    "INSERT INTO audit_events (time, request_id, action, decision, reasons, "
                    "model_versions) VALUES (CURRENT_TIMESTAMP, :r, 'verify', 'match', '[]', "
                    "'{}')"
                ),
                {"r": f"old{n}"},
            )
    migrate(engine)
    sessions = session_factory(engine)

    def append(worker: int) -> None:
        for n in range(10):
            with sessions() as s:
                audit_store.record(s, **_row(100 * worker + n))

    threads = [threading.Thread(target=append, args=(w,)) for w in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    with sessions() as s:
        report = audit_store.verify_chain(s)
    assert report.ok and report.rows == 33, report
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)"))
    with sessions() as s:
        report = audit_store.verify_chain(s)
    assert not report.ok and report.rows == 32 and "removed" in report.problem
    engine.dispose()
