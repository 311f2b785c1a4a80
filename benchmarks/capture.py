"""Cost of guided capture: ``POST /v1/capture-check`` per call.

Frames are what the counter page sends: a 640x480 camera view around a real face (the same
framing as the API benchmark), reduced to 480x360 and JPEG-encoded. Two measurements:

- library: decode + :func:`biometric.guidance.check_capture` in this process, one onnxruntime
  thread; CPU time of the calling thread (``time.thread_time``) and wall time per call;
- endpoint: sequential HTTP calls to a real server (one worker); the server process's CPU time
  (utime + stime from ``/proc``) over all calls divided by their number, so HTTP, key lookup,
  decoding and the check are all in it.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageOps

from api.launcher import running_server
from benchmarks import common
from benchmarks.api_bench import _live_640x480
from benchmarks.markdown import source_line, table
from biometric.guidance import check_capture

FRAME_SIZE = (480, 360)  # api/ui/static/counter.js: CHECK_WIDTH = 480
FULL_WIDTH = 640


def _frames(pipeline: Any, limit: int) -> list[bytes]:
    root = common.data_dir()
    photos = sorted((root / "fr_examples" / "identities").glob("*/*.jp*g"))
    photos += sorted((root / "asian_celeb").glob("*/*.jpg"))[::6]
    frames = []
    for path in photos[:limit]:
        view = _live_640x480(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), pipeline)
        buf = io.BytesIO()
        view.resize(FRAME_SIZE).save(buf, "JPEG", quality=80)  # canvas.toBlob(..., 0.8)
        frames.append(buf.getvalue())
    return frames


def _children_cpu_s() -> float:
    """utime + stime of this process's direct children (the server), in seconds."""
    me, total = os.getpid(), 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # fields[1] is ppid (field 4 of stat)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values)
    return {
        "mean": float(v.mean()),
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
    }


def run(quick: bool, out_dir: Path) -> dict[str, Any]:
    pipeline = common.make_pipeline(threads=1)
    frames = _frames(pipeline, 8 if quick else 30)
    rounds = 1 if quick else 3
    for data in frames:  # first calls plan memory in onnxruntime: not measured
        check_capture(pipeline, pipeline.decode(data).rgb, FULL_WIDTH / FRAME_SIZE[0])
    cpu_ms, wall_ms, detect_ms, instructions = [], [], [], {}
    for _ in range(rounds):
        for data in frames:
            c0, w0 = time.thread_time(), time.perf_counter()
            check = check_capture(pipeline, pipeline.decode(data).rgb, FULL_WIDTH / FRAME_SIZE[0])
            cpu_ms.append((time.thread_time() - c0) * 1000)
            wall_ms.append((time.perf_counter() - w0) * 1000)
            detect_ms.append(check.timings_ms.get("detect", 0.0))
            key = check.instruction.value
            instructions[key] = instructions.get(key, 0) + 1

    with tempfile.TemporaryDirectory(prefix="capture-bench-") as tmp:
        from biometric.store.db import make_engine, migrate, session_factory
        from biometric.store.keys import create_key

        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(db_url)
        migrate(engine)
        with session_factory(engine)() as s:
            _, key = create_key(s, "bench", "counter")
        engine.dispose()
        env = {"BIOMETRIC_DATABASE_URL": db_url, "BIOMETRIC_INDEX_DIR": str(Path(tmp) / "i")}
        with (
            running_server(env) as url,
            httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client,
        ):

            def call(data: bytes) -> None:
                r = client.post(
                    "/v1/capture-check",
                    params={"full_width": FULL_WIDTH},
                    content=data,
                    headers={"Content-Type": "image/jpeg"},
                )
                r.raise_for_status()

            for data in frames:
                call(data)
            calls, c0, w0 = 0, _children_cpu_s(), time.perf_counter()
            for _ in range(rounds):
                for data in frames:
                    call(data)
                    calls += 1
            server_cpu_ms = (_children_cpu_s() - c0) * 1000 / calls
            http_wall_ms = (time.perf_counter() - w0) * 1000 / calls

    payload = {
        "settings": {
            "quick": quick,
            "frames": len(frames),
            "rounds": rounds,
            "frame_size": list(FRAME_SIZE),
            "full_width": FULL_WIDTH,
            "onnx_threads": 1,
            "detector": "MTCNN (biometric.detect)",
        },
        "model_versions": pipeline.model_versions,
        "library": {
            "cpu_ms": _summary(cpu_ms),
            "wall_ms": _summary(wall_ms),
            "detect_wall_ms": _summary(detect_ms),
            "instructions": instructions,
        },
        "endpoint": {
            "calls": calls,
            "server_cpu_ms_per_call": server_cpu_ms,
            "wall_ms": http_wall_ms,
        },
        "target_cpu_ms": 20.0,
    }
    common.write_result(out_dir, "capture", payload)
    common.print_table(
        "Guided capture: POST /v1/capture-check",
        ["where", "CPU ms mean", "CPU ms p95", "wall ms mean"],
        [
            [
                "library (decode + check)",
                payload["library"]["cpu_ms"]["mean"],
                payload["library"]["cpu_ms"]["p95"],
                payload["library"]["wall_ms"]["mean"],
            ],
            ["endpoint (server process)", server_cpu_ms, None, http_wall_ms],
        ],
    )
    return payload


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def section(path: Path, doc: dict) -> list[str]:
    s, lib, ep = doc["settings"], doc["library"], doc["endpoint"]
    out = ["## Guided capture (`POST /v1/capture-check`)", "", source_line(path, doc), ""]
    out.append(
        f"{s['frames']} camera views of real faces sent as {s['frame_size'][0]}x"
        f"{s['frame_size'][1]} JPEG (the page's preview frame), {s['rounds']} round(s); "
        f"detector {s['detector']}, {s['onnx_threads']} onnxruntime thread. Target: "
        f"{doc['target_cpu_ms']:g} ms CPU per call. Instructions given: "
        + ", ".join(f"{k} {n}" for k, n in lib["instructions"].items()) + "."
    )
    out.append("")
    out += table(
        ["where", "CPU ms mean", "CPU ms p50", "CPU ms p95", "wall ms mean"],
        [
            [
                "library: decode + check",
                lib["cpu_ms"]["mean"],
                lib["cpu_ms"]["p50"],
                lib["cpu_ms"]["p95"],
                lib["wall_ms"]["mean"],
            ],
            [
                f"endpoint: server process, {ep['calls']} calls",
                ep["server_cpu_ms_per_call"],
                None,
                None,
                ep["wall_ms"],
            ],
        ],
    )
    return out
