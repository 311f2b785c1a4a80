"""Write, read and verify the audit trail.

Tamper evidence has two layers.

1. A hash chain in the store: each row carries ``row_hash = SHA-256(prev_hash || canonical JSON
   of the row)``, the previous row's hash being ``prev_hash`` (64 zeros for the first row), and
   the one-row ``audit_chain`` table holds the chain's length and last hash. Editing a row breaks
   its hash, deleting or reordering rows breaks the next row's link.
2. Signed checkpoints outside the store (:class:`Notary`): after every append the service signs
   ``(length, head hash, last row id)`` with an Ed25519 key the database does not hold and
   appends the line to an append-only file. Whoever can write the database and run this code can
   rebuild a consistent chain, or delete its newest rows and repoint the head, or empty it; none
   of that matches the signed checkpoints. :func:`verify_chain` (``biometric audit verify``)
   recomputes the chain, checks every checkpoint against the row at its position, and reports
   the first row that does not fit.

What is not covered: rows appended after the newest checkpoint (a window of one append, or of
a crash between a commit and its checkpoint line), and an attacker who also holds the signing
key or can rewrite the checkpoint file (README, "Audit trail").
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Select, func, inspect, or_, select, update
from sqlalchemy.orm import Session, defer

from biometric import config
from biometric.store.models import AuditChain, AuditEvent, AuditSubject, utcnow

GENESIS = "0" * 64
_HEAD = 1  # id of the one audit_chain row
# Domain separation: a checkpoint signature can never be mistaken for another signed message.
_CHECKPOINT_CONTEXT = b"biometric-audit-checkpoint-v1\n"


def default_key_path() -> Path:
    return config._path_from_env(
        "BIOMETRIC_AUDIT_KEY_FILE", config.REPO_ROOT / "var" / "audit" / "signing.key"
    )


def default_checkpoint_path() -> Path:
    return config._path_from_env(
        "BIOMETRIC_AUDIT_CHECKPOINTS", config.REPO_ROOT / "var" / "audit" / "checkpoints.jsonl"
    )


def row_digest(prev_hash: str, event: AuditEvent) -> str:
    """The hash of one row, over every field but the hashes, as they read back from the store
    (a JSON round trip makes tuples lists, as the JSON columns do)."""
    fields = json.loads(json.dumps(event.to_dict()))
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


# -- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    length: int  # rows in the chain
    head: str  # the hash of the row at position ``length``
    last_id: int  # that row's id (0 for the empty chain)
    time: str
    store: str = ""  # which database (its URL, password hidden): one file may serve several

    def fields(self) -> dict[str, Any]:
        return {"length": self.length, "head": self.head, "last_id": self.last_id,
                "time": self.time, "store": self.store}

    def payload(self) -> bytes:
        return _CHECKPOINT_CONTEXT + json.dumps(self.fields(), sort_keys=True).encode()


class CheckpointError(Exception):
    """The checkpoint file or key cannot be used (missing, unreadable, bad signature)."""


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Write a new Ed25519 signing key (PEM, mode 0600) and its public key next to it
    (``.pub``), refusing to overwrite an existing key."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path(path).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def public_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file, or the public half of a private key file."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


class Notary:
    """Signs chain heads and appends them, one JSON line each, to the checkpoint file. The file
    is opened ``O_APPEND`` and each line written by one ``write``: several processes append to
    one file without interleaving lines. Not fsynced per line (a power cut may lose the last
    lines; verify then reports those rows as not yet anchored, not as tampering)."""

    def __init__(self, key: Ed25519PrivateKey, path: Path, store: str = "") -> None:
        self._key = key
        self.path = path
        self.store = store
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, key_path: Path | None = None, path: Path | None = None, store: str = ""
    ) -> Notary:
        """The notary for the configured key and file. The key at the default location is
        created on first use (a development set-up); a configured key must exist."""
        configured = key_path is not None or "BIOMETRIC_AUDIT_KEY_FILE" in os.environ
        key_path = key_path or default_key_path()
        if not key_path.is_file():
            if configured:
                raise CheckpointError(f"audit signing key {key_path} not found")
            generate_key(key_path)
        return cls(load_private_key(key_path), path or default_checkpoint_path(), store)

    def sign(self, length: int, head: str, last_id: int) -> None:
        cp = Checkpoint(length, head, last_id, datetime.now(UTC).isoformat(), self.store)
        sig = base64.b64encode(self._key.sign(cp.payload())).decode()
        line = json.dumps({**cp.fields(), "sig": sig}) + "\n"
        with self._lock:
            os.write(self._fd, line.encode())

    def anchor_head(self, session: Session) -> None:
        """Sign the current head (at start-up: anchors rows written before checkpoints)."""
        head = session.get(AuditChain, _HEAD)
        if head is not None:
            last_id = session.scalar(
                select(AuditEvent.id).where(AuditEvent.row_hash == head.last_hash)
            ) if head.length else 0
            self.sign(head.length, head.last_hash, last_id or 0)

    def close(self) -> None:
        os.close(self._fd)


def read_checkpoints(
    path: Path, public_key: Ed25519PublicKey, store: str | None = None
) -> list[Checkpoint]:
    """Every checkpoint in the file (of ``store`` only, when given), ordered by length. Raises
    :class:`CheckpointError` for a line whose signature does not verify (the file was
    edited)."""
    from cryptography.exceptions import InvalidSignature

    if not path.is_file():
        return []
    out = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            cp = Checkpoint(int(d["length"]), str(d["head"]), int(d["last_id"]), str(d["time"]),
                            str(d.get("store", "")))
            public_key.verify(base64.b64decode(d["sig"]), cp.payload())
        except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
            if n == len(lines) and not line.endswith("}"):
                continue  # a last line cut short by a crash: nothing to trust, nothing forged
            raise CheckpointError(f"{path} line {n}: not a valid signed checkpoint") from exc
        if store is None or cp.store == store:
            out.append(cp)
    return sorted(out, key=lambda c: c.length)


def store_name(engine: Any) -> str:
    """How checkpoints name a database: its URL with the password hidden (the service and
    ``biometric audit verify`` must be given the same URL)."""
    return engine.url.render_as_string(hide_password=True)


# -- writing -------------------------------------------------------------------------------


def subjects_of(citizen_id: str | None, reasons: Iterable[dict[str, Any]] | None) -> set[str]:
    """Whose personal data a row is about: its citizen and every citizen its reasons name (the
    candidates of a search or an enrolment), so a subject-access request finds them all."""
    found = {citizen_id} if citizen_id else set()
    for reason in reasons or ():
        for key in ("citizen_id", "candidate_citizen_id"):
            value = reason.get(key) if isinstance(reason, dict) else None
            if isinstance(value, str) and value:
                found.add(value)
    return found


@dataclass(frozen=True)
class Appended:
    """What the caller signs once the transaction holding the row has committed."""

    length: int
    head: str
    last_id: int


def append(session: Session, **fields: Any) -> Appended:
    """Add one row to the chain in the session's transaction, without committing: a caller
    commits it together with what it records (an enrolment). Updating the head first takes its
    row lock (PostgreSQL) or the write lock (SQLite), so concurrent appends queue up, never
    fork."""
    length, head = session.execute(
        update(AuditChain)
        .where(AuditChain.id == _HEAD)
        .values(length=AuditChain.length + 1)
        .returning(AuditChain.length, AuditChain.last_hash)
    ).one()
    event = AuditEvent(**fields, prev_hash=head)
    event.time = event.time or utcnow()
    session.add(event)
    session.flush()  # assigns the id, which is hashed
    event.row_hash = row_digest(head, event)
    session.execute(
        update(AuditChain).where(AuditChain.id == _HEAD).values(last_hash=event.row_hash)
    )
    for citizen in subjects_of(event.citizen_id, event.reasons):
        session.add(AuditSubject(event_id=event.id, citizen_id=citizen[:12]))
    return Appended(int(length), event.row_hash, int(event.id))


def record(session: Session, notary: Notary | None = None, **fields: Any) -> Appended:
    """Append one row, commit, and sign the new head."""
    appended = append(session, **fields)
    session.commit()
    if notary is not None:
        notary.sign(appended.length, appended.head, appended.last_id)
    return appended


def stored_rows(session: Session) -> Select[tuple[AuditEvent]]:
    """All rows in id order, for a migration: columns a later revision adds are not loaded
    (they read as unset, as they were when the row was hashed)."""
    present = {c["name"] for c in inspect(session.connection()).get_columns("audit_events")}
    missing = [c for c in AuditEvent.__table__.columns if c.name not in present]
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    return stmt.options(*(defer(getattr(AuditEvent, c.name)) for c in missing))


def chain_existing(session: Session) -> None:
    """Chain the rows written before the chain existed (migration 0006), in id order, and
    create the head."""
    prev, n = GENESIS, 0
    for event in session.scalars(stored_rows(session)):
        event.prev_hash, event.row_hash = prev, row_digest(prev, event)
        prev, n = event.row_hash, n + 1
    session.add(AuditChain(id=_HEAD, length=n, last_hash=prev))
    session.flush()


# -- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_bad_id: int | None = None
    problem: str | None = None
    anchored: int = 0  # rows covered by the newest signed checkpoint
    checkpoints: int = 0


def verify_chain(
    session: Session, checkpoints: list[Checkpoint] | None = None, batch: int = 1000
) -> ChainReport:
    """Recompute the chain from the first row and hold it against the signed checkpoints
    (``None``: the chain alone, without an outside anchor); report the first row that does not
    fit. The head is read before the rows (and the checkpoints before the head), so rows
    appended while this runs are left for the next check rather than reported."""
    cps = checkpoints or []
    at = {cp.length: cp for cp in cps}
    signed = cps[-1].length if cps else 0
    head = session.get(AuditChain, _HEAD)
    session.expunge_all()
    if head is None:  # removed: check every row, then say so
        length, last = session.scalar(select(func.count()).select_from(AuditEvent)) or 0, None
    else:
        length, last = head.length, head.last_hash
    bad = _fail(len(cps))
    if 0 in at and at[0].head != GENESIS:
        return bad(0, None, "checkpoint of the empty chain does not match")
    prev, n, last_id = GENESIS, 0, 0
    good_pos, first_after_good = 0, None  # the newest position a checkpoint confirmed
    while n < max(length, signed):
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > last_id)
            .order_by(AuditEvent.id)
            .limit(min(batch, max(length, signed) - n))
        ).all()
        if not rows:
            break
        for event in rows:
            if event.prev_hash != prev:
                return bad(n, event.id, "does not link to the row before it")
            if row_digest(prev, event) != event.row_hash:
                return bad(n, event.id, "content does not match its hash")
            prev, n, last_id = event.row_hash, n + 1, event.id
            if first_after_good is None:
                first_after_good = event.id
            cp = at.get(n)
            if cp is not None:
                if cp.head != event.row_hash or cp.last_id != event.id:
                    return bad(
                        good_pos, first_after_good,
                        f"differs from the checkpoint signed at {cp.time} over {cp.length} "
                        "rows (rows were rewritten, inserted or removed)",
                    )
                good_pos, first_after_good = n, None
        session.expunge_all()
    if signed > n:
        return bad(
            n, first_after_good,
            f"rows were removed: the checkpoint signed at {cps[-1].time} covers {signed} rows, "
            f"the store has {n}",
        )
    if head is None and (n or signed):
        return bad(n, None, "the chain's head row is missing")
    if n < length or (head is not None and n == length and prev != last):
        return bad(n, None, "rows were removed (the chain's head does not match)")
    if checkpoints is not None and not cps and n:
        return bad(n, None, "no signed checkpoint: the trail is not anchored")
    return ChainReport(n, True, None, None, min(signed, n), len(cps))


def _fail(checkpoints: int):
    def bad(rows: int, first_bad_id: int | None, problem: str) -> ChainReport:
        return ChainReport(rows, False, first_bad_id, problem, 0, checkpoints)

    return bad


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    citizen_id: str | None = None
    counter_id: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    before_id: int | None = None  # cursor: newest first, rows with id < before_id


def query(session: Session, q: AuditQuery) -> list[AuditEvent]:
    stmt = select(AuditEvent)
    if q.citizen_id is not None:
        # A subject-access request: rows about the citizen and rows naming them (candidates).
        named = select(AuditSubject.event_id).where(AuditSubject.citizen_id == q.citizen_id)
        stmt = stmt.where(or_(AuditEvent.citizen_id == q.citizen_id, AuditEvent.id.in_(named)))
    if q.counter_id is not None:
        stmt = stmt.where(AuditEvent.counter_id == q.counter_id)
    if q.decision is not None:
        stmt = stmt.where(AuditEvent.decision == q.decision)
    if q.since is not None:
        stmt = stmt.where(AuditEvent.time >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEvent.time < q.until)
    if q.before_id is not None:
        stmt = stmt.where(AuditEvent.id < q.before_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(q.limit)))
