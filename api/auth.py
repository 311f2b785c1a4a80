"""API-key authentication and roles, checked before a request body is read.

:class:`AuthGate` (pure ASGI, inside the request-context middleware) finds the route a ``/v1``
request goes to, reads the roles its :func:`require_roles` dependency allows, and answers 401,
403 or 429 from the headers alone, so no body is parsed (nor a 422 given) for an unauthenticated
caller. The dependency stays on every route: it documents the key in OpenAPI and checks the
role again from what the gate found.

Failed authentication is rate-limited (:class:`FailedAuthLimiter`) per client address and per
key prefix: past ``limit`` failures in a window, further failures answer 429 with
``Retry-After`` and are audited as one aggregated row per address or prefix and window, not one
row each. A valid key is still served from a limited address: counters behind one NAT share an
address, and a 256-bit secret cannot be guessed at any rate, so locking the address out would
only let one broken client lock out a whole office.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from api.problems import Problem
from biometric.store.models import Role

# The longest well-formed token: "bmk_" + 12 hex + "_" + 43 url-safe characters (keys.py).
# Anything much longer is refused without a database lookup.
MAX_TOKEN_CHARS = 128
DRAIN_INTERVAL_S = 1.0


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
        caller: Caller | None = getattr(request.state, "caller", None)
        if caller is None:  # AuthGate answers before this for every /v1 route
            raise Problem(401, "unauthorized", "missing X-API-Key header",
                          headers={"WWW-Authenticate": "ApiKey"})
        if caller.role not in allowed:
            raise Problem(403, "forbidden", forbidden_detail(caller.role, allowed),
                          role=caller.role)
        return caller

    dependency.roles = frozenset(allowed)  # type: ignore[attr-defined]  # read by AuthGate
    return dependency


def forbidden_detail(role: str, allowed: set[str] | frozenset[str]) -> str:
    return f"role {role!r} may not call this endpoint; allowed: {sorted(allowed)}"


def key_prefix(token: str | None) -> str | None:
    """The public prefix of a token (``bmk_<prefix>_...``), when it has that shape."""
    parts = (token or "").split("_", 2)
    if len(parts) == 3 and parts[0] == "bmk" and 0 < len(parts[1]) <= 16:
        return parts[1]
    return None


@dataclass
class _Window:
    start: float
    failures: int = 0
    refused: int = 0  # failures answered 429 (audited together when the window ends)


@dataclass(frozen=True)
class Aggregate:
    """Failures refused with 429 for one address or key prefix in one window."""

    kind: str  # client | key_prefix
    value: str
    refused: int
    since: datetime
    until: datetime


class FailedAuthLimiter:
    """Failed authentications per client address and per key prefix in fixed windows, per
    process (with ``--workers N`` each worker counts its own: an attacker gets at most N times
    ``limit`` attempts per window). At most ``max_tracked`` keys are remembered (oldest
    dropped), so a flood from many addresses cannot grow memory without bound."""

    def __init__(self, limit: int, window_s: float, max_tracked: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._ended: list[Aggregate] = []
        self._drained = 0.0
        self._lock = threading.Lock()

    def _keys(self, client: str, prefix: str | None) -> list[tuple[str, str]]:
        return [("client", client)] + ([("key_prefix", prefix)] if prefix else [])

    def _window(self, key: tuple[str, str], now: float) -> _Window:
        w = self._windows.get(key)
        if w is None or now - w.start >= self.window_s:
            if w is not None:
                self._close(key, w)
            w = self._windows[key] = _Window(now)
            while len(self._windows) > self.max_tracked:
                self._close(*self._windows.popitem(last=False))
        self._windows.move_to_end(key)
        return w

    def _close(self, key: tuple[str, str], w: _Window) -> None:
        if w.refused:
            wall = time.time() - (time.monotonic() - w.start)
            self._ended.append(Aggregate(
                key[0], key[1], w.refused, datetime.fromtimestamp(wall, UTC),
                datetime.fromtimestamp(wall + self.window_s, UTC)))

    def blocked(self, client: str, prefix: str | None) -> bool:
        """Whether a failure now would be over the limit (nothing counted)."""
        now = time.monotonic()
        with self._lock:
            for key in self._keys(client, prefix):
                w = self._windows.get(key)
                if w is not None and now - w.start < self.window_s and w.failures >= self.limit:
                    return True
            return False

    def failed(self, client: str, prefix: str | None) -> int | None:
        """Count one failure; the seconds to wait (for ``Retry-After``) when it is over the
        limit, else None (answer 401 and audit it on its own)."""
        now = time.monotonic()
        with self._lock:
            wait = None
            for key in self._keys(client, prefix):
                w = self._window(key, now)
                w.failures += 1
                if w.failures > self.limit:
                    w.refused += 1
                    wait = max(wait or 0, math.ceil(w.start + self.window_s - now))
            return wait

    def drain(self, everything: bool = False) -> list[Aggregate]:
        """Aggregates of the windows that ended (``everything``: close them all, at shutdown)."""
        now = time.monotonic()
        with self._lock:
            if not everything and now - self._drained < DRAIN_INTERVAL_S:
                return []  # a sweep costs O(tracked keys): at most once a second
            self._drained = now
            for key, w in list(self._windows.items()):
                if everything or now - w.start >= self.window_s:
                    self._close(key, w)
                    del self._windows[key]
            ended, self._ended = self._ended, []
            return ended


def aggregate_row(a: Aggregate) -> dict[str, Any]:
    """The audit row of one aggregate: one row per address or prefix and window."""
    return {
        "action": "authenticate",
        "decision": "refused",
        "reasons": [{
            "code": "too_many_failed_authentications",
            "status": 429,
            a.kind: a.value,
            "refused": a.refused,
            "since": a.since.isoformat(),
            "until": a.until.isoformat(),
        }],
    }
