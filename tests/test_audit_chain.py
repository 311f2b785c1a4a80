"""The audit hash chain in the store: rows from before the chain are chained by the migration,
concurrent appends never fork it, and a removed newest row is noticed."""

from __future__ import annotations

import threading

from sqlalchemy import text

from biometric.store import audit as audit_store
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.models import AuditEvent


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


# -- signed checkpoints outside the store (issue 21) -----------------------------------------

ROWS = 12


def _rehash_from(sessions, first_id: int) -> None:
    """What an attacker with database write access and this code does after editing rows:
    recompute every hash from ``first_id`` on and repoint the head, so the chain alone is
    consistent again."""
    from sqlalchemy import select

    from biometric.store.models import AuditChain, AuditEvent

    with sessions.begin() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        prev = audit_store.GENESIS
        for event in rows:
            if event.id >= first_id:
                event.prev_hash, event.row_hash = prev, audit_store.row_digest(prev, event)
            prev = event.row_hash
        head = s.get(AuditChain, 1)
        head.length, head.last_hash = len(rows), prev


def _tamper(kind: str, sessions, ids: list[int]) -> int | None:
    """Apply one tampering; return the id of the first row it made bad (None: no row left)."""
    mid = ids[len(ids) // 2]
    with sessions.begin() as s:
        run = lambda sql, **p: s.execute(text(sql), p)  # noqa: E731
        if kind == "rewrite":
            run("UPDATE audit_events SET decision = 'no_match' WHERE id = :i", i=mid)
        elif kind == "rewrite_and_drop_head":  # the attack
            run("DELETE FROM audit_chain")
            run("UPDATE audit_events SET decision = 'no_match' WHERE decision = 'match'")
            return ids[0]
        elif kind == "delete_middle":
            run("DELETE FROM audit_events WHERE id = :i", i=mid)
            return ids[len(ids) // 2 + 1]
        elif kind == "reorder":
            a, b = ids[2], ids[3]  # swap two rows' places
            run("UPDATE audit_events SET id = -1 WHERE id = :i", i=a)
            run("UPDATE audit_events SET id = :a WHERE id = :b", a=a, b=b)
            run("UPDATE audit_events SET id = :b WHERE id = -1", b=b)
            return a
    if kind == "rewrite":
        return mid
    if kind == "rewrite_rehashed":
        with sessions.begin() as s:
            s.execute(text("UPDATE audit_events SET decision = 'no_match' WHERE id = :i"),
                      {"i": mid})
        _rehash_from(sessions, mid)
        return mid
    if kind == "truncate_newest_repoint_head":
        with sessions.begin() as s:
            s.execute(text("DELETE FROM audit_events WHERE id > :i"), {"i": ids[-4]})
        _rehash_from(sessions, ids[-1] + 1)  # nothing to rehash: only the head is repointed
        return None
    if kind == "empty":
        with sessions.begin() as s:
            s.execute(text("DELETE FROM audit_events"))
            s.execute(text("UPDATE audit_chain SET length = 0, last_hash = :g"),
                      {"g": audit_store.GENESIS})
        return None
    raise AssertionError(kind)


TAMPERINGS = ("rewrite", "rewrite_and_drop_head", "rewrite_rehashed", "delete_middle",
              "reorder", "truncate_newest_repoint_head", "empty")


def test_every_tampering_is_detected_against_signed_checkpoints(
    database_url: str, tmp_path
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    key_path = tmp_path / "audit.key"
    audit_store.generate_key(key_path)
    public = audit_store.load_public_key(audit_store.public_path(key_path))
    notary = audit_store.Notary(audit_store.load_private_key(key_path), tmp_path / "cp.jsonl")
    with sessions() as s:
        ids = [audit_store.record(s, notary, **_row(n)).last_id for n in range(ROWS)]
    cps = audit_store.read_checkpoints(notary.path, public)
    assert [c.length for c in cps] == list(range(1, ROWS + 1))
    # A snapshot to restore between tamperings (the rows and the head, as written).
    with engine.connect() as conn:
        rows = conn.execute(AuditEvent.__table__.select()).mappings().all()
        head = conn.execute(text("SELECT * FROM audit_chain")).mappings().one()
    with sessions() as s:
        assert audit_store.verify_chain(s, cps) == audit_store.ChainReport(
            ROWS, True, None, None, ROWS, ROWS
        )
    results = {}
    for kind in TAMPERINGS:
        expected = _tamper(kind, sessions, ids)
        with sessions() as s:
            report = audit_store.verify_chain(s, cps)
            chain_only = audit_store.verify_chain(s)
        results[kind] = (report.ok, report.first_bad_id, chain_only.ok)
        assert not report.ok, (kind, report)
        assert report.first_bad_id == expected, (kind, report)
        with engine.begin() as conn:  # restore
            conn.execute(text("DELETE FROM audit_subjects"))
            conn.execute(text("DELETE FROM audit_events"))
            conn.execute(text("DELETE FROM audit_chain"))
            conn.execute(AuditEvent.__table__.insert(), [dict(r) for r in rows])
            conn.execute(text("INSERT INTO audit_chain (id, length, last_hash) VALUES "
                              "(:id, :length, :last_hash)"), dict(head))
        with sessions() as s:
            assert audit_store.verify_chain(s, cps).ok
    print(f"\n(ok with checkpoints, first bad id, ok by the chain alone): {results}")
    # The chain alone misses the attacks that rehash or repoint the head; the checkpoints do not.
    assert results["rewrite_rehashed"][2] and results["empty"][2]
    engine.dispose()


def test_an_edited_checkpoint_file_is_refused(tmp_path) -> None:
    key_path = tmp_path / "audit.key"
    key = audit_store.generate_key(key_path)
    notary = audit_store.Notary(key, tmp_path / "cp.jsonl")
    notary.sign(5, "ab" * 32, 5)
    public = audit_store.load_public_key(audit_store.public_path(key_path))
    assert audit_store.read_checkpoints(notary.path, public)[0].length == 5
    notary.path.write_text(notary.path.read_text().replace('"length": 5', '"length": 4'))
    import pytest

    with pytest.raises(audit_store.CheckpointError, match="line 1"):
        audit_store.read_checkpoints(notary.path, public)


def test_subject_access_finds_rows_naming_the_citizen_as_a_candidate(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        audit_store.record(s, **{**_row(1), "action": "search", "reasons": [
            {"citizen_id": "123456789012", "score": 0.8, "template_id": 3}]})
        audit_store.record(s, **{**_row(2), "citizen_id": "123456789012"})
        audit_store.record(s, **_row(3))
    with sessions() as s:
        found = audit_store.query(s, audit_store.AuditQuery(citizen_id="123456789012"))
        assert [e.action for e in found] == ["verify", "search"]
        assert audit_store.verify_chain(s).ok
    engine.dispose()


def test_one_checkpoint_file_serves_several_stores(tmp_path) -> None:
    """Checkpoints name their database: a file shared by two stores checks each on its own."""
    key = audit_store.generate_key(tmp_path / "k")
    path = tmp_path / "cp.jsonl"
    for n, name in enumerate(("a", "b")):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        migrate(engine)
        notary = audit_store.Notary(key, path, audit_store.store_name(engine))
        with session_factory(engine)() as s:
            for i in range(2 + n):
                audit_store.record(s, notary, **_row(i))
        cps = audit_store.read_checkpoints(path, key.public_key(), notary.store)
        with session_factory(engine)() as s:
            assert audit_store.verify_chain(s, cps).ok and len(cps) == 2 + n
        engine.dispose()
