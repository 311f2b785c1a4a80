"""API keys: ``bmk_<prefix>_<secret>``; the row keeps the prefix, a per-key salt and
``sha256(salt || secret)``. The token is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from biometric.store.models import ApiKey, Role, utcnow

TOKEN_PREFIX = "bmk"


class KeyStoreError(Exception):
    """A key operation that cannot be done (duplicate name, unknown name)."""


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def create_key(session: Session, name: str, role: Role | str) -> tuple[ApiKey, str]:
    role = Role(role)
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise KeyStoreError(f"a key named {name!r} already exists")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    key = ApiKey(
        name=name, role=role.value, prefix=prefix, salt=salt, key_hash=_digest(salt, secret)
    )
    session.add(key)
    session.commit()
    return key, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The active key for this token, or None (unknown, malformed or revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.key_hash, _digest(key.salt, parts[2])):
        return None
    return key if key.active else None


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise KeyStoreError(f"no key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key
