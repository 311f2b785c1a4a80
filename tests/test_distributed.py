"""National-scale path on Ray, embedded with 2 CPUs (one ray.init for the whole session), on real
photos from the shared data folder. Corrupt and missing files are synthetic, labelled so."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from api.launcher import running_server
from biometric.decode import read_image
from biometric.distributed.enrol_job import (
    FAILED,
    OK,
    EnrolJobConfig,
    run_enrol_job,
    shard_path,
)
from biometric.distributed.load import load_shards
from biometric.distributed.runtime import RayTarget, connect
from biometric.distributed.screening import (
    DistributedScreening,
    engine_url,
    screen_distributed,
)
from biometric.distributed.shards import ShardedIndex, merge_top_k
from biometric.distributed.source import SourceError, SourceRow, read_source, shard_of
from biometric.evaluation import IMAGE_SUFFIXES
from biometric.gallery.screening import screen
from biometric.gallery.service import IndexBackend, open_gallery
from biometric.index import FaceIndex, IndexKind, IndexSpec
from biometric.pipeline import CHIP
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key

TARGET = RayTarget(num_cpus=2)


@pytest.fixture(scope="session")
def ray_local():
    import ray

    connect(TARGET)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def photos(fr_dir: Path) -> list[Path]:
    found = sorted(
        p for p in (fr_dir / "identities").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    assert len(found) >= 10
    return found


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("citizen_id,photo\n" + "".join(f"{c},{p}\n" for c, p in rows))
    return path


def _cid(i: int) -> str:
    return f"{790000000000 + i:012d}"


def _rows(out_dir: Path) -> list[dict]:
    return [r for f in sorted(out_dir.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_source_validation(tmp_path: Path, photos: list[Path]) -> None:
    good = _write_csv(tmp_path / "a.csv", [(_cid(1), str(photos[0])), (_cid(2), "rel.jpg")])
    rows = read_source(good)
    assert rows[0] == SourceRow(_cid(1), str(photos[0]))
    assert rows[1].photo == str((tmp_path / "rel.jpg").resolve())  # relative to the list
    dup = _write_csv(tmp_path / "b.csv", [(_cid(1), "x.jpg"), (_cid(1), "y.jpg")])
    with pytest.raises(SourceError, match="more than once"):
        read_source(dup)
    bad = _write_csv(tmp_path / "c.csv", [("12345", "x.jpg")])
    with pytest.raises(SourceError, match="row 2"):
        read_source(bad)
    # A stable hash: the same shard in every process, run and release (pinned: changing it
    # would misplace every stored shard), spread over the shards.
    assert (shard_of("000000000001", 1000), shard_of("079200001234", 64)) == (793, 22)
    assert len({shard_of(_cid(i), 8) for i in range(200)}) == 8


def test_waves_bound_the_rows_per_ray_data_run(monkeypatch) -> None:
    from biometric.distributed import enrol_job

    monkeypatch.setattr(enrol_job, "ROWS_PER_WAVE", 5)
    by_shard = {
        s: [SourceRow(_cid(10 * s + i), "x") for i in range(n)]
        for s, n in enumerate([3, 2, 4, 9, 1])
    }
    assert enrol_job._waves([0, 1, 2, 3, 4], by_shard) == [[0, 1], [2], [3], [4]]


def test_enrol_actor_counts_every_failure(tmp_path: Path, photos: list[Path]) -> None:
    """In process (no Ray): an unforeseen error on one photo (here a folder where a photo should
    be) is a failed row with its reason, and the batch's other photos still get templates."""
    from biometric.distributed.enrol_job import PROCESSING_ERROR, EnrolActor

    actor = EnrolActor(None, None)
    refs = [str(photos[0]), str(tmp_path), str(tmp_path / "missing.jpg")]
    out = actor(
        {
            "citizen_id": np.array([_cid(i) for i in range(3)], dtype=object),
            "photo": np.array(refs, dtype=object),
            "shard": np.zeros(3, np.int64),
        }
    )
    assert out["status"].tolist() == [OK, FAILED, FAILED]
    assert out["reasons"][1] == [PROCESSING_ERROR] and "IsADirectoryError" in out["detail"][1]
    assert out["reasons"][2] == ["image_decode_error"]
    assert np.isfinite(out["template"][0]).all() and np.isnan(out["template"][1]).all()


def test_index_vectors_in_the_order_asked() -> None:
    """FaceIndex.vectors (the self-join's queries across shards); synthetic unit vectors."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(100, 150)
    index = FaceIndex.build(ids, x, IndexSpec.for_size(IndexKind.FLAT, 16, 50))
    index.remove([101])
    np.testing.assert_array_equal(index.vectors([149, 100, 120]), x[[49, 0, 20]])
    with pytest.raises(KeyError):
        index.vectors([101])


def test_merge_top_k() -> None:
    a = (np.array([[0.9, 0.5]], np.float32), np.array([[1, 2]]))
    b = (np.array([[0.7, -np.inf]], np.float32), np.array([[3, -1]]))
    scores, ids = merge_top_k([a, b], 3)
    assert ids.tolist() == [[1, 3, 2]] and scores[0, 0] == pytest.approx(0.9)
    _, ids = merge_top_k([b], 3)
    assert ids.tolist() == [[3, -1, -1]]


def test_enrol_bulk_equals_in_process_and_resumes(
    ray_local, tmp_path: Path, photos: list[Path], pipeline
) -> None:
    corrupt = tmp_path / "corrupt.jpg"  # synthetic: not an image
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    entries = [(_cid(i), str(p)) for i, p in enumerate(photos)]
    entries += [(_cid(90), str(corrupt)), (_cid(91), str(tmp_path / "missing.jpg"))]
    source = read_source(_write_csv(tmp_path / "src.csv", entries))
    out = tmp_path / "shards"
    cfg = EnrolJobConfig(out, workers=2, batch_size=4, rows_per_shard=5, target=TARGET)
    first = run_enrol_job(source, cfg)
    assert first.shards == 4 and first.shards_written == 4
    assert first.enrolled + first.failed == len(entries)
    assert first.failed >= 2 and sum(first.failures_by_reason.values()) == first.failed
    rows = _rows(out)
    assert sorted(r["citizen_id"] for r in rows) == sorted(c for c, _ in entries)  # once each
    by_id = {r["citizen_id"]: r for r in rows}
    assert by_id[_cid(90)]["status"] == FAILED and by_id[_cid(90)]["reasons"]
    assert by_id[_cid(91)]["status"] == FAILED
    compared = 0
    for cid, path in entries[: len(photos)]:
        local = pipeline.template(read_image(path).rgb, CHIP)
        row = by_id[cid]
        assert (row["status"] == OK) == (local.subject is not None), cid
        if row["status"] == OK:
            remote = np.asarray(row["template"], np.float32)
            cosine = float(remote @ local.embedding)
            assert cosine >= 0.9999, (cid, cosine)
            assert row["model"] == pipeline.embedder.spec.name
            compared += 1
    assert compared >= 10

    # Idempotent: a second run writes nothing.
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    again = run_enrol_job(source, cfg)
    assert again.shards_written == 0 and again.enrolled == first.enrolled
    assert {p: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")} == mtimes
    # Resumable: a shard lost in a crash (never renamed into place) is redone, alone.
    shard_path(out, 2).unlink()
    resumed = run_enrol_job(source, cfg)
    assert resumed.shards_written == 1 and resumed.shards_skipped == 3
    assert sorted(r["citizen_id"] for r in _rows(out)) == sorted(c for c, _ in entries)
    # Another list into the same folder is refused, not mixed in.
    with pytest.raises(SourceError, match="different source"):
        run_enrol_job(source[:-1], cfg)


def _ray_children(name: str) -> list[int]:
    """Pids of this session's Ray worker processes whose title contains ``name`` (other
    sessions' Ray clusters on the machine are left alone)."""
    from ray._private import worker

    raylet = worker._global_node.all_processes["raylet"][0].process.pid
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                continue
    found = []
    for pid in parents:
        p = pid
        while p in parents and p != raylet:
            p = parents[p]
        if p == raylet:
            try:
                if name in Path(f"/proc/{pid}/cmdline").read_text():
                    found.append(pid)
            except OSError:
                continue
    return found


def test_worker_killed_mid_job_loses_and_duplicates_nothing(
    ray_local, tmp_path: Path, photos: list[Path]
) -> None:
    entries = [(_cid(100 + i), str(p)) for i, p in enumerate(photos * 2)]
    source = read_source(_write_csv(tmp_path / "src.csv", entries))
    out = tmp_path / "shards"
    killed: list[int] = []
    lock = threading.Lock()

    def advance(_n: int) -> None:
        with lock:
            if killed:
                return
            pids = _ray_children("EnrolActor")
            assert pids, "no enrolment actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    cfg = EnrolJobConfig(out, workers=2, batch_size=2, rows_per_shard=10, target=TARGET)
    result = run_enrol_job(source, cfg, advance=advance)
    assert killed, "the test did not kill a worker"
    assert (
        not Path(f"/proc/{killed[0]}").exists()
        or "EnrolActor" not in Path(f"/proc/{killed[0]}/cmdline").read_text()
    )
    ids = [r["citizen_id"] for r in _rows(out)]
    assert len(ids) == len(set(ids)) == len(entries)  # nothing lost, nothing twice
    assert result.enrolled + result.failed == len(entries)


@pytest.fixture()
def store(database_url: str, pipeline, photos: list[Path]):
    """A store (SQLite and PostgreSQL) with the real photos enrolled (single-process gallery)."""
    engine = make_engine(database_url)
    migrate(engine)
    gallery = open_gallery(engine, pipeline)
    items = []
    for i, p in enumerate(photos):
        a = pipeline.template(read_image(p).rgb, CHIP)
        if a.embedding is not None:
            items.append((_cid(i), a.embedding, None, "chip"))
    gallery.enrol_many(items)
    yield engine, gallery
    engine.dispose()


def test_sharded_index_follows_the_store_and_survives_a_dead_shard(ray_local, store) -> None:
    engine, gallery = store
    index = ShardedIndex(engine_url(engine), gallery.model, gallery.dim, 3)
    try:
        assert len(index) == gallery.template_count()
        kinds = {i["kind"] for i in index.info()}
        assert kinds == {IndexKind.FLAT.value}  # IndexSpec.for_size's choice at this size
        ids = gallery.index_ids()
        vectors = gallery.searcher.replica.index.vectors(ids)
        flat = FaceIndex.build(ids, vectors, IndexSpec.for_size(IndexKind.FLAT, gallery.dim, 0))
        want_s, want_i = flat.search(vectors, 5)
        got_s, got_i = index.search(vectors, 5)
        assert (got_i == want_i).all()
        np.testing.assert_allclose(got_s, want_s, atol=1e-5)

        # Erase and re-enrol through the store: the shards replay the change log.
        victim = sorted(gallery.enrolled_citizen_ids())[0]
        erased = gallery.erase(victim)
        assert erased == 1
        _, found = index.search(vectors, 1)
        assert not np.isin(ids[0], found)
        assert len(index) == gallery.template_count()
        gallery.enrol_many([(victim, vectors[0], None, "chip")])
        scores, found = index.search(vectors[:1], 1)
        assert scores[0, 0] == pytest.approx(1.0, abs=1e-5) and found[0, 0] not in ids

        # A dead shard actor comes back, rebuilt from the store: nothing acknowledged lost.
        sizes = [i["templates"] for i in index.info()]
        old_pid = index.info()[1]["pid"]
        os.kill(old_pid, signal.SIGKILL)  # the shard's process dies
        deadline = time.monotonic() + 120
        while (info := index.info())[1]["pid"] == old_pid:  # a call may beat the kill
            assert time.monotonic() < deadline, "the shard actor was not restarted"
            time.sleep(0.2)
        assert [i["templates"] for i in info] == sizes
        got_s, _ = index.search(vectors, 1)
        assert (got_s[:, 0] > 0.999).all()
    finally:
        index.shutdown()


def test_distributed_screening_finds_the_same_pairs(
    ray_local, tmp_path: Path, photos: list[Path], pipeline
) -> None:
    source = _write_csv(
        tmp_path / "claimants.csv", [(_cid(200 + i), str(p)) for i, p in enumerate(photos)]
    )
    local_engine = make_engine(f"sqlite:///{tmp_path / 'local.db'}")
    migrate(local_engine)
    local = screen(open_gallery(local_engine, pipeline), pipeline, source)

    ray_engine = make_engine(f"sqlite:///{tmp_path / 'ray.db'}")
    migrate(ray_engine)
    gallery = open_gallery(ray_engine, pipeline, backend=IndexBackend("store"))
    settings = DistributedScreening(TARGET, shards=3, workers=2, batch_size=4)
    result, job = screen_distributed(gallery, ray_engine, source, tmp_path / "out", settings)

    assert local.pairs, "the photos hold duplicates: the screening must find pairs"
    key = lambda p: (p["citizen_a"], p["citizen_b"])  # noqa: E731
    assert sorted(map(key, result.pairs)) == sorted(map(key, local.pairs))
    for mine, theirs in zip(
        sorted(result.pairs, key=key), sorted(local.pairs, key=key), strict=True
    ):
        assert mine["score"] == pytest.approx(theirs["score"], abs=2e-4)
    assert result.clusters == local.clusters
    assert result.gallery_size == local.gallery_size
    assert sorted(f["citizen_id"] for f in result.failures) == sorted(
        f["citizen_id"] for f in local.failures
    )
    assert result.cases_opened == local.cases_opened
    # Loading again (a resumed run) adds nothing.
    again = load_shards(gallery, tmp_path / "out" / "templates")
    assert again.loaded == 0 and again.skipped_already_enrolled == job.enrolled


def test_api_over_the_sharded_index_answers_as_over_the_local_one(
    tmp_path: Path, fr_dir: Path
) -> None:
    """The same HTTP calls (enrol, search, erase, search) against a service whose index is the
    default local one and against one whose index is sharded on Ray embedded in the service
    (``BIOMETRIC_INDEX=ray:local``): the same candidates, scores and erasure."""
    photos = fr_dir / "identities"
    enrol = [
        ("311100000001", photos / "kit_harington/john1.jpeg"),
        ("311100000002", photos / "biden/biden.jpg"),
        ("311100000003", photos / "obama/obama.jpg"),
        ("311100000004", photos / "kit_harington/john2.jpeg"),
    ]
    query = (photos / "kit_harington/johnsnow_test1.jpg").read_bytes()
    answers = {}
    for name, backend in (("local", "shared"), ("sharded", "ray:local?shards=2")):
        db_url = f"sqlite:///{tmp_path / f'{name}.db'}"
        engine = make_engine(db_url)
        migrate(engine)
        with session_factory(engine)() as s:
            key = create_key(s, "test-admin", "admin")[1]
        engine.dispose()
        env = {
            "BIOMETRIC_DATABASE_URL": db_url,
            "BIOMETRIC_INDEX_DIR": str(tmp_path / f"{name}-index"),
            "BIOMETRIC_INDEX": backend,
            "BIOMETRIC_VERIFY_WORKERS": "0",
            "BIOMETRIC_THREAD_POOL_SIZE": "1",
        }
        seen = []
        with running_server(env, timeout_s=240) as url, httpx.Client(
            base_url=url, headers={"X-API-Key": key}, timeout=120
        ) as c:
            for citizen_id, photo in enrol:
                r = c.post("/v1/claimants", data={"citizen_id": citizen_id},
                           files={"photo": (photo.name, photo.read_bytes())})
                assert r.status_code == 201, r.text
                found = r.json()["candidates"]
                seen.append([(x["citizen_id"], round(x["score"], 3)) for x in found])

            def search() -> list:
                r = c.post("/v1/search", files={"photo": ("q.jpg", query)})
                assert r.status_code == 200, r.text
                return [(x["citizen_id"], round(x["score"], 3)) for x in r.json()["candidates"]]

            seen.append(search())
            assert c.delete("/v1/claimants/311100000001").json()["templates_removed"] == 1
            seen.append(search())
        answers[name] = seen
    assert answers["local"][-2][0][0] in {"311100000001", "311100000004"}
    assert all(cid != "311100000001" for cid, _ in answers["local"][-1])
    assert answers["sharded"] == answers["local"]
