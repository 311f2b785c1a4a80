"""Prepared chips between ``POST /v1/chip`` and ``POST /v1/verify``: short-lived, sealed handles.

At a counter the card is read before the camera capture, so the chip's work is done first
(:meth:`biometric.verification.Verifier.prepare`) and the verification after the capture only
runs the live path. The prepared chip must then reach whichever process answers the verify
(uvicorn workers, verify worker processes, several hosts on one PostgreSQL), so it lives in the
database, not in one process's memory.

Sealing: the handle the client gets is ``chp_`` + base64url(16-byte id + 32-byte key). The row
holds SHA-256 of the id (its primary key), the API key's name it is bound to, the expiry and
the prepared chip (templates, face boxes, chip authentication; never the photo) sealed with
AES-256-GCM under the handle's key, the id, key name and expiry as associated data. The key is
never stored: the server cannot decrypt a row without the handle, a reader of the database (or
of a deleted SQLite page, a backup, a WAL file) finds only ciphertext, and an edited row (other
key name, later expiry) fails authentication. No key has to be shared between processes.

A handle is erased when it is used (of two requests with the same handle only the one whose
``DELETE`` removed the row uses it) and when it expires (every put and take purges expired
rows; an expired row is never answered). Once the row is gone no copy of the key exists
anywhere but in the client's memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from biometric.chip.passive_auth import Check, ChipAuthResult, ChipAuthStatus
from biometric.chip.policy import ChipAuthPolicy
from biometric.decide import Reason
from biometric.faces import Face
from biometric.pipeline import CHIP, FaceAnalysis
from biometric.quality import QualityReport
from biometric.store.models import Base, UtcDateTime, utcnow
from biometric.verification import PortraitPlace, PreparedChip, PreparedChipUnusable

PREFIX = "chp_"
ID_BYTES = 16  # 128-bit lookup id: not guessable
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # AES-GCM's standard nonce (a fresh key per handle: any nonce is unique)
FORMAT = 1  # version of the sealed document


class ChipHandleRow(Base):
    __tablename__ = "chip_handles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the handle id
    key_name: Mapped[str] = mapped_column(String(64))  # the API key it is bound to
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM ciphertext
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ChipHandleUnknown(PreparedChipUnusable):
    """No usable prepared chip for this handle and key. Unknown, already used, expired and
    another key's handle read the same, so the answer tells a prober nothing."""

    code = "chip_handle_unknown"

    def __init__(self) -> None:
        super().__init__("unknown, used or expired chip_handle: send the chip again")


# -- sealing ------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _split(handle: str) -> tuple[bytes, bytes]:
    """(id, key) of a handle; :class:`ChipHandleUnknown` for anything that is not one."""
    if not handle.startswith(PREFIX) or len(handle) > 100:
        raise ChipHandleUnknown()
    try:
        raw = _unb64(handle[len(PREFIX):])
    except ValueError:
        raise ChipHandleUnknown() from None
    if len(raw) != ID_BYTES + KEY_BYTES:
        raise ChipHandleUnknown()
    return raw[:ID_BYTES], raw[ID_BYTES:]


def _row_id(handle_id: bytes) -> str:
    return hashlib.sha256(handle_id).hexdigest()


def _aad(row_id: str, key_name: str, expires_at: datetime) -> bytes:
    return json.dumps([row_id, key_name, expires_at.isoformat()]).encode()


def encode(chip: PreparedChip) -> bytes:
    """The prepared chip as JSON (templates as little-endian float32, base64): no pickle, so a
    sealed row can only ever be data."""
    a = chip.analysis
    doc = {
        "format": FORMAT,
        "option": chip.option,
        "models": chip.models,
        "timings_ms": chip.timings_ms,
        "width": a.width,
        "height": a.height,
        "condition": a.condition,
        "faces": [{"box": list(f.box), "score": f.score,
                   "landmarks": np.asarray(f.landmarks, np.float32).tolist()} for f in a.faces],
        "subject": a.subject_index,
        "reasons": [[r.code, r.image, [list(p) for p in r.params]] for r in a.reasons],
        "quality": asdict(a.quality) if a.quality is not None else None,
        "embeddings": [_b64(np.asarray(e, "<f4").tobytes()) for e in a.embeddings],
        "chip_auth": asdict(chip.chip_auth) if chip.chip_auth is not None else None,
        "chip_image": asdict(chip.chip_image) if chip.chip_image is not None else None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(data: bytes) -> PreparedChip:
    doc: dict[str, Any] = json.loads(data)
    if doc.get("format") != FORMAT:
        raise ChipHandleUnknown()
    faces = [Face(tuple(f["box"]), f["score"], np.asarray(f["landmarks"], np.float32))
             for f in doc["faces"]]
    subject = faces[doc["subject"]] if doc["subject"] is not None else None
    reasons = [Reason(code, image, tuple(tuple(p) for p in params))
               for code, image, params in doc["reasons"]]
    quality = doc["quality"]
    analysis = FaceAnalysis(
        CHIP, doc["width"], doc["height"], faces, subject, reasons,
        quality=(QualityReport(**{**quality, "violations": tuple(quality["violations"])})
                 if quality is not None else None),
        embeddings=[np.frombuffer(_unb64(e), "<f4").copy() for e in doc["embeddings"]],
        condition=doc["condition"],
    )
    auth = doc["chip_auth"]
    if auth is not None:
        auth = ChipAuthResult(**{
            **auth,
            "status": ChipAuthStatus(auth["status"]),
            "checks": [Check(c["name"], ChipAuthStatus(c["status"]), c["detail"])
                       for c in auth["checks"]],
            "policy": ChipAuthPolicy(auth["policy"]) if auth["policy"] is not None else None,
        })
    image = doc["chip_image"]
    return PreparedChip(
        analysis=analysis,
        chip_auth=auth,
        chip_image=PortraitPlace(**image) if image is not None else None,
        option=doc["option"],
        models=doc["models"],
        timings_ms=doc["timings_ms"],
    )


# -- the store ----------------------------------------------------------------------------------


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Erase every expired handle; returns how many."""
    result = session.execute(
        delete(ChipHandleRow).where(ChipHandleRow.expires_at <= (now or utcnow()))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def put(session: Session, chip: PreparedChip, key_name: str, ttl_s: float,
        now: datetime | None = None) -> str:
    """Seal and store a prepared chip for ``key_name``; returns its handle (commits)."""
    now = now or utcnow()
    handle_id, key = secrets.token_bytes(ID_BYTES), AESGCM.generate_key(bit_length=256)
    row_id = _row_id(handle_id)
    # Part of the associated data: both backends keep microseconds, so it reads back equal.
    expires_at = now + timedelta(seconds=ttl_s)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = nonce + AESGCM(key).encrypt(nonce, encode(chip), _aad(row_id, key_name, expires_at))
    purge_expired(session, now)
    session.add(ChipHandleRow(id=row_id, key_name=key_name, sealed=sealed, created_at=now,
                              expires_at=expires_at))
    session.commit()
    return PREFIX + _b64(handle_id + key)


def take(session: Session, handle: str, key_name: str,
         now: datetime | None = None) -> PreparedChip:
    """The prepared chip of ``handle``, erased in the same statement (commits). Raises
    :class:`ChipHandleUnknown` when there is none for this key, or it has expired, or its row
    was edited."""
    handle_id, key = _split(handle)
    now = now or utcnow()
    row_id = _row_id(handle_id)
    row = session.execute(
        select(ChipHandleRow.sealed, ChipHandleRow.expires_at)
        .where(ChipHandleRow.id == row_id, ChipHandleRow.key_name == key_name,
               ChipHandleRow.expires_at > now)
    ).first()
    if row is None:
        purge_expired(session, now)
        session.commit()
        raise ChipHandleUnknown()
    sealed, expires_at = row
    try:  # opened before it is erased: a wrong key part leaves the owner's handle alone
        plain = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                    _aad(row_id, key_name, expires_at))
    except InvalidTag:
        raise ChipHandleUnknown() from None
    # Of two requests with the same handle, only the one whose DELETE removed the row uses it;
    # expired rows go in the same transaction (one commit per verification).
    erased = session.execute(delete(ChipHandleRow).where(ChipHandleRow.id == row_id))
    purge_expired(session, now)
    session.commit()
    if erased.rowcount != 1:  # type: ignore[attr-defined]
        raise ChipHandleUnknown()
    return decode(plain)
