"""The verify process pool: real decisions from worker processes, refused inputs named, and a
timed-out request's worker really stopped and replaced (its slot is not lost)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from benchmarks.stages import encode_jpeg, letterbox
from biometric.decode import read_image
from biometric.verification import ImageRejected
from biometric.workers import PipelinePool


@pytest.fixture(scope="module")
def frames(data_dir: Path) -> list[bytes]:
    paths = sorted((data_dir / "fr_examples" / "identities" / "obama").glob("*"))[:2]
    assert len(paths) == 2
    return [encode_jpeg(letterbox(read_image(p).rgb)) for p in paths]


def test_pool_verifies_refuses_and_replaces_a_timed_out_worker(frames: list[bytes]) -> None:
    async def scenario() -> None:
        async with PipelinePool(1) as pool:
            result, _ = await pool.verify(frames[0], frames[1])
            assert result.decision.value == "match" and result.score is not None
            with pytest.raises(ImageRejected) as refused:
                await pool.verify(b"not an image", frames[1])
            assert refused.value.image == "live"
            first = pool._workers[0].process
            with pytest.raises(TimeoutError), anyio.fail_after(0.005):
                await pool.verify(frames[0], frames[1])
            assert pool.killed == 1 and not first.is_alive()  # its work stopped
            result, queue_ms = await pool.verify(frames[1], frames[0])  # the slot came back
            assert result.decision.value == "match" and queue_ms > 0
            rss = pool.memory_bytes()
            assert len(rss) == 1 and 100e6 < rss[0] < 1e9

    anyio.run(scenario)
