"""Site calibration on real photos: `biometric calibrate` fits an operating point on one half of
a shared set's people, and the other half (people it never saw) stays within 2x of the claimed
FMR at it; `verify` and `evaluate` name the operating point that decided."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from biometric.operating_point import (
    OperatingPointError,
    SiteOperatingPoint,
    load_operating_point,
    save_operating_point,
)
from biometric.pipeline import Pipeline, PipelineConfig
from biometric.site import few_people

# lfw_dev people with at least this many photos, CAP photos each: 180 people, alternately in
# the fitting and the held-out half (90 people, 270 photos, 36,045 impostor pairs per half:
# 3.6x the 10/FMR that FMR 1e-3 needs). Both halves take about a minute each on one core.
MIN_PHOTOS = 4
CAP = 3
CLAIM = 1e-3
MAX_FMR_RATIO = 2.0  # the project's target (GUIDE: within 2x after site calibration)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "biometric.cli", *args],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **(env or {})},
    )


def _halves(lfw: Path, root: Path) -> tuple[Path, Path]:
    """Two person-disjoint folders of links to lfw_dev identity folders (the photos stay in
    ../shared/data; nothing is copied)."""
    people = sorted(p for p in lfw.iterdir()
                    if p.is_dir() and sum(1 for _ in p.glob("*.jpg")) >= MIN_PHOTOS)
    halves = (root / "fit", root / "held_out")
    for k, person in enumerate(people):
        target = halves[k % 2] / person.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(person, target_is_directory=True)
    return halves


@pytest.fixture(scope="module")
def site(data_dir: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("site")
    fit, held_out = _halves(data_dir / "lfw_dev", root)
    out = root / "site.json"
    proc = _cli("calibrate", str(fit), "--cap", str(CAP), "--fmr", str(CLAIM), "--out",
                str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    return {"file": out, "held_out": held_out, "stdout": proc.stdout}


def test_site_threshold_holds_on_people_it_never_saw(site: dict) -> None:
    point = load_operating_point(site["file"])  # validated by the one declared model
    assert point.kind == "site" and point.fmr == CLAIM and point.id.startswith("site:")
    assert point.sources[0].people == 90 and point.sources[0].impostor_pairs >= 10 / CLAIM
    fitted = point.point()
    assert fitted.fmr_out_of_sample is not None and fitted.folds == 5
    # The manifest's structure: a threshold per capture condition (lfw_dev: colour, and the
    # few black-and-white photos, too few to fit their own).
    conditions = {c.condition: c for c in fitted.conditions}
    assert conditions["colour"].fitted and not conditions["grey"].fitted
    assert conditions["grey"].threshold == fitted.threshold  # the pooled fallback
    # 36k pairs cannot support 1e-4: the command says what it would need, and fits nothing.
    assert [t.fmr for t in point.thresholds] == [CLAIM]
    assert "not fitted: FMR 0.0001 needs at least 100,000 impostor pairs" in site["stdout"]

    proc = _cli("evaluate", str(site["held_out"]), "--cap", str(CAP), "--json", "--workers", "2",
                "--operating-point", str(site["file"]))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # The keys of last round's JSON, plus the operating point.
    assert set(report) == {"embedder", "fmr_claimed", "threshold", "condition_thresholds",
                           "role", "sets", "operating_point"}
    assert report["operating_point"] == point.id
    assert report["threshold"] == pytest.approx(point.threshold)
    held = report["sets"][0]
    print(f"\nsite {point.id} threshold {point.threshold:.4f}: held-out half FMR "
          f"{held['fmr_at_threshold']:.2e} ({held['fmr_ratio']:.2f}x) on {held['impostor']} "
          f"pairs, FNMR {held['fnmr_at_threshold']:.4f} on {held['genuine']}; folds within "
          f"the fit {fitted.fmr_out_of_sample / CLAIM:.2f}x")
    assert held["impostor"] >= 10 / CLAIM
    assert held["fmr_ratio"] <= MAX_FMR_RATIO
    # Measured 0.0148 (2026-12-02); LFW web photos at FMR 1e-3 with the fusion default lose
    # about 1.3 % (TAR 0.9875 on lfw_dev), so 3 % leaves room without hiding a broken fit.
    assert held["fnmr_at_threshold"] <= 0.03


def test_verify_names_the_operating_point(site: dict, fr_dir: Path) -> None:
    live = fr_dir / "identities" / "obama" / "obama.jpg"
    chip = fr_dir / "identities" / "obama" / "obama2.jpg"
    point = load_operating_point(site["file"])
    # From the environment, as `serve` and the other commands read it too.
    proc = _cli("verify", str(live), str(chip), "--json",
                env={"BIOMETRIC_OPERATING_POINT": str(site["file"])})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["operating_point"] == point.id
    assert result["threshold"] == pytest.approx(point.threshold, abs=1e-4)
    assert result["decision"] == "match"
    shipped = json.loads(_cli("verify", str(live), str(chip), "--json").stdout)
    assert shipped["operating_point"].startswith("shipped:")


def test_file_for_other_models_is_refused(site: dict, fr_dir: Path, tmp_path: Path) -> None:
    point = load_operating_point(site["file"])
    other = point.model_copy(update={"models": {**point.models, "dlib_resnet": "0" * 12}})
    pipeline = Pipeline(settings=PipelineConfig(operating_point=other), embedder=point.embedder)
    with pytest.raises(OperatingPointError, match="other model files"):
        _ = pipeline.operating_point
    elsewhere = "dlib_resnet" if point.embedder == "mobilefacenet" else "mobilefacenet"
    wrong = Pipeline(settings=PipelineConfig(operating_point=point), embedder=elsewhere)
    with pytest.raises(OperatingPointError, match=f"fitted for {re.escape(point.embedder)}"):
        _ = wrong.operating_point
    with pytest.raises(OperatingPointError, match=r"no threshold for FMR 0\.0001"):
        point.point(1e-4)
    # A file that is not an operating point: one clear line, not a trace.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**point.model_dump(mode="json"), "fmr": "often"}))
    with pytest.raises(OperatingPointError, match="not an operating-point file"):
        load_operating_point(bad)
    photo = str(fr_dir / "identities" / "obama" / "obama.jpg")
    proc = _cli("verify", photo, photo, "--operating-point", str(bad))
    assert proc.returncode == 2 and "operating_point_error" in proc.stderr
    # Few people: a warning, whatever the pair count (biometric.site.MIN_PEOPLE).
    assert few_people(point) is None  # 90 people
    few = point.model_copy(update={"sources": [point.sources[0].model_copy(update={"people": 10})]})
    assert "only 10 people" in (few_people(few) or "")
    # Round trip through the writer keeps every field.
    again = save_operating_point(point, tmp_path / "again.json")
    assert SiteOperatingPoint.model_validate_json(again.read_text()) == point


def test_too_few_photos_for_1e4_is_a_clear_error(fr_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "site.json"
    proc = _cli("calibrate", str(fr_dir), "--fmr", "1e-4", "--out", str(out), "--workers", "1")
    assert proc.returncode == 2
    assert "insufficient_data" in proc.stderr
    assert "needs at least 100,000 impostor pairs" in proc.stderr
    assert "add about" in proc.stderr and "photos of new people" in proc.stderr
    assert not out.exists()


def test_service_decides_at_the_site_point(site: dict, fr_dir: Path, tmp_path: Path) -> None:
    """`serve` with BIOMETRIC_OPERATING_POINT: the answer, its audit row and /metrics name the
    site's operating point (a verify worker process decides, so the file crosses to it)."""
    import httpx

    from api.launcher import running_server
    from biometric.store.db import make_engine, migrate, session_factory
    from biometric.store.keys import create_key

    point = load_operating_point(site["file"])
    db_url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        counter = create_key(s, "site-counter", "counter")[1]
        admin = create_key(s, "site-admin", "admin")[1]
    engine.dispose()
    env = {"BIOMETRIC_DATABASE_URL": db_url, "BIOMETRIC_OPERATING_POINT": str(site["file"]),
           "BIOMETRIC_VERIFY_WORKERS": "1", "BIOMETRIC_INDEX_DIR": str(tmp_path / "index")}
    photos = fr_dir / "identities" / "obama"
    with running_server(env) as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": counter}, timeout=60) as c:
            r = c.post("/v1/verify", data={"citizen_id": "012345678901"},
                       files={"live": ("l.jpg", (photos / "obama.jpg").read_bytes()),
                              "chip": ("c.jpg", (photos / "obama2.jpg").read_bytes())})
            assert r.status_code == 200, r.text
            assert r.json()["operating_point"] == point.id
            metrics = c.get("/metrics").text
        assert f'decision="match",operating_point="{point.id}"' in metrics
        with httpx.Client(base_url=url, headers={"X-API-Key": admin}, timeout=60) as c:
            rows = c.get("/v1/audit", params={"citizen_id": "012345678901"}).json()["items"]
        assert rows[0]["model_versions"]["operating_point"] == point.id
