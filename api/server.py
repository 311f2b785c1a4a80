"""Run the service under uvicorn, with deadlines uvicorn does not set itself.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits forever for the
head of a request and for a body that stops arriving: 200 idle or half-sent connections were
held for 120 s in the issue 12 test, each holding a socket and a buffer. :class:`DeadlineProtocol`
closes a connection whose request head is not complete ``header_timeout_s`` after the
connection opened (or after the previous response), and one whose body has been silent for
``read_timeout_s``. A request the app is working on is not timed here (the app has
``request_timeout_s``). It also bounds the request head (``max_header_bytes``: 431 and close),
which httptools does not.

``python -m api.server --port 8000`` runs it directly; ``biometric serve`` and the test
launcher go through :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from functools import cache

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.settings import Settings

# How often an open connection's deadlines are checked (seconds).
CHECK_INTERVAL_S = 1.0


@cache
def _timeouts() -> tuple[float, float]:
    settings = Settings()
    return settings.header_timeout_s, settings.read_timeout_s


@cache
def _max_header_bytes() -> int:
    return Settings().max_header_bytes


_HEAD_TOO_LARGE = (
    b'{"type":"https://biometric.example/problems/header_too_large","status":431,'
    b'"title":"Request Header Fields Too Large","detail":"the request head exceeds the limit"}'
)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a request-head deadline and a body read timeout."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        now = self.loop.time()
        self._last_received = now
        self._waiting_since: float | None = now  # waiting for a request head since
        self._watch = self.loop.call_later(CHECK_INTERVAL_S, self._check)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._last_received = self.loop.time()
        # httptools keeps no limit of its own: uvicorn would collect a head of any size.
        if getattr(self, "_in_head", True):
            end = data.find(b"\r\n\r\n")  # a chunk may hold the head and body bytes
            self._head_bytes = getattr(self, "_head_bytes", 0) + (
                len(data) if end < 0 else end + 4
            )
            if self._head_bytes > _max_header_bytes():
                self.transport.write(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                    b"content-type: application/problem+json\r\nconnection: close\r\n"
                    b"content-length: " + str(len(_HEAD_TOO_LARGE)).encode() + b"\r\n\r\n"
                    + _HEAD_TOO_LARGE
                )
                self.transport.close()
                return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.cancel()
        super().connection_lost(exc)

    def _check(self) -> None:
        if self.transport.is_closing():
            return
        header_timeout, read_timeout = _timeouts()
        now = self.loop.time()
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since > header_timeout:
                self.transport.close()
                return
        else:
            self._waiting_since = None
            # Reading is paused when the app has not taken the body yet: not the client's fault.
            reading = cycle.more_body and not self.flow.read_paused
            if reading and now - self._last_received > read_timeout:
                self.transport.close()
                return
        self._watch = self.loop.call_later(CHECK_INTERVAL_S, self._check)


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = True,
    healthcheck_timeout: int = 60,
) -> None:
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus_client's multiprocess mode: each worker writes its values under this
        # directory and /metrics sums them, whichever worker answers. Set before the workers
        # start (they read it when prometheus_client is imported); a fresh one per start.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="biometric-metrics-")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        http=DeadlineProtocol,
        proxy_headers=False,
        # workers load and warm the models before answering; uvicorn's 5 s default kills
        # them on a busy machine
        timeout_worker_healthcheck=healthcheck_timeout,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="biometric HTTP service (uvicorn)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    run(args.host, args.port, args.workers, args.log_level, args.access_log)


if __name__ == "__main__":
    main()
