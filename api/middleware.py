"""Request context, as pure ASGI middleware (nothing buffered): the request id, the body size
limit and the latency metrics."""

from __future__ import annotations

import re
import time
import uuid

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auditing import audit_refusal
from api.metrics import Metrics
from api.problems import Problem, problem_response

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
