"""The staff pages end to end in headless Chromium (Selenium): a real uvicorn server on SQLite
with face thumbnails on, a fake camera fed with a real photo, real verification and review.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``); Selenium Manager is never asked to download a browser. Screenshots of
every page state go to ``test-artifacts/ui/``: the counter flow in Vietnamese and in English
(guided capture, countdown, automatic capture, chip upload, decision)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import text

from api.launcher import running_server
from biometric import config, i18n
from biometric.guidance import Instruction
from biometric.i18n import translate
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key
from tests.chip_specimens import Specimens, build

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = config.REPO_ROOT / "test-artifacts" / "ui"
WAIT_S = 30


@dataclass
class UiServer:
    url: str
    db_url: str
    counter: str
    reviewer: str
    admin: str

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=60)


@pytest.fixture(scope="module")
def specimens(fr_dir: Path, tmp_path_factory) -> Specimens:
    """SYNTHETIC chip files around a real photo (tests/chip_specimens.py), their CSCA installed
    as the server's trust store."""
    return build(fr_dir, tmp_path_factory.mktemp("uichip"))


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, specimens: Specimens) -> Iterator[UiServer]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('uidb') / 'ui.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        tokens = {r: create_key(s, f"ui-{r}", r)[1] for r in ("counter", "reviewer", "admin")}
    engine.dispose()
    env = {
        "BIOMETRIC_DATABASE_URL": db_url,
        "BIOMETRIC_THREAD_POOL_SIZE": "2",
        "BIOMETRIC_INDEX_DIR": str(tmp_path_factory.mktemp("uiindex")),
        "BIOMETRIC_STORE_FACE_THUMBNAILS": "true",
        "BIOMETRIC_CSCA_DIR": str(specimens.csca_dir),  # the default chip policy: warn
    }
    with running_server(env) as url:
        yield UiServer(url, db_url, tokens["counter"], tokens["reviewer"], tokens["admin"])


@pytest.fixture(scope="module")
def ids(fr_dir: Path) -> Path:
    return fr_dir / "identities"


def _frame(bgr: np.ndarray, box: list[float], face_share: float) -> np.ndarray:
    """A 640x480 cut of the photo around the face ``box``, the face ``face_share`` of the
    frame's height (0.5: at a counter; 0.12: too far from the camera)."""
    w, h = 640, 480
    x1, y1, x2, y2 = box[:4]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_h = max(y2 - y1, (x2 - x1) * 3 / 4) / (2 * face_share)
    src = np.float32(
        [
            [cx - half_h * 4 / 3, cy - half_h],
            [cx + half_h * 4 / 3, cy - half_h],
            [cx - half_h * 4 / 3, cy + half_h],
        ]
    )
    dst = np.float32([[0, 0], [w, 0], [0, h]])
    return cv2.warpAffine(
        bgr, cv2.getAffineTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE
    )


def _write_y4m(segments: list[tuple[np.ndarray, int]], out: Path, fps: int = 10) -> Path:
    """A 4:2:0 Y4M clip for Chromium's fake camera (it loops): each frame repeated n times."""
    h, w = segments[0][0].shape[:2]
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame, count in segments:
            i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
            for _ in range(count):
                fh.write(b"FRAME\n" + i420)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory, ids: Path, pipeline) -> Iterator[WebDriver]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "install the Debian packages chromium and chromium-driver"
    )
    tmp = tmp_path_factory.mktemp("chromium")
    photo = ids / "kit_harington/john1.jpeg"
    bgr = cv2.imread(str(photo))
    faces = pipeline.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert faces, photo
    box = list(faces[0].box)
    # 2 s of a person too far away, then 8 s at the right distance (the clip loops): guidance
    # first, then the countdown and the automatic capture.
    camera = _write_y4m(
        [(_frame(bgr, box, 0.12), 20), (_frame(bgr, box, 0.5), 80)], tmp / "camera.y4m"
    )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1100,1300",
        f"--user-data-dir={tmp / 'profile'}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: WebDriver, name: str) -> None:
    """A full-page screenshot (the window grown to the page's height)."""
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, min(int(height) + 120, 4000)))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait(driver: WebDriver, condition, timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout).until(condition)


def _sign_in(driver: WebDriver, url: str, key: str) -> None:
    driver.get(url)
    field = _wait(driver, ec.visibility_of_element_located((By.ID, "api-key")))
    field.send_keys(key)
    field.submit()
    _wait(driver, ec.invisibility_of_element_located((By.ID, "sign-in")))
    assert key not in driver.current_url
    stored = driver.execute_script("return Object.values(sessionStorage)")
    assert key in stored


def _verify_once(driver: WebDriver, chip: Path, citizen_id: str | None = None) -> str:
    driver.execute_script("document.getElementById('result').classList.add('hidden')")
    driver.find_element(By.ID, "chip-file").send_keys(str(chip))
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "chip-status"), chip.name))
    if citizen_id:  # keyboard: Enter in the form verifies
        field = driver.find_element(By.ID, "citizen-id")
        field.clear()
        field.send_keys(citizen_id, Keys.ENTER)
    else:
        driver.find_element(By.ID, "verify").click()
    result = _wait(driver, ec.visibility_of_element_located((By.ID, "result")), 60)
    return result.find_element(By.ID, "decision").get_attribute("data-decision")


def _use_language(driver: WebDriver, url: str, locale: str) -> None:
    """Open ``url`` with ``locale`` chosen, as the switch remembers it in the browser (set before
    the page starts: choosing on a page whose script has not yet bound the switch is lost)."""
    driver.get(url)
    driver.execute_script("localStorage.setItem('biometric.locale', arguments[0])", locale)
    driver.get(url)
    _wait(driver, lambda d: d.execute_script("return document.documentElement.lang") == locale
          and d.find_element(By.ID, "lang").get_attribute("value") == locale)


def _guided_capture(driver: WebDriver, locale: str, shot_prefix: str) -> None:
    """Start the camera; see an instruction, then the countdown, then the automatic capture."""
    guide = driver.find_element(By.ID, "guide")
    instructions = {translate(f"guide.{i.value}", locale) for i in Instruction} - {
        translate("guide.good", locale)
    }
    countdown = {translate("guide.countdown", locale, n=n) for n in (1, 2, 3)}
    driver.find_element(By.ID, "camera-start").click()
    _wait(driver, lambda d: guide.text in instructions)
    _shot(driver, shot_prefix + "-guide")
    _wait(driver, lambda d: guide.text in countdown, 60)
    _shot(driver, shot_prefix + "-countdown")
    captured = translate("ui.counter.captured", locale, width=640, height=480)
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "live-status"), captured), 60)


def test_counter_page_guided_capture_in_vietnamese_and_english(
    ui_server: UiServer, browser: WebDriver, ids: Path
) -> None:
    driver = browser
    driver.set_window_size(1100, 900)
    page = ui_server.url + "/ui/counter"
    _use_language(driver, page, "vi")
    _wait(driver, ec.visibility_of_element_located((By.ID, "api-key")))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Xác thực tại quầy"
    _shot(driver, "counter-vi-1-sign-in")
    _sign_in(driver, page, ui_server.counter)

    _guided_capture(driver, "vi", "counter-vi-2")
    assert _verify_once(driver, ids / "kit_harington/john2.jpeg") == "match"
    decision = driver.find_element(By.ID, "decision")
    assert decision.text.startswith("KHỚP") and "Người này là chủ thẻ." in decision.text
    _shot(driver, "counter-vi-3-match")

    # The switch on the page changes the language at once, the result included.
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "decision"), "MATCH"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Counter verification"

    _guided_capture(driver, "en", "counter-en-1")
    assert _verify_once(driver, ids / "kit_harington/john2.jpeg") == "match"
    decision = driver.find_element(By.ID, "decision")
    assert "MATCH" in decision.text and "NO MATCH" not in decision.text
    assert float(driver.find_element(By.ID, "score").text) >= float(
        driver.find_element(By.ID, "threshold").text.split()[0]
    )
    assert driver.find_element(By.ID, "live-quality").text  # quality shown
    _shot(driver, "counter-en-2-match")

    assert _verify_once(driver, ids / "biden/biden.jpg", citizen_id="555500000001") == "no_match"
    assert "NO MATCH" in driver.find_element(By.ID, "decision").text
    _shot(driver, "counter-en-3-no-match")
    with ui_server.client(ui_server.admin) as c:
        audit = c.get("/v1/audit", params={"citizen_id": "555500000001"}).json()["items"]
        assert [e["decision"] for e in audit] == ["no_match"]

    # Small screen: the same page stays usable (no horizontal scrolling).
    driver.set_window_size(390, 844)
    time.sleep(0.3)
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"
    )
    _shot(driver, "counter-en-4-phone")
    driver.set_window_size(1100, 900)


def test_review_page_dismisses_case(ui_server: UiServer, browser: WebDriver, ids: Path) -> None:
    driver = browser
    with ui_server.client(ui_server.reviewer) as c:
        for citizen, photo in (("333300000001", "john1.jpeg"), ("333300000002", "john2.jpeg")):
            r = c.post(
                "/v1/claimants",
                data={"citizen_id": citizen},
                files={"photo": (photo, (ids / "kit_harington" / photo).read_bytes())},
            )
            assert r.status_code == 201, r.text
        case_id = r.json()["case_ids"][0]
        face = c.get("/v1/claimants/333300000001/face")
        assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"

    driver.set_window_size(1100, 900)
    _use_language(driver, ui_server.url + "/ui/review", "en")
    _wait(driver, ec.visibility_of_element_located((By.ID, "api-key")))
    _sign_in(driver, ui_server.url + "/ui/review", ui_server.reviewer)
    selector = f"article.case[data-case-id='{case_id}']"
    card = _wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))
    _wait(
        driver,
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, selector + " img")) == 2
            and all(
                d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
                for img in d.find_elements(By.CSS_SELECTOR, selector + " img")
            )
        ),
    )
    text = card.text
    assert "333300000001" in text and "333300000002" in text and "threshold" in text
    # One pair of claimants (a duplicate) is far too few for the live FMR warning.
    assert not driver.find_element(By.ID, "fmr-warning").is_displayed()
    _shot(driver, "review-1-queue")

    card.find_element(By.TAG_NAME, "textarea").send_keys("same person, enrolled twice by mistake")
    card.find_element(By.CSS_SELECTOR, "button[data-decision='dismissed']").click()
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "queue-status"), "dismissed"))
    assert not driver.find_elements(By.CSS_SELECTOR, selector)
    _shot(driver, "review-2-after-dismiss")

    Select(driver.find_element(By.ID, "status")).select_by_value("dismissed")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    _wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))
    _shot(driver, "review-3-dismissed")

    with ui_server.client(ui_server.reviewer) as c:
        assert all(x["id"] != case_id for x in c.get("/v1/cases").json()["items"])
        done = c.get("/v1/cases", params={"status": "dismissed"}).json()["items"]
        decided = next(x for x in done if x["id"] == case_id)
        assert decided["note"] == "same person, enrolled twice by mistake"
        assert decided["reviewer"] == "ui-reviewer"


def test_face_thumbnail_endpoint_and_erasure(ui_server: UiServer, ids: Path) -> None:
    with ui_server.client(ui_server.reviewer) as c:
        r = c.post(
            "/v1/claimants",
            data={"citizen_id": "444400000001"},
            files={"photo": ("obama.jpg", (ids / "obama/obama.jpg").read_bytes())},
        )
        assert r.status_code == 201, r.text
        jpeg = c.get("/v1/claimants/444400000001/face")
        assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
        img = cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_COLOR)
        assert max(img.shape[:2]) <= 160
        # Re-enrolment replaces the template and its face.
        again = c.post(
            "/v1/claimants",
            data={"citizen_id": "444400000001"},
            files={"photo": ("biden.jpg", (ids / "biden/biden.jpg").read_bytes())},
        )
        assert again.status_code == 201 and again.json()["replaced_templates"] == 1
        replaced = c.get("/v1/claimants/444400000001/face")
        assert replaced.status_code == 200 and replaced.content != jpeg.content
        missing = c.get("/v1/claimants/444400000009/face")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    with ui_server.client(ui_server.counter) as c:
        assert c.get("/v1/claimants/444400000001/face").status_code == 403
    with ui_server.client(ui_server.admin) as c:
        assert c.delete("/v1/claimants/444400000001").status_code == 200
        assert c.get("/v1/claimants/444400000001/face").status_code == 404
    engine = make_engine(ui_server.db_url)
    with engine.connect() as conn:
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM face_thumbnails f "
                "LEFT JOIN templates t ON t.id = f.template_id WHERE t.id IS NULL"
            )
        ).scalar()
        owners = conn.execute(
            text(
                "SELECT count(*) FROM face_thumbnails f JOIN templates t ON t.id = f.template_id "
                "JOIN claimants c ON c.id = t.claimant_id WHERE c.citizen_id = '444400000001'"
            )
        ).scalar()
    engine.dispose()
    assert orphans == 0 and owners == 0


def test_pages_are_served_locally(ui_server: UiServer) -> None:
    for path in ("/ui/counter", "/ui/review"):
        r = httpx.get(ui_server.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text  # no CDN
        assert "default-src 'self'" in r.headers["content-security-policy"]
    for asset in ("style.css", "common.js", "counter.js", "chip.js", "review.js"):
        assert httpx.get(f"{ui_server.url}/ui/static/{asset}").status_code == 200


def test_review_page_placeholder_without_stored_face(
    ui_server: UiServer, browser: WebDriver, ids: Path, pipeline
) -> None:
    """A claimant enrolled without a thumbnail (before the opt-in, or by bulk screening) shows
    a neutral placeholder; the other side of the case still shows its face."""
    from biometric.decode import read_image
    from biometric.gallery.service import open_gallery

    engine = make_engine(ui_server.db_url)
    try:
        gallery = open_gallery(engine, pipeline, None)
        rgb = read_image(ids / "obama/obama.jpg").rgb
        gallery.enrol("777700000001", pipeline.template(rgb, "chip").embedding, screen=False)
    finally:
        engine.dispose()
    with ui_server.client(ui_server.reviewer) as c:
        r = c.post(
            "/v1/claimants",
            data={"citizen_id": "777700000002"},
            files={"photo": ("obama.jpg", (ids / "obama/obama.jpg").read_bytes())},
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["case_ids"][0]
        missing = c.get("/v1/claimants/777700000001/face")
        assert missing.status_code == 404 and missing.json()["type"].endswith("/face_not_stored")

    def face_refusals() -> int:
        with ui_server.client(ui_server.admin) as c:
            items = c.get("/v1/audit", params={"decision": "refused", "limit": 500}).json()
        return len([e for e in items["items"] if e["action"] == "claimant_face"])

    refused_before = face_refusals()  # the 404 just asked for above
    driver = browser
    driver.set_window_size(1100, 900)
    # Still signed in: the key is in sessionStorage.
    _use_language(driver, ui_server.url + "/ui/review", "en")
    selector = f"article.case[data-case-id='{case_id}']"
    _wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))
    # Counted in the page (the list re-renders when the language is set: no stale elements).
    count = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter(e => e.textContent.includes(arguments[1])).length"
    )
    missing = selector + " .no-photo"
    _wait(driver, lambda d: d.execute_script(count, missing, "photo not stored") == 1)
    _wait(driver, lambda d: d.execute_script(count, selector + " img", "") == 1)
    _shot(driver, "review-4-photo-not-stored")
    # The page asked only for the faces that exist: loading it wrote no "not found" refusal.
    assert face_refusals() == refused_before

    # The review page in Vietnamese: case origin, scores and texts, no English left.
    Select(driver.find_element(By.ID, "lang")).select_by_value("vi")
    _wait(driver, lambda d: d.execute_script("return document.documentElement.lang") == "vi")
    origin = translate("ui.review.origin_enrolment", "vi")
    _wait(driver, lambda d: d.execute_script(count, selector, origin) == 1)
    assert "enrolment" not in driver.find_element(By.CSS_SELECTOR, selector).text
    left = _english_left(driver)
    assert not left, left
    _shot(driver, "issue20-6-review-vi")


# -- counter decisions staff can trust (issue 20) -----------------------------------------------

# Words that only an English sentence has: one of them in a Vietnamese page is text left
# untranslated (file names, EF.DG2/EF.SOD, CSCA and numbers are not words of a sentence).
ENGLISH_WORDS = re.compile(
    r"\b(the|and|of|is|was|not|with|from|this|by|to|signed|trusted|threshold|policy|warn|block|"
    r"match|retake|issuer|found|image|score|chip's|verified|enrolment|screening)\b",
    re.IGNORECASE,
)


# Data, not page text: the SYNTHETIC test CSCA's organisation (biometric/chip/synthetic.py).
CERTIFICATE_NAMES = ("SYNTHETIC test PKI (not a real issuer)",)


def _english_left(driver: WebDriver) -> list[str]:
    """Visible lines of the page that read as English: a catalogue's English sentence, or a
    line with English words (certificate names, which are data, left out)."""
    text = driver.find_element(By.TAG_NAME, "body").text
    for name in CERTIFICATE_NAMES:
        text = text.replace(name, "")
    vi, en = (
        {m.id: m.string for m in i18n.read_catalog(loc) if m.id} for loc in ("vi", "en")
    )
    sentences = {v for k, v in en.items() if v != vi.get(k) and len(v) > 12 and "{" not in v}
    lines = [line for line in text.splitlines() if line.strip()]
    return [
        line for line in lines
        if ENGLISH_WORDS.search(line.replace("English", "")) or any(s in line for s in sentences)
    ]


def _background(driver: WebDriver, element_id: str) -> str:
    return driver.execute_script(
        "return getComputedStyle(document.getElementById(arguments[0])).backgroundColor",
        element_id,
    )


MATCH_GREEN = "rgb(227, 244, 232)"  # --match-bg in biometric/gallery/style.py


def _verify_chip_files(driver: WebDriver, dg2: Path, sod: Path | None) -> str:
    driver.find_element(By.ID, "chip-files-clear").click()
    driver.find_element(By.ID, "dg2-file").send_keys(str(dg2))
    if sod is not None:
        driver.find_element(By.ID, "sod-file").send_keys(str(sod))
    driver.find_element(By.ID, "verify").click()
    result = _wait(driver, ec.visibility_of_element_located((By.ID, "result")), 60)
    return result.find_element(By.ID, "decision").get_attribute("data-decision")


def test_counter_chip_trust_and_stale_results_in_vietnamese(
    ui_server: UiServer, browser: WebDriver, ids: Path, specimens: Specimens
) -> None:
    driver = browser
    driver.set_window_size(1100, 900)
    page = ui_server.url + "/ui/counter"
    _use_language(driver, page, "vi")
    driver.execute_script("sessionStorage.clear()")
    driver.get(page)

    # A wrong key is refused on the sign-in form, not at the first verification.
    field = _wait(driver, ec.visibility_of_element_located((By.ID, "api-key")))
    field.send_keys("not-a-key")
    field.submit()
    error = driver.find_element(By.ID, "sign-in-error")
    _wait(driver, lambda d: error.text.startswith(translate("ui.key_refused", "vi")))
    assert not driver.find_element(By.ID, "verify-form").is_displayed()
    assert not driver.execute_script("return Object.values(sessionStorage).length")
    _shot(driver, "issue20-1-wrong-key")
    # A reviewer's key is not a counter key: refused there too.
    field.clear()
    field.send_keys(ui_server.reviewer)
    field.submit()
    _wait(driver, lambda d: error.text.startswith(translate("ui.key_wrong_role", "vi")))
    field.clear()
    _sign_in(driver, page, ui_server.counter)

    live = ids / "kit_harington/john1.jpeg"
    driver.find_element(By.ID, "live-file").send_keys(str(live))
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "live-status"), live.name))

    # Forged chip (the portrait changed after signing; the faces match): never a green match.
    forged = specimens.variants["image_byte_changed"]
    assert _verify_chip_files(driver, forged.dg2, forged.sod) == "chip_untrusted"
    assert _background(driver, "decision") != MATCH_GREEN
    assert driver.find_element(By.ID, "decision").text.startswith("CHIP KHÔNG TIN CẬY")
    assert translate("reason.chip_auth_failed", "vi") in driver.find_element(By.ID, "reasons").text
    assert driver.find_element(By.ID, "chip-auth").get_attribute("data-status") == "hash_mismatch"
    _shot(driver, "issue20-2-forged-chip")

    # A chip that could not be checked (no EF.SOD): the face decision, amber, with the banner.
    unchecked = specimens.variants["no_sod"]
    assert _verify_chip_files(driver, unchecked.dg2, None) == "match"
    decision = driver.find_element(By.ID, "decision")
    assert decision.get_attribute("data-chip-trust") == "not_verified"
    assert "unverified" in decision.get_attribute("class")
    assert _background(driver, "decision") != MATCH_GREEN
    assert driver.find_element(By.ID, "chip-banner").is_displayed()
    _shot(driver, "issue20-3-unchecked-chip")

    # A verified chip: the green screen, the sources named, the score on the 0-100 scale.
    genuine = specimens.variants["genuine"]
    assert _verify_chip_files(driver, genuine.dg2, genuine.sod) == "match"
    assert _background(driver, "decision") == MATCH_GREEN
    assert not driver.find_element(By.ID, "chip-banner").is_displayed()
    assert live.name in driver.find_element(By.ID, "used-live").text
    used_chip = driver.find_element(By.ID, "used-chip").text
    assert genuine.dg2.name in used_chip and genuine.sod.name in used_chip
    assert 50 <= int(driver.find_element(By.ID, "score").text) <= 100
    assert "," in driver.find_element(By.ID, "raw-score").text  # Vietnamese decimal comma
    detail = driver.find_element(By.ID, "chip-auth-detail").text
    assert "Việt Nam" in detail and "CN=" not in detail and "cảnh báo" in detail
    left = _english_left(driver)
    assert not left, left  # no English left in the Vietnamese page
    _shot(driver, "issue20-4-verified-chip")

    # A request that fails after a match: the old result is gone, only the error shows.
    bad = ids.parent / "SOURCE.md"  # not an image
    driver.find_element(By.ID, "live-file").send_keys(str(bad))
    _wait(driver, ec.invisibility_of_element_located((By.ID, "result")))  # input changed
    driver.execute_script("document.getElementById('result').classList.remove('hidden')")
    driver.find_element(By.ID, "verify").click()
    status = driver.find_element(By.ID, "verify-status")
    _wait(driver, lambda d: "error" in status.get_attribute("class") and status.text
          and status.text != translate("ui.counter.verifying", "vi"))
    assert not driver.find_element(By.ID, "result").is_displayed()
    left = _english_left(driver)
    assert not left, left  # the problem's detail too
    _shot(driver, "issue20-5-failed-after-match")

    # Picking a chip photo clears the chip files (one source, never one shown and another
    # compared); each input can be cleared.
    driver.find_element(By.ID, "chip-file").send_keys(str(ids / "obama/obama.jpg"))
    _wait(driver, ec.text_to_be_present_in_element((By.ID, "chip-status"), "obama.jpg"))
    assert driver.find_element(By.ID, "chip-files-status").text == ""
    driver.find_element(By.ID, "chip-clear").click()
    assert driver.find_element(By.ID, "chip-status").text == translate("ui.counter.no_chip", "vi")
    driver.find_element(By.ID, "live-clear").click()
    assert driver.find_element(By.ID, "live-status").text == translate("ui.counter.no_live", "vi")
