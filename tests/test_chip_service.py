"""Chip files through the service: ``POST /v1/verify`` with ``dg2`` + ``sod`` parts and the
counter page (headless Chromium), on a real server under ``BIOMETRIC_CHIP_AUTH=block`` with a
SYNTHETIC CSCA as trust store. Every tampered variant must get its result code."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from chip_specimens import Specimens, build
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from api.launcher import running_server
from biometric import config
from biometric.decide import reason_message
from biometric.store import audit as audit_store
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key

LIVE_PHOTO = "identities/kit_harington/john1.jpeg"
ARTIFACTS = config.REPO_ROOT / "test-artifacts" / "ui"
WAIT_S = 60


@dataclass
class ChipServer:
    url: str
    db_url: str
    counter: str
    admin: str


@pytest.fixture(scope="module")
def specimens(fr_dir: Path, tmp_path_factory) -> Specimens:
    return build(fr_dir, tmp_path_factory.mktemp("chip"))


@pytest.fixture(scope="module")
def server(specimens: Specimens, tmp_path_factory) -> Iterator[ChipServer]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('chipdb') / 'chip.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        keys = {r: create_key(s, f"chip-{r}", r)[1] for r in ("counter", "admin")}
    engine.dispose()
    env = {
        "BIOMETRIC_DATABASE_URL": db_url,
        "BIOMETRIC_THREAD_POOL_SIZE": "2",
        "BIOMETRIC_INDEX_DIR": str(tmp_path_factory.mktemp("chipindex")),
        "BIOMETRIC_CHIP_AUTH": "block",
        "BIOMETRIC_CSCA_DIR": str(specimens.csca_dir),
    }
    with running_server(env) as url:
        yield ChipServer(url, db_url, keys["counter"], keys["admin"])


def _post(server: ChipServer, live: bytes, variant, counter_id: str) -> httpx.Response:
    files = {"live": ("live.jpg", live, "image/jpeg"),
             "dg2": ("EF.DG2", variant.dg2.read_bytes(), "application/octet-stream")}
    if variant.sod:
        files["sod"] = ("EF.SOD", variant.sod.read_bytes(), "application/octet-stream")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.counter},
                      timeout=120) as c:
        return c.post("/v1/verify", files=files, data={"counter_id": counter_id})


def test_api_every_variant(server: ChipServer, specimens: Specimens, fr_dir: Path) -> None:
    live = (fr_dir / LIVE_PHOTO).read_bytes()
    for v in specimens.variants.values():
        r = _post(server, live, v, f"api-{v.name}")
        if v.expected == "dg2_malformed":
            assert r.status_code == 422, r.text
            body = r.json()
            assert body["type"].endswith("/dg2_malformed") and "byte 0" in body["detail"]
            assert (body["tag"], body["offset"]) == ("75", 0)
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["chip_auth"]["status"] == v.expected, (v.name, body["chip_auth"])
        assert body["chip_auth"]["policy"] == "block"
        assert body["chip_image"]["data_type"] == "jpeg"
        assert body["chip_image"]["image_offset"] == specimens.image_offset
        if v.expected == "verified":
            assert body["decision"] == "match", body["reasons"]
            assert "chip_auth" in body["timings_ms"]
            assert "SYNTHETIC CSCA" in body["chip_auth"]["issuer"]
        else:  # a chip that failed is never a match; under block an unchecked one is refused
            assert body["decision"] == _expected_decision(v.expected)
            assert body["chip_trust"] == ("not_verified" if v.expected == "not_checked"
                                          else "failed")
            reason = body["reasons"][0]
            assert reason["image"] == "chip"
            if v.expected != "not_checked":
                assert reason["message"] == reason_message("chip_auth_failed")
    metrics = httpx.get(server.url + "/metrics").text
    assert 'biometric_chip_auth_total{country="VN",status="hash_mismatch"} 3.0' in metrics
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.admin}) as c:
        events = {e["counter_id"]: e for e in c.get("/v1/audit", params={"limit": 50}).json()[
            "items"]}
    for v in specimens.variants.values():
        event = events[f"api-{v.name}"]
        if v.expected == "dg2_malformed":
            assert event["decision"] == "refused" and event["chip_auth"] is None
            assert event["reasons"][0]["code"] == "dg2_malformed"
            continue
        assert event["chip_auth"]["status"] == v.expected
        if v.sod:
            assert "CSCA" in event["chip_auth"]["issuer"]
        assert event["decision"] == _expected_decision(v.expected)


def _expected_decision(status: str) -> str:
    """Under the block policy: a verified chip of the same person matches, one that failed
    passive authentication is chip_untrusted, one that could not be checked is refused."""
    return {"verified": "match", "not_checked": "refused"}.get(status, "chip_untrusted")


def test_api_json_image_only_and_mixed_sources(server: ChipServer, specimens: Specimens,
                                               fr_dir: Path) -> None:
    live = (fr_dir / LIVE_PHOTO).read_bytes()
    v = specimens.variants["genuine"]
    b64 = {name: base64.b64encode(data).decode() for name, data in
           (("live", live), ("dg2", v.dg2.read_bytes()), ("sod", v.sod.read_bytes()))}
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.counter},
                      timeout=120) as c:
        body = c.post("/v1/verify", json=b64).json()
        assert body["decision"] == "match" and body["chip_auth"]["status"] == "verified"
        # Under block a bare portrait image cannot be trusted: nothing signed came with it.
        image = c.post("/v1/verify", files={"live": ("l.jpg", live),
                                            "chip": ("c.jpg", specimens.portrait)}).json()
        assert image["decision"] == "refused" and image["chip_auth"]["status"] == "not_checked"
        assert image["reasons"][0]["code"] == "chip_auth_not_checked"
        both = c.post("/v1/verify", files={"live": ("l.jpg", live), "chip": ("c.jpg", live),
                                           "dg2": ("d", v.dg2.read_bytes())})
        assert both.status_code == 422 and both.json()["type"].endswith("/missing_image")
        sod_only = c.post("/v1/verify", files={"live": ("l.jpg", live), "chip": ("c.jpg", live),
                                               "sod": ("s", v.sod.read_bytes())})
        assert sod_only.status_code == 422 and sod_only.json()["type"].endswith("/invalid_part")


def test_audit_chip_auth_on_postgresql(pg_schema) -> None:
    with pg_schema("t_chip") as url:
        engine = make_engine(url)
        migrate(engine)
        record = {"status": "hash_mismatch", "issuer": "CN=SYNTHETIC CSCA,C=VN",
                  "country": "VN", "signer": "CN=SYNTHETIC DS,C=VN", "hash_algorithm": "sha256",
                  "policy": "warn"}
        with session_factory(engine)() as s:
            audit_store.record(s, request_id="r1", key_name=None, counter_id=None,
                               citizen_id=None, action="verify", decision="match",
                               chip_auth=record)
            events = audit_store.query(s, audit_store.AuditQuery())
            assert events[0].to_dict()["chip_auth"] == record
        engine.dispose()


# -- the counter page ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-chip') / 'profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_counter_page_shows_chip_result(server: ChipServer, specimens: Specimens,
                                        browser, fr_dir: Path) -> None:
    driver, wait = browser, WebDriverWait(browser, WAIT_S)
    driver.get(server.url + "/ui/counter")
    key = wait.until(ec.visibility_of_element_located((By.ID, "api-key")))
    key.send_keys(server.counter)
    key.submit()
    wait.until(ec.visibility_of_element_located((By.ID, "verify-form")))
    driver.find_element(By.ID, "live-file").send_keys(str(fr_dir / LIVE_PHOTO))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for v in specimens.variants.values():
        driver.execute_script("document.getElementById('result').classList.add('hidden');"
                              "document.getElementById('verify-status').textContent = '';"
                              "document.getElementById('sod-file').value = '';")
        driver.find_element(By.ID, "dg2-file").send_keys(str(v.dg2))
        if v.sod:
            driver.find_element(By.ID, "sod-file").send_keys(str(v.sod))
        else:  # an emptied input fires no change event: tell the page as a user's pick would
            driver.execute_script("document.getElementById('sod-file')"
                                  ".dispatchEvent(new Event('change'))")
        driver.find_element(By.ID, "verify").click()
        if v.expected == "dg2_malformed":
            wait.until(ec.text_to_be_present_in_element((By.ID, "verify-status"), "byte 0"))
            continue
        result = wait.until(ec.visibility_of_element_located((By.ID, "result")))
        pill = result.find_element(By.ID, "chip-auth")
        assert pill.get_attribute("data-status") == v.expected, v.name
        decision = result.find_element(By.ID, "decision").get_attribute("data-decision")
        assert decision == _expected_decision(v.expected), v.name
        # the chip photo was cut out of the DG2 by the page and drawn beside the result
        assert driver.execute_script(
            "const c = document.getElementById('chip-result');"
            "const p = c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data;"
            "return c.width > 0 && !(p[0] === 68 && p[1] === 68 && p[2] === 68);")
        if v.name in ("genuine", "image_byte_changed"):
            driver.save_screenshot(str(ARTIFACTS / f"counter-chip-{v.name}.png"))
    # The page sent each chip as soon as it was chosen (POST /v1/chip, issue 23).
    engine = make_engine(server.db_url)
    with engine.connect() as conn:
        prepared = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_events WHERE action = 'chip_prepare'").scalar()
    engine.dispose()
    decided = sum(v.expected != "dg2_malformed" for v in specimens.variants.values())
    assert prepared >= decided
