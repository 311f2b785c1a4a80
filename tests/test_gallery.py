"""Claimant gallery on real photos, against SQLite and the real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from biometric.decode import read_image
from biometric.errors import BiometricError
from biometric.gallery.models import Claimant, DuplicateCase, Template
from biometric.gallery.screening import list_source
from biometric.gallery.service import (
    ClaimantNotFound,
    DuplicatePolicy,
    Gallery,
    IndexBackend,
    InvalidCitizenId,
    open_gallery,
)
from biometric.i18n import translate
from biometric.index import SharedIndex
from biometric.pipeline import CHIP, Pipeline
from biometric.store.db import make_engine, migrate, session_factory


@pytest.fixture(scope="module")
def yale_templates(pipeline: Pipeline, data_dir: Path) -> dict[str, list[np.ndarray]]:
    """Three templates per yaleb identity (frontal light, and two other light directions)."""
    out = {}
    for ident in sorted(p for p in (data_dir / "yaleb_moderate").iterdir() if p.is_dir()):
        photos = sorted(ident.glob("*.pgm"))
        vectors = []
        for photo in (photos[0], photos[len(photos) // 2], photos[-1]):
            analysis = pipeline.template(read_image(photo).rgb, CHIP)
            if analysis.embedding is not None:
                vectors.append(analysis.embedding)
        out[ident.name] = vectors
    return out


def _gallery(url: str, pipeline: Pipeline, index_dir: Path | None,
             policy: DuplicatePolicy = DuplicatePolicy.FLAG) -> Gallery:
    engine = make_engine(url)
    migrate(engine)
    return open_gallery(engine, pipeline, index_dir, policy=policy)


def _cid(group: int, n: int) -> str:
    return f"{group}{n:011d}"


def test_second_enrolments_are_flagged_as_the_right_person(
    database_url: str, pipeline: Pipeline, yale_templates, tmp_path: Path
) -> None:
    gallery = _gallery(database_url, pipeline, tmp_path / "index")
    names = sorted(yale_templates)
    for n, name in enumerate(names):
        first = gallery.enrol(_cid(1, n), yale_templates[name][0])
        assert first.candidates == [], f"{name}: flagged against {first.candidates}"
    right = wrong = 0
    for n, name in enumerate(names[:10]):
        again = gallery.enrol(_cid(2, n), yale_templates[name][1])
        right += any(c.citizen_id == _cid(1, n) for c in again.candidates)
        wrong += sum(c.citizen_id != _cid(1, n) for c in again.candidates)
        assert again.case_ids or not again.candidates
    print(f"\n{right}/10 second enrolments flagged as the right person; "
          f"{wrong} false flags against {len(names)} enrolled claimants "
          f"(threshold {gallery.duplicate_threshold:.4f}, FMR {gallery.duplicate_fmr:g})")
    assert right >= 9
    cases, total = gallery.list_cases()
    assert total == right + wrong and all(c.status == "open" for c in cases)


def test_erase_removes_claimant_from_store_and_index(
    database_url: str, pipeline: Pipeline, yale_templates, tmp_path: Path
) -> None:
    gallery = _gallery(database_url, pipeline, tmp_path / "index")
    names = sorted(yale_templates)[:5]
    for n, name in enumerate(names):
        gallery.enrol(_cid(1, n), yale_templates[name][0])
    probe = yale_templates[names[2]][1]
    assert gallery.search(probe, k=1)[0].citizen_id == _cid(1, 2)
    assert gallery.erase(_cid(1, 2)) == 1
    assert all(c.citizen_id != _cid(1, 2) for c in gallery.search(probe, k=5))
    assert len(gallery.index_ids()) == gallery.template_count() == 4
    with pytest.raises(ClaimantNotFound):
        gallery.erase(_cid(1, 2))


def test_reenrolment_replaces_the_template(
    database_url: str, pipeline: Pipeline, yale_templates, tmp_path: Path
) -> None:
    gallery = _gallery(database_url, pipeline, None)
    name = sorted(yale_templates)[0]
    gallery.enrol(_cid(1, 0), yale_templates[name][0])
    again = gallery.enrol(_cid(1, 0), yale_templates[name][1])
    assert again.replaced_templates == 1 and again.candidates == []
    assert gallery.template_count() == 1 and len(gallery.index_ids()) == 1


def test_hold_policy_and_review_release(
    database_url: str, pipeline: Pipeline, yale_templates, tmp_path: Path
) -> None:
    gallery = _gallery(database_url, pipeline, None, DuplicatePolicy.HOLD)
    name = sorted(yale_templates)[3]
    gallery.enrol(_cid(1, 0), yale_templates[name][0])
    held = gallery.enrol(_cid(2, 0), yale_templates[name][1])
    assert held.status == "held" and len(held.case_ids) == 1
    view = gallery.decide_case(held.case_ids[0], "dismissed", reviewer="alice", note="twins")
    assert view.status == "dismissed" and view.reviewer == "alice"
    with session_factory(make_engine(database_url))() as s:
        status = s.scalar(select(Claimant.status).where(Claimant.citizen_id == _cid(2, 0)))
    assert status == "active"
    assert gallery.list_cases()[1] == 0


def test_saved_index_replays_newer_changes(
    database_url: str, pipeline: Pipeline, yale_templates, tmp_path: Path
) -> None:
    names = sorted(yale_templates)
    gallery = _gallery(database_url, pipeline, tmp_path / "index")
    for n, name in enumerate(names[:4]):
        gallery.enrol(_cid(1, n), yale_templates[name][0])
    gallery.save_index()
    saved_at = gallery.change_number
    gallery.enrol(_cid(1, 9), yale_templates[names[9]][0])
    gallery.erase(_cid(1, 0))
    reopened = _gallery(database_url, pipeline, tmp_path / "index")
    assert reopened.change_number > saved_at
    assert list(reopened.index_ids()) == list(gallery.index_ids())
    assert reopened.search(yale_templates[names[9]][1], k=1)[0].citizen_id == _cid(1, 9)


def test_bad_citizen_id_is_refused(pipeline: Pipeline, yale_templates, tmp_path: Path) -> None:
    gallery = _gallery(f"sqlite:///{tmp_path / 's.db'}", pipeline, None)
    template = next(iter(yale_templates.values()))[0]
    # Full-width, Arabic-Indic and Devanagari digits pass \d; a trailing newline passes $.
    unicode_digits = ("１２３４５６７８９０１２", "١٢٣٤٥٦٧٨٩٠١٢", "१२३४५६७८९०१२")
    for bad in ("12345", "123456789012\n", *unicode_digits):
        with pytest.raises(InvalidCitizenId):
            gallery.enrol(bad, template)
    assert gallery.template_count() == 0


def test_bulk_screening_input_takes_ascii_ids_only(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    csv_path = tmp_path / "claimants.csv"
    csv_path.write_text("citizen_id,path\n123456789012,a.jpg\n１２３４５６７８９０１２,a.jpg\n")
    with pytest.raises(BiometricError, match="12-digit"):
        list_source(csv_path)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "１２３４５６７８９０１２.jpg").write_bytes(b"")
    with pytest.raises(BiometricError, match="12-digit"):
        list_source(folder)


def _screen_source(data_dir: Path, tmp_path: Path) -> tuple[Path, int]:
    photos = sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::3]
    csv_path = tmp_path / "claimants.csv"
    csv_path.write_text("citizen_id,path\n" + "".join(
        f"{_cid(5, i)},{p}\n" for i, p in enumerate(photos)))
    return csv_path, len(photos)


def _count_templates(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM templates").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not migrated yet


def test_screening_survives_kill_9_and_resumes(data_dir: Path, pipeline: Pipeline,
                                               tmp_path: Path) -> None:
    """A real `biometric screen` process is killed with SIGKILL mid-run, then run again."""
    source, n_photos = _screen_source(data_dir, tmp_path)
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "BIOMETRIC_INDEX_DIR": str(tmp_path / "index")}
    cmd = [sys.executable, "-m", "biometric.cli", "screen", str(source), "--db", url,
           "--out", str(tmp_path / "report")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _count_templates(db) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "screening finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acknowledged = _count_templates(db)
    assert 0 < acknowledged < n_photos

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    engine = make_engine(url)
    with session_factory(engine)() as s:
        n_templates = s.scalar(select(func.count()).select_from(Template))
        n_claimants = s.scalar(select(func.count()).select_from(Claimant))
        per_claimant = s.execute(select(Template.claimant_id, func.count())
                                 .group_by(Template.claimant_id)).all()
        n_cases = s.scalar(select(func.count()).select_from(DuplicateCase))
    assert n_templates >= acknowledged
    assert n_claimants == n_templates and all(c == 1 for _, c in per_claimant), "duplicates"
    assert n_templates >= 0.95 * n_photos, "templates missing after the restart"
    gallery = open_gallery(engine, pipeline, tmp_path / "index")
    with session_factory(engine)() as s:
        store_ids = sorted(s.scalars(select(Template.id)).all())
    assert list(gallery.index_ids()) == store_ids, "index and store disagree"
    assert n_cases > 0
    report = (tmp_path / "report" / "report.html").read_text()
    assert translate("report.title") in report and "data:image/jpeg;base64," in report


def test_workers_sharing_one_index_file_erase_without_a_copy(tmp_path: Path) -> None:
    """Two workers (two galleries, as two API processes) map one saved index file. One erases;
    the other, which still maps the old file, catches up at its next sync and maps the new one;
    its shutdown save cannot write the erased template back. Random unit vectors (synthetic)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate(engine)
    dim = 64

    def worker() -> Gallery:
        e = make_engine(url)
        searcher = IndexBackend().searcher(e, "synthetic", dim, tmp_path / "index" / "s.faiss")
        return Gallery(e, searcher, model="synthetic", model_version="t", dim=dim,
                       duplicate_threshold=0.9, duplicate_fmr=1e-6)

    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    one = worker()
    for n in range(5):
        one.enrol(f"80000000000{n}", x[n])
    one.save_index()
    two = worker()  # maps the file one wrote
    assert isinstance(two.searcher.replica.index, SharedIndex)
    assert len(two.index_ids()) == 5
    two.enrol("800000000005", x[5])  # a change only in the log and two's delta
    assert one.search(x[5])[0].citizen_id == "800000000005"  # one replays it

    needle = x[1].astype("<f4").tobytes()
    assert one.erase("800000000001") == 1  # one rewrites the file
    files = [p for p in (tmp_path / "index").iterdir() if p.is_file()]
    assert not any(needle in p.read_bytes() for p in files)
    assert all(c.citizen_id != "800000000001" for c in two.search(x[1]))
    two.close()  # shutdown save by the worker that did not erase
    assert not any(needle in p.read_bytes() for p in (tmp_path / "index").iterdir() if p.is_file())
    three = worker()
    assert three.index_matches_store() and len(three.index_ids()) == 5
    assert three.search(x[5])[0].citizen_id == "800000000005"


def test_bulk_load_writes_templates_and_change_log(database_url: str) -> None:
    """``load-templates``' store path (COPY on PostgreSQL, executemany on SQLite): the templates,
    their claimants and change-log rows in one transaction; another process's index replays
    them. Random unit vectors (synthetic)."""
    from biometric.gallery.bulk import NewTemplate

    engine = make_engine(database_url)
    migrate(engine)
    dim = 32
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)

    def gallery(model: str) -> Gallery:
        return Gallery(make_engine(database_url), model=model, model_version="t", dim=dim,
                       duplicate_threshold=0.9, duplicate_fmr=1e-6)

    other = gallery("other")  # a claimant known under another model keeps its row
    other.enrol("810000000000", x[0])
    loader, reader = gallery("synthetic"), gallery("synthetic")
    items = [NewTemplate(f"81000000000{i}", x[i], 0.5) for i in range(5)]
    assert loader.enrol_new_bulk(items) == 5
    assert loader.enrolled_among(["810000000000", "819999999999"]) == {"810000000000"}
    assert reader.sync() == 5 and reader.index_matches_store()
    for i in range(5):
        assert reader.search(x[i])[0].citizen_id == f"81000000000{i}"
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Claimant)) == 5
    engine.dispose()
