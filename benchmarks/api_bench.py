"""HTTP service throughput and latency: ``python -m benchmarks api [--quick]`` or
``python -m benchmarks.api_bench [--quick] [--concurrency 1,4,16] [--duration 20]``.

Starts the real server (uvicorn, one verify process per core, a temporary SQLite database) in
a subprocess, then drives it over loopback from a second process with N concurrent clients
(threads, one keep-alive connection each) for a fixed time per level, in two flows: one-shot
(``POST /v1/verify`` with both images) and prepared (``POST /v1/chip`` with the chip, then
``POST /v1/verify`` with the live image and the handle, as a counter does: card first, then the
capture). In the prepared flow the latency is the verify call's (after the capture; the chip
call's is reported beside it), and a verification's server CPU includes its chip call. Live
images are real photos cropped around the face to 640x480 JPEG, chips a second photo of the
same person rendered as a 240x320 JPEG 2000 portrait. Only match/no_match answers count as
decisions; the server's CPU time (all its processes, from /proc) is reported per request.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageOps

from api.launcher import running_server
from benchmarks import common

CLIENT_FLAG = "--client"


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _live_640x480(photo: Image.Image, pipeline: Any) -> Image.Image:
    """A 4:3 window around the subject's face (about 3 face widths wide), resized to 640x480:
    what a counter camera sees. Photos where no face is found are letterboxed."""
    rgb = np.asarray(photo.convert("RGB"))
    face = pipeline.analyse(rgb, "live").subject
    if face is None:
        return ImageOps.pad(photo, (640, 480))
    x1, y1, x2, y2 = face.box
    w = min(max(3.0 * (x2 - x1), 320.0), photo.width, photo.height * 4 / 3)
    h = w * 3 / 4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - w / 2, 0.0), photo.width - w)
    top = min(max(cy - h / 2, 0.0), photo.height - h)
    return photo.crop((round(left), round(top), round(left + w), round(top + h))).resize((640, 480))


def make_pairs(data_dir: Path, out: Path, limit: int = 6) -> list[tuple[Path, Path]]:
    """Genuine pairs (live 640x480 JPEG, chip 240x320 JPEG 2000 portrait rendered as in the
    chip benchmark) written to ``out``, then each live capture with another person's chip."""
    from benchmarks import chip as chipmod
    from biometric.pipeline import CHIP, Pipeline

    pipeline = Pipeline()
    root = data_dir / "fr_examples" / "identities"
    pairs = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
        if len(photos) < 2:
            continue
        live = _live_640x480(ImageOps.exif_transpose(Image.open(photos[0])), pipeline)
        src = np.asarray(ImageOps.exif_transpose(Image.open(photos[1])).convert("RGB"))
        subject = pipeline.analyse(src, CHIP).subject
        if subject is None:
            continue
        portrait = chipmod.portrait_crop(src, subject.landmarks, (240, 320))
        live_path, chip_path = out / f"{person.name}-live.jpg", out / f"{person.name}-chip.jp2"
        live_path.write_bytes(_jpeg(live))
        chip_path.write_bytes(chipmod.encode_chip(portrait, grey=False)[0])
        pairs.append((live_path, chip_path))
        if len(pairs) == limit:
            break
    if len(pairs) < 2:
        raise SystemExit(f"fewer than two identities with two photos under {root}")
    # The same live captures against the next person's chip: no-match decisions, timed too.
    return pairs + [(live, pairs[(k + 1) % len(pairs)][1]) for k, (live, _) in enumerate(pairs)]


# -- client process -----------------------------------------------------------------------------


FLOWS = ("one_shot", "prepared")


def client_main(url: str, key: str, concurrency: int, duration_s: float, pairs_json: str,
                flow: str = "one_shot") -> None:
    """Runs in the second process: print one JSON line with latencies and outcome counts."""
    pairs = [(Path(a).read_bytes(), Path(b).read_bytes()) for a, b in json.loads(pairs_json)]
    latencies: list[float] = []
    chip_latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
            i = index
            start_gate.wait()
            while time.perf_counter() < stop_at[0]:
                live, chip = pairs[i % len(pairs)]
                i += 1
                chip_ms = None
                try:
                    if flow == "prepared":
                        t0 = time.perf_counter()
                        r = client.post("/v1/chip", files={"chip": chip})
                        chip_ms = (time.perf_counter() - t0) * 1000.0
                        r.raise_for_status()
                        parts = {"files": {"live": live},
                                 "data": {"chip_handle": r.json()["chip_handle"]}}
                    else:
                        parts = {"files": {"live": live, "chip": chip}}
                    t0 = time.perf_counter()
                    r = client.post("/v1/verify", **parts)
                    outcome = r.json().get("decision") if r.status_code == 200 else r.status_code
                except httpx.HTTPStatusError as exc:
                    outcome = f"chip {exc.response.status_code}"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    latencies.append(ms)
                    if chip_ms is not None:
                        chip_latencies.append(chip_ms)
                    outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + duration_s
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    print(json.dumps({"latencies_ms": latencies, "chip_latencies_ms": chip_latencies,
                      "outcomes": outcomes, "elapsed_s": elapsed}))


# -- driver -------------------------------------------------------------------------------------


def _server_processes() -> list[int]:
    """The uvicorn server this process started and every process under it (verify workers)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    tree, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        for child, ppid in parent.items():
            if ppid == pid:
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                # the server (api.launcher starts ``python -m api.server``), not the clients
                if pid != os.getpid() or b"api.server" in cmd or b"uvicorn" in cmd:
                    tree.append(child)
                    todo.append(child)
    return tree


def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def _rss_mb(pids: list[int]) -> list[float]:
    page = os.sysconf("SC_PAGE_SIZE")
    out = []
    for pid in pids:
        try:
            out.append(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page / 2**20)
        except OSError:
            continue
    return out


def _level(url: str, key: str, c: int, duration_s: float, pairs: list,
           flow: str = "one_shot") -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.api_bench",
        CLIENT_FLAG,
        url,
        key,
        str(c),
        str(duration_s),
        json.dumps([[str(a), str(b)] for a, b in pairs]),
        flow,
    ]
    server = _server_processes()
    cpu_before = _cpu_seconds(server)
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
        cwd=common.REPO_ROOT,
        timeout=duration_s + 300,
    )
    server_cpu_s = _cpu_seconds(server) - cpu_before
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    lat = np.asarray(raw["latencies_ms"], dtype=float)
    n = int(lat.size)
    answered = {"match", "no_match", "retake", "manual_check"}  # a decision, not an error
    ok = sum(v for k, v in raw["outcomes"].items() if k in answered)
    decisions = sum(v for k, v in raw["outcomes"].items() if k in {"match", "no_match"})
    counted = common.check_decisions(raw["outcomes"], f"API at {c} clients ({flow})")
    chip_lat = np.asarray(raw["chip_latencies_ms"], dtype=float)
    return {
        "flow": flow,
        "concurrency": c,
        "load_average": os.getloadavg()[0],
        "chip_call_p50_ms": float(np.percentile(chip_lat, 50)) if chip_lat.size else None,
        "chip_call_p99_ms": float(np.percentile(chip_lat, 99)) if chip_lat.size else None,
        "requests": n,
        "ok": ok,
        "decisions": decisions,
        "decisions_per_second": decisions / raw["elapsed_s"] if raw["elapsed_s"] else None,
        "server_cpu_s": server_cpu_s,
        "server_cpu_ms_per_request": server_cpu_s * 1000.0 / n if n else None,
        "server_rss_mb": _rss_mb(server),
        "outcomes": raw["outcomes"],
        "decision_counts": counted,
        "elapsed_s": raw["elapsed_s"],
        "throughput_rps": n / raw["elapsed_s"] if raw["elapsed_s"] else None,
        "p50_ms": float(np.percentile(lat, 50)) if n else None,
        "p95_ms": float(np.percentile(lat, 95)) if n else None,
        "p99_ms": float(np.percentile(lat, 99)) if n else None,
        "mean_ms": float(lat.mean()) if n else None,
    }


def run(
    quick: bool = False,
    out_dir: Path = common.DEFAULT_OUT,
    concurrency: list[int] | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    concurrency = concurrency or ([1, 2] if quick else [1, 4, 16])
    duration_s = duration_s or (2.5 if quick else 20.0)
    pool = min(4, os.cpu_count() or 1)
    workers = os.cpu_count() or 1  # the service default: one verify process per core
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        tmpdir = Path(tmp)
        pairs = make_pairs(common.data_dir(), tmpdir)
        db_url = f"sqlite:///{tmpdir / 'bench.db'}"

        from biometric.store.db import make_engine, migrate, session_factory
        from biometric.store.keys import create_key

        engine = make_engine(db_url)
        migrate(engine)
        with session_factory(engine)() as s:
            _, key = create_key(s, "bench", "counter")
        engine.dispose()

        env = {
            "BIOMETRIC_DATABASE_URL": db_url,
            "BIOMETRIC_THREAD_POOL_SIZE": str(pool),
            "BIOMETRIC_VERIFY_WORKERS": str(workers),
        }
        with running_server(env) as url:
            # one untimed request per pair: first-call costs do not belong in the figures
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
                for a, b in pairs:
                    c.post("/v1/verify", files={"live": a.read_bytes(), "chip": b.read_bytes()})
            levels = []
            for flow in FLOWS:
                for c in concurrency:
                    levels.append(_level(url, key, c, duration_s, pairs, flow))
                    common.console.print(
                        f"{flow} c={c}: {levels[-1]['throughput_rps']:.2f} verifications/s")
            embedder, point = _served_model(url, key, pairs[0])

    payload = {
        "settings": {
            "quick": quick,
            "embedder": embedder,
            "operating_point": point,
            "flows": list(FLOWS),
            "concurrency": concurrency,
            "duration_s": duration_s,
            "server": {
                "uvicorn_workers": 1,
                "verify_worker_processes": workers,
                "thread_pool_size": pool,
                "onnx_threads": 1,
                "database": "sqlite",
            },
            "pairs": len(pairs),
            "live_size": [640, 480],
            "chip": "240x320 JPEG 2000, 10-20 KB, a second photo of the same person",
            "transport": "HTTP/1.1 over loopback, multipart, one keep-alive connection per client",
        },
        "levels": levels,
    }
    common.write_result(out_dir, "api", payload)
    common.print_table(
        "POST /v1/verify over loopback",
        ["flow", "clients", "verifications", "decisions", "verif/s", "p50 ms", "p95 ms",
         "p99 ms", "CPU ms/verif"],
        [
            [
                lv["flow"],
                lv["concurrency"],
                lv["requests"],
                lv["decisions"],
                lv["throughput_rps"],
                lv["p50_ms"],
                lv["p95_ms"],
                lv["p99_ms"],
                lv["server_cpu_ms_per_request"],
            ]
            for lv in levels
        ],
    )
    return payload


def _served_model(url: str, key: str, pair: tuple[Path, Path]) -> tuple[str, dict[str, Any]]:
    """The embedder option (the server runs the manifest's default) and the operating point it
    answered with."""
    from biometric import config
    from biometric.manifest import load_manifest

    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
        body = c.post("/v1/verify", files={"live": pair[0].read_bytes(),
                                           "chip": pair[1].read_bytes()}).json()
    return load_manifest(config.models_dir()).default_embedder, {
        "fmr": body["fmr"], "threshold": body["threshold"], "condition": body.get("condition")}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CLIENT_FLAG]:
        url, key, c, duration, pairs, flow = argv[1:7]
        client_main(url, key, int(c), float(duration), pairs, flow)
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks.api_bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="~5 s: 2.5 s at concurrency 1 and 2")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT)
    p.add_argument("--concurrency", type=_ints, default=None, help="e.g. 1,4,16")
    p.add_argument("--duration", type=float, default=None, help="seconds per level")
    args = p.parse_args(argv)
    run(args.quick, args.out, args.concurrency, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def section(path: Path, doc: dict) -> list[str]:
    """BENCHMARKS.md section: one row per flow and concurrency level, server CPU per
    verification next to wall time."""
    from benchmarks.markdown import source_line, table

    s = doc["settings"]
    server = s["server"]
    point = s.get("operating_point") or {}
    out = ["## API load", "", source_line(path, doc), "",
           f"{s['transport']}; {s['duration_s']:g} s per level, {s['pairs']} pairs (live "
           f"{s['live_size'][0]}x{s['live_size'][1]}; chip {s['chip']}; genuine and impostor). "
           "Server: " + ", ".join(f"{k} {v}" for k, v in server.items()) + "."]
    if "embedder" in s:
        out.append(
            f"Embedder `{s['embedder']}`, operating point FMR {point.get('fmr')} (threshold "
            f"{point.get('threshold')}). Flows: one-shot (`POST /v1/verify` with both images); "
            "prepared (`POST /v1/chip`, then `POST /v1/verify` with the live image and the "
            "handle): latency is the verify call (after the capture), server CPU per "
            "verification includes its chip call. Target: >= 40 verifications/s with p99 <= "
            "100 ms at 4 clients.")
    out.append("")
    rows = []
    for lv in doc["levels"]:
        counts = lv["decision_counts"]
        rows.append([lv.get("flow", "one_shot"), lv["concurrency"], lv["requests"],
                     lv["decisions_per_second"], lv["p50_ms"], lv["p95_ms"], lv.get("p99_ms"),
                     lv.get("chip_call_p50_ms"), lv["server_cpu_ms_per_request"],
                     counts.get("match", 0), counts.get("no_match", 0),
                     counts.get("not_decided", 0), max(lv["server_rss_mb"]),
                     lv.get("load_average")])
    out += table(["flow", "clients", "verifications", "decisions / s", "p50 ms", "p95 ms",
                  "p99 ms", "chip call p50 ms", "server CPU ms / verification", "match",
                  "no match", "not decided", "largest process RSS MB", "load average"], rows)
    return out
