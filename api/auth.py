"""API-key authentication and roles: a FastAPI dependency per allowed set of roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session, sessionmaker

from api.problems import Problem
from biometric.store import keys as key_store
from biometric.store.models import Role


@dataclass(frozen=True)
class Caller:
    key_name: str
    role: str


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_roles(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    allowed = {r.value for r in roles}

    async def dependency(
        request: Request, token: Annotated[str | None, Security(api_key_header)]
    ) -> Caller:
        if not token:
            raise Problem(
                401,
                "unauthorized",
                "missing X-API-Key header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        sessions: sessionmaker[Session] = request.app.state.sessions

        def lookup() -> Caller | None:
            with sessions() as s:
                key = key_store.authenticate(s, token)
                return None if key is None else Caller(key.name, key.role)

        caller = await anyio.to_thread.run_sync(lookup)
        if caller is not None:
            request.state.key_name = caller.key_name  # the audit trail names the key, also on 403
        if caller is None:
            raise Problem(
                401,
                "unauthorized",
                "unknown or revoked API key",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if caller.role not in allowed:
            raise Problem(
                403,
                "forbidden",
                f"role {caller.role!r} may not call this endpoint; allowed: {sorted(allowed)}",
                role=caller.role,
            )
        return caller

    return dependency
