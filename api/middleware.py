"""Request context, as pure ASGI middleware (nothing buffered): the request id, the body size
limit and the latency metrics."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import Any

import anyio.to_thread
from fastapi import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auditing import audit_aggregate, audit_refusal
from api.auth import (
    MAX_TOKEN_CHARS,
    Caller,
    FailedAuthLimiter,
    aggregate_row,
    forbidden_detail,
    key_prefix,
)
from api.metrics import Metrics
from api.problems import Problem, from_problem, problem_response
from biometric.store import keys as key_store

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Every /v1 answer may carry personal data (citizen ids, scores, faces): no cache may keep it.
# nosniff everywhere: a browser must never guess a type other than the one declared.
_ALWAYS = [(b"x-content-type-options", b"nosniff")]
_PERSONAL = [*_ALWAYS, (b"cache-control", b"no-store")]


class RequestContextMiddleware:
    """Pure ASGI (nothing buffered): assigns the request id, refuses bodies over the limit from
    Content-Length before reading and by counting streamed bytes, and times every request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # The service names every request itself (a client's id could repeat or name another
        # request); a well-formed client id is kept apart, for the client's own tracing.
        incoming = headers.get("x-request-id", "")
        rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["client_request_id"] = incoming if _REQUEST_ID_RE.match(incoming) else None
        start = time.perf_counter()
        status = 500
        personal = scope["path"].startswith("/v1/")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = _PERSONAL if personal else _ALWAYS
                replaced = {b"x-request-id"} | {k for k, _ in extra}
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                message["headers"] = [*raw, (b"x-request-id", rid.encode()), *extra]
            await send(message)

        try:
            declared = headers.get("content-length")
            # isascii: str.isdigit() accepts digits such as "²" that int() refuses
            numeric = declared is not None and declared.isascii() and declared.isdigit()
            if declared is not None and (not numeric or int(declared) > self.max_body_bytes):
                request = Request(scope)
                code = "body_too_large" if numeric else "bad_content_length"
                detail = (
                    f"request body is {declared} bytes; the limit is {self.max_body_bytes}"
                    if numeric
                    else "Content-Length is not a number"
                )
                self.metrics.errors.labels(code).inc()
                await audit_refusal(request, 413 if numeric else 400, code)
                response = problem_response(
                    request,
                    413 if numeric else 400,
                    code,
                    detail,
                    headers={"Connection": "close"},
                    limit=self.max_body_bytes,
                )
                await response(scope, receive, send_wrapper)
                return

            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        # FastAPI turns errors raised while it parses a form into a 400; the
                        # error handler reads this flag to answer 413 all the same.
                        scope["state"]["body_too_large"] = True
                        raise Problem(
                            413,
                            "body_too_large",
                            f"request body exceeds the limit of {self.max_body_bytes} bytes",
                            headers={"Connection": "close"},
                            limit=self.max_body_bytes,
                        )
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(scope["method"], endpoint, str(status)).observe(
                time.perf_counter() - start
            )


class AuthGate:
    """Authenticates ``/v1`` requests from their headers before the app reads the body (see
    :mod:`api.auth`): 401 (no or bad key), 429 (too many failures, ``Retry-After``), 403 (a
    role the route does not allow). Pure ASGI; sets ``state.caller`` for the route."""

    def __init__(
        self, app: ASGIApp, routes: list[Any], limiter: FailedAuthLimiter, metrics: Metrics
    ) -> None:
        self.app = app
        self.routes = routes  # the API routes (full paths), matched here as the router would
        self.limiter = limiter
        self.metrics = metrics
        # Keys that authenticated in this process (by digest), so that honest callers sharing
        # an address with a flood are served without a lookup while it lasts. Bounded; a key
        # revoked meanwhile is refused again as soon as the flood's window ends.
        self._recent: dict[str, Caller] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        route_scope = _route_scope(self.routes, scope)
        roles = _roles_of(route_scope.get("route"))
        if roles is None:  # no such route, or one without a key (404/405 from the app)
            await self.app(scope, receive, send)
            return
        request = Request({**scope, **route_scope})
        token = request.headers.get("x-api-key")
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.limiter.blocked(client, key_prefix(token)):
            # Under a flood: no database lookup, only keys that authenticated lately pass.
            caller = self._recent.get(_digest(token))
        else:
            caller = await self._lookup(request, token)
            if caller is not None:
                self._recent[_digest(token)] = caller
                while len(self._recent) > RECENT_KEYS:
                    self._recent.pop(next(iter(self._recent)))
        problem: Problem | None = None
        if caller is None:
            wait = self.limiter.failed(client, key_prefix(token))
            if wait is not None:
                problem = Problem(
                    429, "too_many_failed_authentications",
                    f"too many failed authentications from this address or for this key; "
                    f"retry in {wait} s", headers={"Retry-After": str(wait)})
                request.state.audited = True  # counted into one aggregated row instead
            else:
                detail = "missing X-API-Key header" if not token else "unknown or revoked API key"
                problem = Problem(401, "unauthorized", detail,
                                  headers={"WWW-Authenticate": "ApiKey"})
        else:
            scope.setdefault("state", {})["caller"] = caller
            scope["state"]["key_name"] = caller.key_name  # named in the audit, also on 403
            if caller.role not in roles:
                problem = Problem(403, "forbidden", forbidden_detail(caller.role, roles),
                                  role=caller.role)
        if problem is None:
            await self.app(scope, receive, send)
        else:
            self.metrics.errors.labels(problem.code).inc()
            await audit_refusal(request, problem.status, problem.code)
            await from_problem(request, problem)(scope, receive, send)
        await self._audit_aggregates(request)

    @staticmethod
    async def _lookup(request: Request, token: str | None) -> Caller | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        sessions = request.app.state.sessions

        def lookup() -> Caller | None:
            with sessions() as s:
                key = key_store.authenticate(s, token)
                return None if key is None else Caller(key.name, key.role)

        return await anyio.to_thread.run_sync(lookup)

    async def _audit_aggregates(self, request: Request, everything: bool = False) -> None:
        for aggregate in self.limiter.drain(everything):
            await audit_aggregate(request.app, aggregate_row(aggregate))


RECENT_KEYS = 256


def _digest(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def _route_scope(routes: list[Any], scope: Scope) -> dict[str, Any]:
    """The child scope (route, endpoint, path parameters) of the route this request matches."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return {"route": route, **child}
    return {}


def _roles_of(route: Any) -> frozenset[str] | None:
    dependant = getattr(route, "dependant", None)
    for dep in getattr(dependant, "dependencies", ()):
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            return roles
    return None
