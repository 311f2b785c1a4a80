"""A pool of pipeline processes behind an async caller: every core verifies, and a request that
times out stops computing.

Python threads share one interpreter, and the pipeline's numpy/OpenCV glue between model calls
holds the GIL, so a thread pool does not use every core. Each worker here is a process that
loads the models once (spawned, so no onnxruntime state is forked) and verifies one request at
a time. A request takes an idle worker (waiting while all are busy: that wait is the
back-pressure), sends it the two images and awaits the answer in a thread, never on the event
loop. When the caller gives up (timeout or cancellation) the worker is killed, since a thread
cannot be interrupted mid-computation, and a fresh one takes its slot (the next request to take
it waits while its models load). So at most ``size`` verifications ever compute at once,
whatever the clients do.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.reader import ChipReading
from biometric.errors import BiometricError
from biometric.pipeline import Pipeline, PipelineConfig
from biometric.procs import die_with_parent
from biometric.verification import ImageRejected, PreparedChip, Verifier, VerifyOutcome


@dataclass(frozen=True)
class PoolConfig:
    models_dir: Path | None = None
    settings: PipelineConfig | None = None
    embedder: str | None = None
    chip_auth: ChipAuthPolicy = ChipAuthPolicy.WARN


def _serve(conn: Connection, config: PoolConfig) -> None:
    """Worker process: load once, then answer ("compare", live, chip) and ("prepare", chip)
    requests until the pipe closes."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(parent.pid, signal.SIGKILL)  # holds no state worth a clean exit
    pipeline = Pipeline(config.models_dir, config.settings, config.embedder)
    pipeline.warm_up()
    _ = pipeline.operating_point
    verifier = Verifier(pipeline, config.chip_auth)  # the chip was read by the caller
    conn.send(("ready", _rss_bytes()))
    while True:
        try:
            op, *args = conn.recv()
        except EOFError:
            return
        try:
            if op == "prepare":  # (chip reading or portrait) -> PreparedChip
                result: PreparedChip | VerifyOutcome = verifier.prepare(*args)
            else:  # "compare": (live, chip reading, portrait or PreparedChip) -> VerifyOutcome
                result = verifier.compare(*args)
                for analysis in (result.live, result.chip):  # crops are not needed by the caller
                    analysis.crops = []
        except BiometricError as exc:
            conn.send(("refused", exc if isinstance(exc, ImageRejected) else
                       ImageRejected(exc, None)))
            continue
        conn.send(("ok", result, _rss_bytes()))


def _rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class _Worker:
    def __init__(self, ctx: Any, config: PoolConfig) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_serve, args=(child, config), daemon=True, name="biometric-verify"
        )
        self.process.start()
        child.close()
        self.ready = False
        self.rss = 0

    def wait_ready(self) -> None:
        """Block until the models are loaded; raise if the process died trying."""
        try:
            tag, rss = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise RuntimeError(
                f"verify worker exited while loading models (exit code {self.process.exitcode})"
            ) from None
        assert tag == "ready"
        self.ready, self.rss = True, rss

    def roundtrip(self, request: tuple) -> tuple:
        self.conn.send(request)
        return self.conn.recv()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class PipelinePool:
    """``size`` worker processes; use ``async with PipelinePool(...)`` or start()/close()."""

    def __init__(self, size: int, config: PoolConfig | None = None) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = size
        self.config = config or PoolConfig()
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._idle_send, self._idle_recv = anyio.create_memory_object_stream[_Worker](size)
        self.killed = 0  # workers stopped because their request was abandoned
        self._threads = anyio.CapacityLimiter(size)

    async def start(self) -> None:
        """Spawn every worker (they load in parallel) and wait until all are ready, so a
        broken model directory fails the start, not the first request."""
        self._workers = [_Worker(self._ctx, self.config) for _ in range(self.size)]
        for w in self._workers:
            await anyio.to_thread.run_sync(w.wait_ready)
            self._idle_send.send_nowait(w)

    async def close(self) -> None:
        for w in self._workers:
            w.kill()
        self._workers.clear()

    async def __aenter__(self) -> PipelinePool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def memory_bytes(self) -> list[int]:
        """Resident memory of each ready worker after its last request (or after loading)."""
        return [w.rss for w in self._workers if w.ready]

    async def verify(self, live: bytes, chip: ChipReading | bytes | PreparedChip
                     ) -> tuple[VerifyOutcome, float]:
        """(outcome, queue ms): :meth:`biometric.verification.Verifier.compare` in a worker
        (``chip``: a prepared chip, the chip reading, or a portrait image)."""
        outcome, queue_ms = await self._call(("compare", live, chip))
        assert isinstance(outcome, VerifyOutcome)
        return outcome, queue_ms

    async def prepare(self, chip: ChipReading | bytes) -> tuple[PreparedChip, float]:
        """(prepared chip, queue ms): :meth:`biometric.verification.Verifier.prepare` in a
        worker."""
        prepared, queue_ms = await self._call(("prepare", chip))
        assert isinstance(prepared, PreparedChip)
        return prepared, queue_ms

    async def _call(self, request: tuple) -> tuple[VerifyOutcome | PreparedChip, float]:
        """(result, queue ms) of one request in an idle worker. Raises
        :class:`~biometric.verification.ImageRejected` for refused inputs. Wrap in
        ``anyio.fail_after`` for a deadline: the worker is then
        killed and its slot handed on at once to a fresh process (the next request to take
        that slot waits for its models to load, as queue time)."""
        queued = time.perf_counter()
        worker = await self._idle_recv.receive()
        done = False
        try:
            if not worker.ready:
                await anyio.to_thread.run_sync(worker.wait_ready)
            queue_ms = (time.perf_counter() - queued) * 1000.0
            # A thread per busy worker waits for its reply; if the caller gives up, the thread
            # is abandoned and the kill below ends its recv().
            reply = await anyio.to_thread.run_sync(
                worker.roundtrip, request, limiter=self._threads, abandon_on_cancel=True
            )
            done = True
        finally:
            if not done:
                self.killed += 1
                worker.kill()
                self._workers.remove(worker)
                worker = _Worker(self._ctx, self.config)
                self._workers.append(worker)
            self._idle_send.send_nowait(worker)
        if reply[0] == "refused":
            raise reply[1]
        worker.rss = reply[2]
        return reply[1], queue_ms
