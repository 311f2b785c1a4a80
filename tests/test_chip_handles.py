"""Prepared chips (issue 23): the chip handle is bound to its API key, expires, is erased on use,
works from another process and another server, and the template is never on disk in clear.
Library tests run on SQLite and PostgreSQL; the API test runs two real servers on one database,
with the SYNTHETIC chip specimens (tests/chip_specimens.py) around a real shared photo."""

from __future__ import annotations

import base64
import multiprocessing
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from chip_specimens import CHIP_PHOTO, Specimens, build

from api.launcher import running_server
from biometric.chip.reader import read_chip
from biometric.chip.trust import TrustStore
from biometric.store import chip_handles
from biometric.store.chip_handles import ChipHandleRow, ChipHandleUnknown
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key
from biometric.store.models import utcnow
from biometric.verification import Verifier

LIVE_PHOTO = "identities/kit_harington/john1.jpeg"
IMPOSTOR_PHOTO = "identities/obama/obama.jpg"


@pytest.fixture(scope="module")
def specimens(fr_dir: Path, tmp_path_factory) -> Specimens:
    return build(fr_dir, tmp_path_factory.mktemp("chip"))


@pytest.fixture(scope="module")
def verifier(pipeline, specimens: Specimens) -> Verifier:
    return Verifier(pipeline, trust=TrustStore.load(specimens.csca_dir))


@pytest.fixture()
def sessions(database_url: str):
    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _prepare(verifier: Verifier, specimens: Specimens):
    genuine = specimens.variants["genuine"]
    reading = read_chip(genuine.dg2.read_bytes(), genuine.sod.read_bytes(), verifier.trust)
    return verifier.prepare(reading)


def test_a_prepared_chip_decides_like_the_one_shot_form(verifier: Verifier, specimens: Specimens,
                                                        fr_dir: Path, sessions) -> None:
    prepared = _prepare(verifier, specimens)
    assert prepared.analysis.crops == []  # no photo kept: no crop, the portrait's place only
    assert not hasattr(prepared.chip_image, "image") and prepared.chip_image.image_bytes > 0
    assert len(prepared.analysis.embeddings) == len(verifier.pipeline.embedders)
    genuine = specimens.variants["genuine"]
    reading = read_chip(genuine.dg2.read_bytes(), genuine.sod.read_bytes(), verifier.trust)
    for photo, decision in ((LIVE_PHOTO, "match"), (IMPOSTOR_PHOTO, "no_match")):
        live = (fr_dir / photo).read_bytes()
        one_shot = verifier.compare(live, reading)
        with sessions() as s:
            handle = chip_handles.put(s, prepared, "desk-key", 300)
        with sessions() as s:
            taken = chip_handles.take(s, handle, "desk-key")
        after = verifier.compare(live, taken)
        assert one_shot.decision == after.decision == decision
        assert after.score == pytest.approx(one_shot.score, abs=1e-5)
        assert after.chip_auth.status == one_shot.chip_auth.status == "verified"
        assert after.condition == one_shot.condition
        # after the capture only the live image is processed
        assert "chip_auth" not in after.timings_ms and "chip_auth" in one_shot.timings_ms


def _count(sessions) -> int:
    with sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(ChipHandleRow))


def test_bound_to_its_key_and_erased_on_use(verifier: Verifier, specimens: Specimens,
                                            sessions) -> None:
    prepared = _prepare(verifier, specimens)
    with sessions() as s:
        handle = chip_handles.put(s, prepared, "desk-1", 300)
    wrong_key_part = handle[:-4] + ("AAAA" if not handle.endswith("AAAA") else "BBBB")
    for other, key_name in ((handle, "desk-2"), (wrong_key_part, "desk-1"),
                            (handle[:-6], "desk-1"), ("chp_not-a-handle", "desk-1")):
        with sessions() as s, pytest.raises(ChipHandleUnknown):
            chip_handles.take(s, other, key_name)
    assert _count(sessions) == 1  # none of these erases the owner's handle
    with sessions() as s:
        chip_handles.take(s, handle, "desk-1")
    assert _count(sessions) == 0
    with sessions() as s, pytest.raises(ChipHandleUnknown):
        chip_handles.take(s, handle, "desk-1")


def test_expires_and_is_erased(verifier: Verifier, specimens: Specimens, sessions) -> None:
    prepared = _prepare(verifier, specimens)
    now = utcnow()
    with sessions() as s:
        stale = chip_handles.put(s, prepared, "desk-1", 60, now=now - timedelta(seconds=120))
        fresh = chip_handles.put(s, prepared, "desk-1", 60, now=now)  # purges the expired one
    assert _count(sessions) == 1
    with sessions() as s, pytest.raises(ChipHandleUnknown):
        chip_handles.take(s, stale, "desk-1")
    with sessions() as s, pytest.raises(ChipHandleUnknown):  # taken a minute after: expired
        chip_handles.take(s, fresh, "desk-1", now=now + timedelta(seconds=61))
    assert _count(sessions) == 0


def test_an_edited_row_does_not_open(verifier: Verifier, specimens: Specimens, sessions) -> None:
    """Someone with write access to the database moves a handle to their key or extends it:
    the sealed chip no longer authenticates."""
    prepared = _prepare(verifier, specimens)
    for column, value in (("key_name", "desk-evil"),
                          ("expires_at", utcnow() + timedelta(days=30))):
        with sessions() as s:
            handle = chip_handles.put(s, prepared, "desk-1", 300)
            s.execute(sa.update(ChipHandleRow).values({column: value}))
            s.commit()
        with sessions() as s, pytest.raises(ChipHandleUnknown):
            chip_handles.take(s, handle, "desk-evil" if column == "key_name" else "desk-1")
        with sessions() as s:
            s.execute(sa.delete(ChipHandleRow))
            s.commit()


def test_the_template_is_never_on_disk_in_clear(verifier: Verifier, specimens: Specimens,
                                                tmp_path: Path) -> None:
    db = tmp_path / "handles.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    sessions = session_factory(engine)
    prepared = _prepare(verifier, specimens)
    with sessions() as s:
        handle = chip_handles.put(s, prepared, "desk-1", 300)
    engine.dispose()  # everything written (WAL checkpointed on close)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for template in prepared.analysis.embeddings:
        raw = np.asarray(template, "<f4").tobytes()
        for chunk in (raw[:16], raw[-16:], base64.urlsafe_b64encode(raw)[:24]):
            assert chunk not in on_disk
    assert b"embeddings" not in on_disk and b"landmarks" not in on_disk
    assert handle.encode() not in on_disk  # nor the key that opens it


def _take_elsewhere(url: str, handle: str, queue) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        queue.put(len(chip_handles.take(s, handle, "desk-1").analysis.embeddings))
    engine.dispose()


def test_another_process_takes_it(verifier: Verifier, specimens: Specimens, database_url: str,
                                  sessions) -> None:
    prepared = _prepare(verifier, specimens)
    with sessions() as s:
        handle = chip_handles.put(s, prepared, "desk-1", 300)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_take_elsewhere, args=(database_url, handle, queue))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == len(prepared.analysis.embeddings)
    assert _count(sessions) == 0


# -- the API: prepared on one server, verified on another ---------------------------------------


@dataclass
class Servers:
    urls: tuple[str, str]
    keys: dict[str, str]
    db_url: str


@pytest.fixture(scope="module")
def servers(specimens: Specimens, tmp_path_factory) -> Iterator[Servers]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('handledb') / 'api.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        keys = {name: create_key(s, f"handle-{name}", "counter")[1] for name in ("a", "b")}
    engine.dispose()
    env = {
        "BIOMETRIC_DATABASE_URL": db_url,
        "BIOMETRIC_VERIFY_WORKERS": "1",
        "BIOMETRIC_THREAD_POOL_SIZE": "1",
        "BIOMETRIC_CSCA_DIR": str(specimens.csca_dir),
    }
    with ExitStack() as stack:
        urls = tuple(stack.enter_context(running_server(
            {**env, "BIOMETRIC_INDEX_DIR": str(tmp_path_factory.mktemp(f"index{i}"))}))
            for i in range(2))
        yield Servers(urls, keys, db_url)  # type: ignore[arg-type]


def _client(servers: Servers, which: int, key: str) -> httpx.Client:
    return httpx.Client(base_url=servers.urls[which], headers={"X-API-Key": servers.keys[key]},
                        timeout=120)


def test_api_prepare_then_verify_on_another_server(servers: Servers, specimens: Specimens,
                                                   fr_dir: Path) -> None:
    genuine = specimens.variants["genuine"]
    files = {"dg2": ("EF.DG2", genuine.dg2.read_bytes()),
             "sod": ("EF.SOD", genuine.sod.read_bytes())}
    live = (fr_dir / LIVE_PHOTO).read_bytes()
    with _client(servers, 0, "a") as a:
        r = a.post("/v1/chip", files=files, data={"counter_id": "desk-a"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["expires_in_s"] == 300 and body["chip_auth"]["status"] == "verified"
        assert body["chip"]["subject"] is not None and body["chip"]["reasons"] == []
        handle = body["chip_handle"]
    with _client(servers, 1, "b") as b:  # another key: refused, the handle kept
        r = b.post("/v1/verify", files={"live": ("live.jpg", live)}, data={"chip_handle": handle})
        assert r.status_code == 422 and r.json()["type"].endswith("/chip_handle_unknown")
    with _client(servers, 1, "a") as a:  # the same key on the other server
        r = a.post("/v1/verify", files={"live": ("live.jpg", live)},
                   data={"chip_handle": handle, "counter_id": "desk-a"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "match" and body["chip_auth"]["status"] == "verified"
        assert body["chip_image"]["image_offset"] == specimens.image_offset
        assert "chip_auth" not in body["timings_ms"]  # the chip's work was done before
        again = a.post("/v1/verify", json={"live": base64.b64encode(live).decode(),
                                           "chip_handle": handle})
        assert again.status_code == 422 and again.json()["type"].endswith("/chip_handle_unknown")
        both = a.post("/v1/verify", files={"live": ("l.jpg", live), "chip": ("c.jpg", live)},
                      data={"chip_handle": handle})
        assert both.status_code == 422 and both.json()["type"].endswith("/invalid_part")
    engine = make_engine(servers.db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action, decision FROM audit_events WHERE "
                                    "counter_id = 'desk-a' ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("chip_prepare", "prepared"), ("verify", "match")]


def test_api_prepare_json_portrait(servers: Servers, fr_dir: Path) -> None:
    chip = base64.b64encode((fr_dir / CHIP_PHOTO).read_bytes()).decode()
    live = base64.b64encode((fr_dir / IMPOSTOR_PHOTO).read_bytes()).decode()
    with _client(servers, 1, "b") as b:
        r = b.post("/v1/chip", json={"chip": chip})
        assert r.status_code == 200, r.text
        assert r.json()["chip_auth"]["status"] == "not_checked"
        r = b.post("/v1/verify", json={"live": live, "chip_handle": r.json()["chip_handle"]})
        assert r.status_code == 200, r.text
        assert r.json()["decision"] == "no_match"
        assert b.post("/v1/chip", json={}).status_code == 422
