"""The HTTP service end to end: a real uvicorn server in a subprocess on a free loopback port,
over SQLite and PostgreSQL, with real photos."""

from __future__ import annotations

import base64
import io
import re
import select
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from api.launcher import running_server
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key, revoke_key

PROBLEM = "application/problem+json"


@dataclass
class Server:
    url: str
    db_url: str
    counter: str
    admin: str
    reviewer: str
    revoked: str
    audit_dir: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory, pg_schema) -> Iterator[Server]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            db_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'api.db'}"
        else:
            db_url = stack.enter_context(pg_schema("test_api"))
        engine = make_engine(db_url)
        migrate(engine)
        with session_factory(engine)() as s:
            tokens = {
                role: create_key(s, f"test-{role}", role)[1]
                for role in ("counter", "admin", "reviewer")
            }
            tokens["revoked"] = create_key(s, "test-revoked", "counter")[1]
            revoke_key(s, "test-revoked")
        engine.dispose()
        audit_dir = tmp_path_factory.mktemp("audit")
        env = {
            "BIOMETRIC_DATABASE_URL": db_url,
            # this store's own signing key and checkpoint file
            "BIOMETRIC_AUDIT_KEY_FILE": str(audit_dir / "signing.key"),
            "BIOMETRIC_AUDIT_CHECKPOINTS": str(audit_dir / "checkpoints.jsonl"),
            "BIOMETRIC_THREAD_POOL_SIZE": "2",
            "BIOMETRIC_INDEX_DIR": str(tmp_path_factory.mktemp("index")),
            # short connection deadlines, so that test_stalled_connections_are_closed is quick
            "BIOMETRIC_HEADER_TIMEOUT_S": "2",
            "BIOMETRIC_READ_TIMEOUT_S": "2",
        }
        from biometric.store.audit import generate_key

        generate_key(audit_dir / "signing.key")
        url = stack.enter_context(running_server(env))
        yield Server(
            url, db_url, tokens["counter"], tokens["admin"], tokens["reviewer"], tokens["revoked"],
            audit_dir,
        )


# -- photos -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ids(fr_dir: Path) -> Path:
    return fr_dir / "identities"


@pytest.fixture(scope="module")
def no_face_jpeg(ids: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(ids / "biden/biden.jpg").convert("RGB").crop((0, 0, 150, 150)).save(buf, "JPEG")
    return buf.getvalue()


def _png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _verify(client: httpx.Client, live: bytes, chip: bytes, **fields: str) -> httpx.Response:
    return client.post(
        "/v1/verify",
        files={"live": ("live.jpg", live, "image/jpeg"), "chip": ("chip.jpg", chip, "image/jpeg")},
        data=fields,
    )


def _assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://biometric.example/problems/")
    assert body["title"] and body["detail"] and body["request_id"]
    assert "Traceback" not in r.text
    if code:
        assert body["type"].endswith("/" + code), body
    return body


# -- tests --------------------------------------------------------------------------------------


def test_ops_endpoints(server: Server) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and "mobilefacenet" in ready["models"]
        _assert_problem(c.get("/nope"), 404, "not_found")
        _assert_problem(c.delete("/healthz"), 405, "method_not_allowed")
        assert c.get("/openapi.json").json()["paths"]["/v1/verify"]["post"]["requestBody"]


def test_auth(server: Server, ids: Path) -> None:
    photo = (ids / "obama/obama.jpg").read_bytes()
    with server.client() as c:
        _assert_problem(_verify(c, photo, photo), 401, "unauthorized")
    for key in ("bmk_000000000000_nope", "garbage", server.revoked):
        with server.client(key) as c:
            _assert_problem(_verify(c, photo, photo), 401, "unauthorized")
    with server.client(server.reviewer) as c:
        _assert_problem(_verify(c, photo, photo), 403, "forbidden")
    with server.client(server.counter) as c:
        _assert_problem(c.get("/v1/audit"), 403, "forbidden")


def test_genuine_pair_matches(server: Server, ids: Path) -> None:
    live = (ids / "kit_harington/john1.jpeg").read_bytes()
    chip = (ids / "kit_harington/john2.jpeg").read_bytes()
    with server.client(server.counter) as c:
        r = _verify(c, live, chip, citizen_id="012345678901", counter_id="desk-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "match" and body["score"] >= body["threshold"]
    assert body["reasons"] == [] and body["fmr"] > 0
    assert body["faces"]["live"]["subject"] is not None and body["faces"]["chip"]["faces"]
    assert {"queue", "decode", "detect", "embed", "total"} <= body["timings_ms"].keys()
    assert body["request_id"] == r.headers["x-request-id"]
    assert "mobilefacenet" in body["models"]


def test_impostor_pair_json(server: Server, ids: Path) -> None:
    payload = {
        "live": base64.b64encode((ids / "obama/obama.jpg").read_bytes()).decode(),
        "chip": base64.b64encode((ids / "biden/biden.jpg").read_bytes()).decode(),
        "citizen_id": "987654321098",
        "counter_id": "desk-2",
    }
    with server.client(server.admin) as c:
        r = c.post("/v1/verify", json=payload)
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "no_match"


def test_no_face_asks_for_retake(server: Server, ids: Path, no_face_jpeg: bytes) -> None:
    with server.client(server.counter) as c:
        r = _verify(c, no_face_jpeg, (ids / "biden/biden.jpg").read_bytes(), counter_id="desk-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "retake" and body["score"] is None
    assert {k: body["reasons"][0][k] for k in ("code", "image")} == {
        "code": "no_face",
        "image": "live",
    }


def test_audit_trail(server: Server) -> None:
    with server.client(server.admin) as c:
        page = c.get("/v1/audit", params={"citizen_id": "012345678901"}).json()
        assert [e["decision"] for e in page["items"]] == ["match"]
        event = page["items"][0]
        assert event["key_name"] == "test-counter" and event["counter_id"] == "desk-1"
        assert event["score"] is not None and event["model_versions"]
        assert event["model_versions"]["operating_point"].startswith("shipped:")
        assert set(event["quality"]) == {"live", "chip"} and event["quality"]["live"] > 50
        assert (
            c.get("/v1/audit", params={"decision": "no_match"}).json()["items"][0]["citizen_id"]
            == "987654321098"
        )
        first = c.get("/v1/audit", params={"limit": 1}).json()
        second = c.get("/v1/audit", params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert second["items"][0]["id"] < first["items"][0]["id"]
        assert c.get("/v1/audit", params={"since": "2100-01-01T00:00:00Z"}).json()["items"] == []
        _assert_problem(c.get("/v1/audit", params={"citizen_id": "12"}), 422, "validation_error")


@pytest.fixture(scope="module")
def malformed(ids: Path) -> dict[str, tuple[dict, int, str]]:
    jpeg = (ids / "obama/obama.jpg").read_bytes()

    def parts(live: bytes, name: str = "live.jpg", **fields: str) -> dict:
        return {"files": {"live": (name, live), "chip": ("chip.jpg", jpeg)}, "data": fields}

    return {
        "bad_base64": (
            {"json": {"live": "%%%not base64%%%", "chip": "aGk="}},
            422,
            "invalid_base64",
        ),
        "truncated_jpeg": (parts(jpeg[: len(jpeg) // 2]), 422, "image_decode_error"),
        "png_bomb": (parts(_png_bomb(), "bomb.png"), 413, "image_too_large"),
        "text_file": (
            parts(b"hello, this is not an image\n" * 20, "a.txt"),
            415,
            "unsupported_image_type",
        ),
        "empty_part": (parts(b""), 422, "image_decode_error"),
        "missing_part": ({"files": {"live": ("l.jpg", jpeg)}}, 422, "missing_image"),
        "bad_citizen_id": (parts(jpeg, citizen_id="12345"), 422, "invalid_citizen_id"),
        "bad_json": (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "validation_error",
        ),
        "wrong_media_type": (
            {"content": b"x", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad_base64",
        "truncated_jpeg",
        "png_bomb",
        "text_file",
        "empty_part",
        "missing_part",
        "bad_citizen_id",
        "bad_json",
        "wrong_media_type",
    ],
)
def test_malformed_input(server: Server, malformed: dict, case: str) -> None:
    kwargs, status, code = malformed[case]
    with server.client(server.counter) as c:
        _assert_problem(c.post("/v1/verify", **kwargs), status, code)
        assert c.get("/healthz").status_code == 200


_PHOTO_PART = b'--x\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'


def _raw_post(
    server: Server, total: int, chunked: bool, path: str = "/v1/verify"
) -> tuple[int, bytes]:
    """Stream a body of ``total`` bytes until the server answers; return (status, body)."""
    host, port = server.url.removeprefix("http://").split(":")
    form = path != "/v1/verify"  # the gallery routes: one endless multipart file part
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"X-API-Key: {server.reviewer if form else server.counter}",
        "Content-Type: multipart/form-data; boundary=x"
        if form
        else "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}",
        "",
        "",
    ]
    block = b"a" * 65536
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall("\r\n".join(head).encode())
        if form:
            prefix = _PHOTO_PART
            sock.sendall(b"%x\r\n%s\r\n" % (len(prefix), prefix) if chunked else prefix)
        sent = 0
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
            if chunked and sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                head_end = data.find(b"\r\n\r\n")
                if head_end >= 0:
                    headers = data[:head_end].decode("latin-1").lower().split("\r\n")
                    length = next(
                        int(h.split(":", 1)[1]) for h in headers if h.startswith("content-length:")
                    )
                    if len(data) >= head_end + 4 + length:
                        break
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("path", ["/v1/verify", "/v1/claimants", "/v1/search"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
def test_body_too_large(server: Server, chunked: bool, path: str) -> None:
    status, body = _raw_post(server, 60 * 1024 * 1024, chunked, path)
    assert status == 413 and b"body_too_large" in body
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
    with server.client(server.admin) as c:
        newest = c.get("/v1/audit", params={"limit": 1}).json()["items"][0]
    assert newest["decision"] == "refused" and newest["reasons"][0]["status"] == 413


def test_still_verifies_and_counts(server: Server, ids: Path) -> None:
    live = (ids / "kit_harington/john1.jpeg").read_bytes()
    with server.client(server.counter) as c:
        assert (
            _verify(c, live, (ids / "kit_harington/john2.jpeg").read_bytes()).json()["decision"]
            == "match"
        )
        text = c.get("/metrics").text
    assert 'biometric_decisions_total{decision="match",operating_point="shipped:' in text
    assert 'biometric_gallery_fmr_estimate{bound="claim"' in text
    assert "biometric_pipeline_stage_duration_seconds_bucket" in text
    assert 'biometric_errors_total{type="unauthorized"}' in text
    assert 'endpoint="/v1/verify"' in text


def test_keys_cli(tmp_path: Path) -> None:
    from api.cli import app

    db = ["--database-url", f"sqlite:///{tmp_path / 'k.db'}"]
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "desk-9", "--role", "counter", *db])
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("bmk_")
    assert runner.invoke(app, ["keys", "create", "desk-9", *db]).exit_code == 2
    assert runner.invoke(app, ["keys", "create", "x", "--role", "king", *db]).exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", "desk-9", *db]).exit_code == 0
    listed = runner.invoke(app, ["keys", "list", *db])
    assert "desk-9\tcounter" in listed.stdout and "revoked" in listed.stdout


# -- gallery ----------------------------------------------------------------------------------


def _enrol(c: httpx.Client, citizen_id: str, photo: Path) -> httpx.Response:
    return c.post(
        "/v1/claimants",
        data={"citizen_id": citizen_id},
        files={"photo": (photo.name, photo.read_bytes())},
    )


def test_gallery_enrol_flags_duplicate_and_review_dismisses_it(server: Server, ids: Path) -> None:
    with server.client(server.reviewer) as c:
        first = _enrol(c, "111100000001", ids / "kit_harington/john1.jpeg")
        assert first.status_code == 201, first.text
        assert _enrol(c, "111100000002", ids / "biden/biden.jpg").json()["candidates"] == []
        dup = _enrol(c, "111100000003", ids / "kit_harington/john2.jpeg").json()
        assert [x["citizen_id"] for x in dup["candidates"]] == ["111100000001"]
        assert dup["case_ids"] and dup["status"] == "active"

        queue = c.get("/v1/cases").json()
        case = next(x for x in queue["items"] if x["id"] == dup["case_ids"][0])
        assert {case["citizen_id"], case["candidate_citizen_id"]} == {
            "111100000001",
            "111100000003",
        }
        decided = c.post(
            f"/v1/cases/{case['id']}/decision", json={"decision": "dismissed", "note": "brothers"}
        )
        assert decided.status_code == 200 and decided.json()["reviewer"] == "test-reviewer"
        assert all(x["id"] != case["id"] for x in c.get("/v1/cases").json()["items"])

        found = c.post(
            "/v1/search",
            files={"photo": ("q.jpg", (ids / "kit_harington/johnsnow_test1.jpg").read_bytes())},
        )
        assert found.json()["candidates"][0]["citizen_id"] in {"111100000001", "111100000003"}
    with server.client(server.admin) as c:  # subject access finds the search by its candidate
        rows = c.get("/v1/audit", params={"citizen_id": "111100000001", "limit": 500}).json()
        assert "search" in {e["action"] for e in rows["items"]}

        # The live FMR estimate counted these enrolments' searches (john2 found john1).
        est = c.get("/v1/gallery/fmr-estimate").json()
        assert est["operating_point"].startswith("shipped:") and est["comparisons"] >= 3
        assert est["false_matches"] >= 1 and est["exceeds"] is False  # too few pairs to tell
    with server.client(server.counter) as c:
        assert c.get("/v1/gallery/fmr-estimate").status_code == 403


def test_gallery_roles_and_erasure(server: Server, ids: Path, no_face_jpeg: bytes) -> None:
    with server.client(server.counter) as c:
        _assert_problem(_enrol(c, "222200000001", ids / "obama/obama.jpg"), 403, "forbidden")
    with server.client(server.reviewer) as c:
        assert _enrol(c, "222200000001", ids / "obama/obama.jpg").status_code == 201
        _assert_problem(c.delete("/v1/claimants/222200000001"), 403, "forbidden")
        bad = c.post(
            "/v1/claimants",
            data={"citizen_id": "222200000002"},
            files={"photo": ("x.jpg", no_face_jpeg)},
        )
        _assert_problem(bad, 422, "poor_capture")
        _assert_problem(_enrol(c, "12ab", ids / "obama/obama.jpg"), 422, "validation_error")
    with server.client(server.admin) as c:
        gone = c.delete("/v1/claimants/222200000001")
        assert gone.status_code == 200 and gone.json()["templates_removed"] == 1
        _assert_problem(c.delete("/v1/claimants/222200000001"), 404, "claimant_not_found")
        actions = {e["action"] for e in c.get("/v1/audit", params={"limit": 500}).json()["items"]}
        assert {"enrol", "erase"} <= actions


# -- guided capture and languages -------------------------------------------------------------


def _jpeg(path: Path, width: int) -> bytes:
    img = Image.open(path).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_capture_check_guides_without_audit(server: Server, ids: Path, no_face_jpeg: bytes) -> None:
    with server.client(server.counter) as c, server.client(server.admin) as admin:
        before = admin.get("/v1/audit", params={"limit": 500}).json()["items"]
        frame = _jpeg(ids / "obama/obama2.jpg", 480)
        r = c.post(
            "/v1/capture-check",
            content=frame,
            headers={"Content-Type": "image/jpeg", "Accept-Language": "en-GB,en;q=0.9"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["faces"] and body["subject"] is not None and body["quality"]
        assert body["instruction"] in {"good", "centre", "hold_still", "face_camera"}
        assert body["ready"] == (body["instruction"] == "good")
        assert "embedding" not in r.text
        # The same frame as the preview of a photo 4x smaller: the face would be too small.
        tiny = c.post(
            "/v1/capture-check",
            content=_jpeg(ids / "obama/obama2.jpg", 120),
            headers={"Content-Type": "image/jpeg", "Accept-Language": "en"},
        ).json()
        assert (tiny["instruction"], tiny["message"]) == ("move_closer", "Move closer")
        empty = c.post(
            "/v1/capture-check", content=no_face_jpeg, headers={"Content-Type": "image/jpeg"}
        ).json()
        assert (empty["instruction"], empty["message"]) == ("no_face", "Nhìn vào camera")
        broken = c.post("/v1/capture-check", content=b"not an image")
        assert broken.status_code in (415, 422) and broken.headers["content-type"] == PROBLEM
        seen = {e["id"] for e in before}
        new = [e for e in admin.get("/v1/audit", params={"limit": 500}).json()["items"]]
        new = [e for e in new if e["id"] not in seen and e["action"] != "read_audit"]
        # Frames are not audited; only the refused one is (every refusal is).
        assert [e["decision"] for e in new] == ["refused"], new


def test_messages_follow_accept_language(server: Server, ids: Path, no_face_jpeg: bytes) -> None:
    chip = (ids / "biden/biden.jpg").read_bytes()
    with server.client(server.counter) as c:
        vi = _verify(c, no_face_jpeg, chip).json()
        c.headers["Accept-Language"] = "en-US,en;q=0.8"
        en = _verify(c, no_face_jpeg, chip).json()
    assert vi["decision"] == en["decision"] == "retake"
    assert [r["code"] for r in vi["reasons"]] == [r["code"] for r in en["reasons"]] == ["no_face"]
    assert vi["reasons"][0]["message"].startswith("Không tìm thấy khuôn mặt")
    assert en["reasons"][0]["message"].startswith("No face found")
    with server.client() as anonymous:
        r = anonymous.post("/v1/capture-check", content=b"x")
        assert r.status_code == 401 and r.headers["content-language"] == "vi"
        assert r.json()["title"] == "Chưa đăng nhập"
        r = anonymous.post("/v1/capture-check", content=b"x", headers={"Accept-Language": "en"})
        assert r.json()["title"] == "Not signed in" and r.json()["type"].endswith("/unauthorized")


# -- limits of every parameter (issue 12) -------------------------------------------------------

FULL_WIDTH_ID = "１２３４５６７８９０１２"  # passes \d; must not make a second claimant


def test_overflowing_and_non_ascii_parameters_are_422(server: Server, ids: Path) -> None:
    bad_queries = [
        ("/v1/audit", {"cursor": 2**31}),
        ("/v1/audit", {"cursor": 2**63}),
        ("/v1/audit", {"since": "9999-12-31T23:59:59-05:00"}),
        ("/v1/audit", {"until": "0001-01-01T00:00:00+05:00"}),
        ("/v1/audit", {"citizen_id": FULL_WIDTH_ID}),
        ("/v1/cases", {"offset": 2**31}),
        ("/v1/cases", {"offset": 2**63}),
        ("/v1/cases", {"citizen_id": "١٢٣٤٥٦٧٨٩٠١٢"}),
    ]
    with server.client(server.admin) as c:
        for path, params in bad_queries:
            _assert_problem(c.get(path, params=params), 422, "validation_error")
        for case_id in (2**31, 2**63):
            decided = c.post(f"/v1/cases/{case_id}/decision", json={"decision": "dismissed"})
            _assert_problem(decided, 422, "validation_error")
        _assert_problem(c.delete(f"/v1/claimants/{FULL_WIDTH_ID}"), 422, "validation_error")
        _assert_problem(_enrol(c, FULL_WIDTH_ID, ids / "obama/obama.jpg"), 422, "validation_error")
        photo = (ids / "obama/obama.jpg").read_bytes()
        _assert_problem(_verify(c, photo, photo, citizen_id=FULL_WIDTH_ID), 422)
        # The connection survived every refusal.
        assert c.get("/healthz").status_code == 200


def test_concurrent_enrolment_conflict_is_409() -> None:
    from api.errors import problem_from_error
    from biometric.gallery.service import EnrolmentConflict

    assert problem_from_error(EnrolmentConflict("x"), None).status == 409


# -- audit of every access and refusal, final case decisions, the hash chain (issue 12) ---------


def _audit_since(c: httpx.Client, after_id: int) -> list[dict]:
    items = c.get("/v1/audit", params={"limit": 500}).json()["items"]
    return [e for e in items if e["id"] > after_id]


def test_refusals_and_reads_are_audited(server: Server, ids: Path, no_face_jpeg: bytes) -> None:
    photo = (ids / "obama/obama.jpg").read_bytes()
    with server.client(server.admin) as admin:
        newest = admin.get("/v1/audit", params={"limit": 1}).json()["items"]
        start = newest[0]["id"] if newest else 0
        with server.client() as anonymous:
            _assert_problem(anonymous.get("/v1/cases"), 401)
        with server.client(server.reviewer) as reviewer:
            _assert_problem(reviewer.get("/v1/audit"), 403)
            poor = reviewer.post(
                "/v1/claimants",
                data={"citizen_id": "555500000001"},
                files={"photo": ("x.jpg", no_face_jpeg)},
            )
            _assert_problem(poor, 422, "poor_capture")
            assert reviewer.get("/v1/cases", params={"citizen_id": "555500000002"}).is_success
        with server.client(server.counter) as counter:
            _assert_problem(_verify(counter, photo, photo, citizen_id="12345"), 422)
        _assert_problem(admin.delete("/v1/claimants/555500000003"), 404, "claimant_not_found")
        missing = admin.post("/v1/cases/2000000000/decision", json={"decision": "dismissed"})
        _assert_problem(missing, 404, "case_not_found")
        events = _audit_since(admin, start)
    seen = {(e["action"], e["decision"], e["key_name"], e["citizen_id"]) for e in events}
    status = {e["action"]: e["reasons"][0].get("status") for e in events if e["reasons"]}
    assert ("list_cases", "refused", None, None) in seen  # 401: no key to name
    assert ("read_audit", "refused", "test-reviewer", None) in seen  # 403
    assert ("enrol", "refused", "test-reviewer", "555500000001") in seen  # poor capture
    assert ("list_cases", "read", "test-reviewer", "555500000002") in seen  # a read
    assert ("verify", "refused", "test-counter", None) in seen  # bad citizen id
    assert ("erase", "refused", "test-admin", "555500000003") in seen  # 404
    assert ("decide_case", "refused", "test-admin", None) in seen  # 404
    assert ("read_audit", "read", "test-admin", None) in seen  # the read before
    assert status["erase"] == 404 and status["decide_case"] == 404
    text = str(events)
    assert all(key not in text for key in (server.admin, server.reviewer, server.counter))


def test_case_decision_is_final_unless_an_admin_reopens(server: Server, ids: Path) -> None:
    with server.client(server.reviewer) as reviewer, server.client(server.admin) as admin:
        assert _enrol(reviewer, "666600000001", ids / "biden/biden.jpg").status_code == 201
        dup = _enrol(reviewer, "666600000002", ids / "biden/biden.jpg").json()
        case_id = dup["case_ids"][0]
        decide = f"/v1/cases/{case_id}/decision"
        assert reviewer.post(decide, json={"decision": "dismissed"}).status_code == 200
        again = admin.post(decide, json={"decision": "confirmed", "note": "overwrite"})
        _assert_problem(again, 409, "case_already_decided")
        _assert_problem(reviewer.post(f"/v1/cases/{case_id}/reopen", json={}), 403)
        reopened = admin.post(f"/v1/cases/{case_id}/reopen", json={"reason": "new evidence"})
        assert reopened.status_code == 200 and reopened.json()["status"] == "open"
        final = admin.post(decide, json={"decision": "confirmed"}).json()
        assert final["status"] == "confirmed" and final["reviewer"] == "test-admin"
        events = admin.get("/v1/audit", params={"limit": 20}).json()["items"]
    history = [
        (e["action"], e["decision"], e["key_name"])
        for e in events
        if e["citizen_id"] == "666600000002"
        or any(r.get("case_id") == case_id for r in e["reasons"] if isinstance(r, dict))
    ]
    assert history[:5] == [
        ("case_decision", "confirmed", "test-admin"),
        ("case_reopen", "reopened", "test-admin"),
        ("reopen_case", "refused", "test-reviewer"),
        ("decide_case", "refused", "test-admin"),
        ("case_decision", "dismissed", "test-reviewer"),
    ]


def test_audit_chain_verifies_and_shows_tampering(server: Server) -> None:
    from sqlalchemy import text

    from biometric.cli import app as cli

    runner = CliRunner()
    verify = ["audit", "verify", "--db", server.db_url,
              "--checkpoints", str(server.audit_dir / "checkpoints.jsonl"),
              "--public-key", str(server.audit_dir / "signing.key.pub")]
    intact = runner.invoke(cli, verify)
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    engine = make_engine(server.db_url)
    with engine.begin() as conn:
        row_id, decision = conn.execute(
            text("SELECT id, decision FROM audit_events ORDER BY id LIMIT 1")
        ).one()
        conn.execute(
            text("UPDATE audit_events SET decision = :d WHERE id = :i"),
            {"d": decision + "!", "i": row_id},
        )
    try:
        broken = runner.invoke(cli, verify)
        assert broken.exit_code == 1 and f"at row {row_id}" in broken.output, broken.output
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE audit_events SET decision = :d WHERE id = :i"),
                {"d": decision, "i": row_id},
            )
        engine.dispose()
    assert runner.invoke(cli, verify).exit_code == 0
    # The attack: the head deleted and decisions flipped. Detected from the first row.
    with engine.begin() as conn:
        head = conn.execute(text("SELECT length, last_hash FROM audit_chain")).one()
        conn.execute(text("DELETE FROM audit_chain"))
    try:
        broken = runner.invoke(cli, verify)
        assert broken.exit_code == 1 and "head row is missing" in broken.output, broken.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_chain (id, length, last_hash) VALUES (1, :n, :h)"),
                         {"n": head[0], "h": head[1]})
        engine.dispose()


# -- headers, docs and the OpenAPI document (issue 12) ------------------------------------------


def test_personal_data_is_not_cached_nor_sniffed(server: Server) -> None:
    with server.client(server.admin) as c:
        for r in (c.get("/v1/audit"), c.get("/v1/cases"), c.delete("/v1/claimants/777700000001")):
            assert r.headers["cache-control"] == "no-store", r.url
            assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get("/healthz").headers["x-content-type-options"] == "nosniff"


def test_docs_load_nothing_from_elsewhere(server: Server) -> None:
    with server.client() as c:
        for page in ("/docs", "/redoc"):
            html = c.get(page)
            assert html.status_code == 200
            links = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert links and all(link.startswith("/docs/") for link in links), links
            assert "https://" not in html.text
            for link in links:
                asset = c.get(link)
                assert asset.status_code == 200, link
                # Nor do the scripts: Redoc's own footer logo came from its CDN.
                assert b"cdn.redoc.ly" not in asset.content, link


def test_openapi_documents_what_the_service_answers(server: Server) -> None:
    with server.client(server.counter) as c:
        doc = c.get("/openapi.json").json()
        for path, item in doc["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, op in item.items():
                for status in ("401", "403", "422"):
                    assert list(op["responses"][status]["content"]) == [PROBLEM], (path, method)
        ops = doc["paths"]
        assert "404" in ops["/v1/claimants/{citizen_id}"]["delete"]["responses"]
        assert "409" in ops["/v1/claimants"]["post"]["responses"]
        assert {"404", "409"} <= ops["/v1/cases/{case_id}/decision"]["post"]["responses"].keys()
        body = ops["/v1/verify"]["post"]["requestBody"]["content"]["application/json"]
        r = c.post("/v1/verify", json=body["example"])
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "retake"


def test_stalled_connections_are_closed(server: Server) -> None:
    """Idle, half-sent heads and stalled bodies are closed after the deadlines (2 s here)."""
    host, port = server.url.removeprefix("http://").split(":")
    stalls = {
        "idle": b"",
        "partial_head": b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "stalled_body": (
            f"POST /v1/search HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.reviewer}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
        ).encode()
        + _PHOTO_PART,
    }
    socks = {}
    for name, data in stalls.items():
        socks[name] = socket.create_connection((host, int(port)), timeout=15)
        socks[name].sendall(data)
    closed_after = {}
    start = time.monotonic()
    for name, sock in socks.items():
        with sock:
            try:
                while sock.recv(65536):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
            closed_after[name] = round(time.monotonic() - start, 1)
    print(f"\nclosed after (s): {closed_after}")
    assert all(t < 10 for t in closed_after.values()), closed_after
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
