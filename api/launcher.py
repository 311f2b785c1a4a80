"""Run the service in a child process on a loopback port and wait until it is ready.

Used where a real server must answer real HTTP: the end-to-end tests and the load benchmark.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from biometric import config

# Ports handed out below the kernel's ephemeral range (Linux: 32768-60999) and above Ray's
# worker ports (10002-19999): a port the OS picked from the ephemeral range could be taken
# again by any process (a service with embedded Ray starts dozens) before the server binds it,
# which happened in tests/test_distributed.py (EADDRINUSE).
PORT_RANGE = (20000, 32000)


def free_port() -> int:
    """A loopback port nothing listens on now, outside the ranges other processes draw from."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*PORT_RANGE)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {PORT_RANGE}")


def start_server(
    env: dict[str, str], timeout_s: float = 120.0, workers: int = 1, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the service (:mod:`api.server`) with ``env`` added to this process's environment
    and return the process and its base URL once ``/readyz`` answers 200."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "api.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=config.REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API server exited during start-up (code {proc.returncode})")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"API server not ready in {timeout_s:g} s")
            time.sleep(0.2)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=30)
        raise


@contextmanager
def running_server(env: dict[str, str], timeout_s: float = 120.0) -> Iterator[str]:
    """:func:`start_server`, stopped afterwards."""
    proc, url = start_server(env, timeout_s)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
