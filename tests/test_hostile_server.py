"""A real server under the failures of issue 21: kill -9 of the supervisor and of a worker
mid-enrolment, erasure with two workers on PostgreSQL, a bad-key flood, hostile images, and
the ordering of authentication before body parsing. Loopback only; every loop is bounded.

Photos are real (fr_examples); the hostile images are synthetic (tests/test_decode_limits.py)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from api.launcher import free_port, start_server
from biometric.gallery.models import Claimant, Template
from biometric.store import audit as audit_store
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key
from biometric.store.models import AuditEvent, AuditSubject

PHOTOS = ("biden/biden.jpg", "obama/obama.jpg")

# 4 threads of bad keys, each at most 20000 requests, until a "stop" file appears next to the
# photo, holding off while a "pause" file exists; prints every status.
FLOOD = r"""
import socket, sys, threading, time
from pathlib import Path
url, photo = sys.argv[1], Path(sys.argv[2])
host, port = url.split("//")[1].split(":")
while not photo.exists():
    time.sleep(0.01)
live, stop, out = photo.read_bytes(), photo.with_name("stop"), []
pause = photo.with_name("pause")
body = (b"--b\r\nContent-Disposition: form-data; name=\"live\"; filename=\"l.jpg\"\r\n"
        b"Content-Type: image/jpeg\r\n\r\n" + live + b"\r\n--b--\r\n")
def request(key):
    return (f"POST /v1/verify HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body
def run(n):
    # Pre-encoded requests on raw sockets: the attacker's own CPU stays small, as it would on
    # its own machine.
    for i in range(20000):  # bounded; stopped by the file long before
        if stop.exists():
            return
        while pause.exists() and not stop.exists():
            time.sleep(0.005)
        head, _, rest = request(f"bmk_{n:012x}_{i}").partition(b"\r\n\r\n")
        with socket.create_connection((host, int(port)), timeout=30) as c:
            # The head first: the service answers a bad key from it, without the body.
            c.sendall(head + b"\r\n\r\n")
            c.settimeout(2)
            try:
                data = c.recv(65536)
            except TimeoutError:
                c.settimeout(30)
                c.sendall(rest)
                data = c.recv(65536)
        out.append(int(data.split(b" ", 2)[1]) if data else -1)
threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(map(str, out)))
"""


def _keys(db_url: str) -> dict[str, str]:
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        keys = {r: create_key(s, f"t-{r}", r)[1] for r in ("counter", "reviewer", "admin")}
    engine.dispose()
    return keys


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        out += [int(c) for c in children]
    return out


def _hwm_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _photos(fr_dir: Path) -> list[Path]:
    people = sorted((fr_dir / "identities").iterdir())
    return [p for person in people for p in sorted(person.glob("*.jpg"))]


def test_two_workers_on_postgresql_erasure_supervisor_kill_and_metrics(
    pg_schema, fr_dir: Path, tmp_path: Path
) -> None:
    photos = _photos(fr_dir)[:10]
    with ExitStack() as stack:
        db_url = stack.enter_context(pg_schema("hostile"))
        keys = _keys(db_url)
        index_dir = tmp_path / "index"
        env = {
            "BIOMETRIC_DATABASE_URL": db_url,
            "BIOMETRIC_INDEX_DIR": str(index_dir),
            "BIOMETRIC_VERIFY_WORKERS": "0",
            "BIOMETRIC_THREAD_POOL_SIZE": "1",
            "BIOMETRIC_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
            "BIOMETRIC_AUDIT_CHECKPOINTS": str(tmp_path / "cp.jsonl"),
        }
        from biometric.store.audit import generate_key

        generate_key(tmp_path / "audit.key")
        port = free_port()
        proc, url = start_server(env, workers=2, port=port, timeout_s=300)
        stack.callback(lambda: proc.poll() is None and proc.kill())
        admin = httpx.Client(base_url=url, headers={"X-API-Key": keys["admin"]}, timeout=60)
        citizens = [f"5100000000{n:02d}" for n in range(len(photos))]
        for citizen, photo in zip(citizens, photos, strict=True):
            r = admin.post("/v1/claimants", data={"citizen_id": citizen},
                           files={"photo": (photo.name, photo.read_bytes())})
            assert r.status_code == 201, r.text
        engine = make_engine(db_url)
        with session_factory(engine)() as s:
            blobs = s.scalars(select(Template.embedding)).all()
        for photo in photos[:4]:  # on new connections: both workers load the templates
            with httpx.Client(base_url=url, headers={"X-API-Key": keys["admin"]}) as c:
                assert c.post("/v1/search", files={"photo": ("p.jpg", photo.read_bytes())}
                              ).status_code == 200
        for citizen in citizens:
            assert admin.delete(f"/v1/claimants/{citizen}").status_code == 200
        # /metrics sums every worker: 12 refusals on new connections, whichever worker answers.
        for _ in range(12):
            httpx.get(url + "/v1/audit", timeout=10)
        metrics = httpx.get(url + "/metrics", timeout=10).text
        refused = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("biometric_http_request_duration_seconds_count")
                      and 'status="401"' in line)
        # kill -9 of the supervisor: its workers stop (and save the index) on their own.
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            _answers(url) or any(Path(f"/proc/{w}").exists() for w in workers)
        ):
            time.sleep(0.2)
        orphans = [w for w in workers if Path(f"/proc/{w}").exists()]
        answering = _answers(url)
        copies = sum(
            p.read_bytes().count(blob) for p in index_dir.glob("*") if p.is_file()
            for blob in blobs
        )
        # A new supervisor binds the same port at once.
        proc2, url2 = start_server(env, workers=1, port=port, timeout_s=300)
        proc2.terminate()
        proc2.wait(timeout=60)
        engine.dispose()
    print(f"\n2 workers, PostgreSQL: {len(blobs)} erased templates, {copies} copies in the saved "
          f"index; /metrics counted {refused:g} of 12 refusals; after kill -9 of the supervisor "
          f"{len(orphans)} of {len(workers)} workers left, answering: {answering}")
    assert len(blobs) == len(photos) and copies == 0
    assert refused == 12
    assert not orphans and not answering and url2 == url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_single_worker_flood_bombs_and_kill9_mid_enrolment(
    backend: str, pg_schema, fr_dir: Path, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        db_url = (f"sqlite:///{tmp_path / 'store.db'}" if backend == "sqlite"
                  else stack.enter_context(pg_schema("hostile1")))
        _single_worker(db_url, fr_dir, tmp_path)


def _single_worker(db_url: str, fr_dir: Path, tmp_path: Path) -> None:
    from test_decode_limits import BOMBS  # the synthetic hostile images

    keys = _keys(db_url)
    env = {
        "BIOMETRIC_DATABASE_URL": db_url,
        "BIOMETRIC_INDEX_DIR": str(tmp_path / "index"),
        "BIOMETRIC_VERIFY_WORKERS": "1",
        "BIOMETRIC_THREAD_POOL_SIZE": "2",
        "BIOMETRIC_AUDIT_CHECKPOINTS": str(tmp_path / "cp.jsonl"),
        "BIOMETRIC_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
        "BIOMETRIC_AUTH_FAILURE_LIMIT": "20",
    }
    from biometric.store.audit import generate_key

    generate_key(tmp_path / "audit.key")
    proc, url = start_server(env, timeout_s=300)
    try:
        ids = fr_dir / "identities"
        live, chip = ((ids / p).read_bytes() for p in PHOTOS[:1] * 2)

        def verify_ms(n: int) -> list[float]:
            out = []
            with httpx.Client(base_url=url, headers={"X-API-Key": keys["counter"]},
                              timeout=60) as c:
                for _ in range(n):
                    t = time.perf_counter()
                    r = c.post("/v1/verify", files={"live": ("l.jpg", live),
                                                    "chip": ("c.jpg", chip)})
                    out.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
            return out

        # -- authentication before the body; 431 for a huge head -----------------------------
        with httpx.Client(base_url=url, timeout=30) as c:
            for path in ("/v1/cases/1/decision", "/v1/cases/1/reopen"):
                assert c.post(path, content=b"{not json").status_code == 401
                assert c.post(path, content=b"{", headers={"X-API-Key": keys["counter"]}
                              ).status_code == 403
            assert c.get("/v1/audit", headers={"X-API-Key": "x" * (1 << 20)}
                         ).status_code == 431
            r = c.get("/v1/audit", headers={"X-Request-ID": "mine-1",
                                            "X-API-Key": keys["admin"]})
            assert r.headers["x-request-id"] != "mine-1"

        # -- bad-key flood from 4 clients while a counter verifies ---------------------------
        verify_ms(3)  # warm
        # The flood runs in its own process, so its threads do not hold the honest client's GIL.
        flood = tmp_path / "flood.py"
        flood.write_text(FLOOD)

        engine = make_engine(db_url)
        with session_factory(engine)() as s:
            rows_before = len(s.scalars(select(AuditEvent.id)
                                        .where(AuditEvent.decision == "refused")).all())
        cpu_before = _cpu_s(proc.pid)
        flooder = subprocess.Popen([sys.executable, str(flood), url, str(tmp_path / "photo")],
                                   stdout=subprocess.PIPE, text=True)
        pause = tmp_path / "pause"
        (tmp_path / "photo").write_bytes(live)
        # Flooded and quiet verifications interleaved, so the other work on this shared machine
        # weighs on both alike.
        unloaded, loaded = [], []
        for i in range(80):
            if i % 2:
                pause.unlink(missing_ok=True)
            else:
                pause.touch()
            time.sleep(0.3)
            (loaded if i % 2 else unloaded).extend(verify_ms(1))
        (tmp_path / "stop").touch()
        children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        statuses = [int(x) for x in flooder.communicate(timeout=120)[0].split()]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        flooder_cpu = (after.ru_utime + after.ru_stime
                       - children_cpu.ru_utime - children_cpu.ru_stime)
        server_cpu = _cpu_s(proc.pid) - cpu_before  # the API process (verify runs in a child)
        with session_factory(engine)() as s:
            rows_flood = len(s.scalars(select(AuditEvent.id)
                                       .where(AuditEvent.decision == "refused")).all())
            rows_flood -= rows_before
        p99 = lambda xs: float(np.percentile(xs, 99))  # noqa: E731
        too_many = statuses.count(429)

        # -- 8 concurrent hostile images -----------------------------------------------------
        def hostile(name: str) -> None:
            with httpx.Client(base_url=url, headers={"X-API-Key": keys["admin"]},
                              timeout=60) as c:
                data = BOMBS[name]()
                c.post("/v1/search", files={"photo": ("x", data)})
                c.post("/v1/verify", files={"live": ("x", data), "chip": ("c.jpg", chip)})

        names = sorted(BOMBS)[:8]
        bombers = [threading.Thread(target=hostile, args=(n,)) for n in names]
        [t.start() for t in bombers]
        [t.join() for t in bombers]
        peaks = {pid: _hwm_mb(pid) for pid in [proc.pid, *_children(proc.pid)]}

        # -- kill -9 mid-enrolment: every stored enrolment has its audit row ------------------
        photos = _photos(fr_dir)
        acked: list[str] = []

        def enrol(n: int) -> None:
            with httpx.Client(base_url=url, headers={"X-API-Key": keys["admin"]},
                              timeout=30) as c:
                for i in range(50):
                    citizen = f"52{n}{i:09d}"
                    photo = photos[(n * 7 + i) % len(photos)]
                    try:
                        r = c.post("/v1/claimants", data={"citizen_id": citizen},
                                   files={"photo": (photo.name, photo.read_bytes())})
                    except httpx.TransportError:
                        return
                    if r.status_code == 201:
                        acked.append(citizen)

        enrollers = [threading.Thread(target=enrol, args=(n,)) for n in range(2)]
        [t.start() for t in enrollers]
        time.sleep(4)
        os.kill(proc.pid, signal.SIGKILL)
        [t.join() for t in enrollers]
        with session_factory(engine)() as s:
            stored = set(s.scalars(select(Claimant.citizen_id)).all())
            audited = set(s.scalars(select(AuditEvent.citizen_id)
                                    .where(AuditEvent.action == "enrol")).all())
            named = set(s.scalars(select(AuditSubject.citizen_id)).all())
            # Appended by two threads and the flood's refusals, then killed: still intact.
            public = audit_store.load_public_key(tmp_path / "audit.key.pub")
            chain = audit_store.verify_chain(s, audit_store.read_checkpoints(
                tmp_path / "cp.jsonl", public, audit_store.store_name(make_engine(db_url))))
        engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in _children(proc.pid) if proc.poll() is None else []:
            os.kill(child, signal.SIGKILL)
    print(f"\nflood: {len(statuses)} bad-key requests, {too_many} answered 429, "
          f"{rows_flood} audit rows; honest verify p99 {p99(unloaded):.0f} ms unloaded, "
          f"{p99(loaded):.0f} ms under the flood; API process CPU during the flood "
          f"{server_cpu:.1f} s ({1000 * server_cpu / max(len(statuses), 1):.2f} ms per request, "
          f"honest verifications included); the flooder's own CPU {flooder_cpu:.1f} s")
    print(f"8 hostile images: peak RSS (MB) per process {peaks}")
    print(f"kill -9 mid-enrolment: {len(acked)} acknowledged, {len(stored)} stored, "
          f"{len(stored - audited)} stored without an audit row, "
          f"{len(set(acked) - stored)} acknowledged but lost")
    assert too_many > 0 and rows_flood < 60
    # A refusal costs the service well under a millisecond of CPU (no body, no database lookup
    # once limited, no row each). The honest p99 under the flood is printed, and bounded loosely
    # here: on this shared 2-core machine the flooder itself takes CPU from the verification,
    # and the p99 of 40 samples swings with the other work (1.5x to 3x measured here).
    assert server_cpu / len(statuses) < 0.001
    assert p99(loaded) <= 4 * p99(unloaded)
    assert max(peaks.values()) < 600
    assert stored and not (stored - audited) and not (set(acked) - stored)
    assert stored <= named
    print(f"audit after kill -9: {chain}")
    assert chain.ok and chain.anchored >= chain.rows - 2
