"""Online 1:N with one index per machine shared by the API workers, measured on SYNTHETIC
templates (clustered random unit vectors: the figures are about the mechanics -- latency,
memory, start-up, load rate -- not about faces).

Stages, per gallery size (default 1M and 10M, 128-d, ``ivf_sq8``):

1. ``load`` (1M only): the store filled by the bulk loader ``load-templates`` uses
   (:meth:`Gallery.enrol_new_bulk`: executemany on SQLite; COPY on PostgreSQL on a sample),
   in templates/s.
2. ``build``: the index built once and saved (1M: by the first gallery worker, from the store,
   as the API does at first start; 10M: directly from the generated vectors, no store).
3. ``workers``: two worker processes open the saved index mapped (1M: each a real gallery
   ``LocalSearcher`` over the store, as in two API workers; 10M: ``SharedIndex`` on the file),
   then search at the same time, one query at a time, one thread each. Each reports its
   start-up time, p50/p99, and its memory from ``/proc/self/status`` and ``smaps_rollup``:
   ``RssAnon`` (private to the worker) and ``RssFile`` (mapped file pages, shared through the
   page cache, counted in full in each worker's RSS), and ``Pss`` (shared pages divided
   among the processes that map them). One more worker loads the index into its own memory
   (the earlier behaviour) for comparison.
4. ``mates``: each query is a noisy copy (cosine ~0.75) of a stored template: the share whose
   source is in the top 10 says the searches found real neighbours.

Build runs once per size and is kept under ``var/bench/shared_index``. Run it alone in the
background: ``nohup python -m benchmarks.shared_index > var/bench/shared.log &``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import common

DIM = 128
K = 10
CHUNK = 250_000  # templates generated and added at a time
QUERIES = 2000
WORK = common.REPO_ROOT / "var" / "bench" / "shared_index"
MODEL = "synthetic128"


def chunk_templates(c: int) -> np.ndarray:
    """Chunk ``c`` of the synthetic gallery: 250k clustered unit templates (2 per identity on
    average), generated from seed ``c`` so that any chunk can be regenerated alone."""
    from benchmarks.index_bench import clustered_templates

    x, _ = clustered_templates(CHUNK, DIM, seed=1000 + c)
    return x


def queries(n: int, q: int = QUERIES) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of stored templates spread over the chunks, and their template ids."""
    rng = np.random.default_rng(7)
    chunks = n // CHUNK
    picks = np.sort(rng.choice(n, q, replace=False))
    out = np.empty((q, DIM), np.float32)
    for c in np.unique(picks // CHUNK)[: chunks]:
        rows = picks[picks // CHUNK == c] - c * CHUNK
        x = chunk_templates(int(c))[rows]
        out[np.flatnonzero(picks // CHUNK == c)] = x
    noise = rng.standard_normal(out.shape).astype(np.float32) * np.float32(0.9 / np.sqrt(DIM))
    out = out + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, picks.astype(np.int64) + 1  # template ids start at 1 (store row ids)


def spec_for(n: int):
    from biometric.index import IndexKind, IndexSpec

    spec = IndexSpec.for_size(IndexKind.IVF_SQ8, DIM, n)
    # 10M: for_size's 16384 lists would take about an hour of k-means and assignment on these
    # 2 shared cores; 1M's 4096 lists (trained on 40 points per list) keep the build to
    # minutes, at the cost of scanning more codes per query. nprobe from for_size's rule.
    nlist = min(spec.nlist, 4096)
    nprobe = max(8, round(0.75 * np.sqrt(nlist)))
    return replace(spec, nlist=nlist, nprobe=nprobe, max_train=40 * nlist)


# ------------------------------------------------------------------------------- the store
def store_url(n: int) -> str:
    return f"sqlite:///{WORK / f'store-{n}.db'}"


def fill_store(url: str, n: int) -> dict:
    """Bulk-load n synthetic templates; returns the rate."""
    from biometric.gallery.bulk import NewTemplate
    from biometric.gallery.service import Gallery, IndexBackend
    from biometric.store.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    gallery = Gallery(
        engine,
        IndexBackend("store").searcher(engine, MODEL, DIM, None),
        model=MODEL, model_version="synthetic", dim=DIM,
        duplicate_threshold=0.5, duplicate_fmr=1e-4,
    )
    already = gallery.template_count()
    started, cpu0 = time.perf_counter(), time.process_time()
    loaded = 0
    batch = 10_000
    for c in range(already // CHUNK, -(-n // CHUNK)):
        x = chunk_templates(c)
        for s in range(0, min(CHUNK, n - c * CHUNK), batch):
            first = c * CHUNK + s
            loaded += gallery.enrol_new_bulk(
                [NewTemplate(f"{first + i + 1:012d}", x[s + i], None) for i in range(batch)]
            )
    wall = time.perf_counter() - started
    engine.dispose()
    return {
        "backend": engine.url.get_backend_name(),
        "templates": loaded,
        "batch": batch,
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "templates_per_s": round(loaded / wall, 1) if wall else None,
        "note": "includes generating the synthetic vectors",
    }


def pg_rate(n: int = 100_000) -> dict:
    """COPY into PostgreSQL (a fresh schema of the local server's ``test`` database)."""
    import uuid

    import sqlalchemy as sa

    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        return fill_store(f"{base}?options=-csearch_path%3D{schema}", n)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# ------------------------------------------------------------------------------- the workers
WORKER = r"""
import json, os, sys, time
import numpy as np
from biometric.index import set_num_threads
mode, path, url, n, qfile, go = sys.argv[1:7]
set_num_threads(1)

def mem():
    out = {}
    for name in ("/proc/self/status", "/proc/self/smaps_rollup"):
        for line in open(name):
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "Pss", "Pss_Anon", "Pss_File"):
                out[key + "_mib"] = round(int(rest.split()[0]) / 1024, 1)
    return out

before = mem()
t0, c0 = time.perf_counter(), time.process_time()
if mode == "gallery":
    from pathlib import Path
    from biometric.gallery.local import LocalSearcher
    from biometric.index import IndexKind
    from biometric.store.db import make_engine, session_factory
    s = LocalSearcher(session_factory(make_engine(url)), "synthetic128", 128, Path(path),
                      shared=True, kind=IndexKind.IVF_SQ8)
    search = s.search
elif mode == "mapped":
    from biometric.index import SharedIndex
    s, _ = SharedIndex.open(path)
    search = s.search
else:  # "memory": the earlier behaviour, each worker its own copy
    from biometric.index import FaceIndex
    s, _ = FaceIndex.load(path)
    search = s.search
startup = time.perf_counter() - t0, time.process_time() - c0
q = np.load(qfile)
for row in q[:50]:
    search(row[None], 10)
opened = mem()
open(go + f".ready.{os.getpid()}", "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
lat = np.empty(len(q)); found = np.empty((len(q), 10), np.int64)
c1 = time.process_time()
for i, row in enumerate(q):
    t = time.perf_counter()
    _, ids = search(row[None], 10)
    lat[i] = time.perf_counter() - t
    found[i] = ids[0]
cpu = time.process_time() - c1
np.save(qfile + f".{os.getpid()}.found.npy", found)
print(json.dumps({"mode": mode, "startup_s": round(startup[0], 3),
    "startup_cpu_s": round(startup[1], 3), "before": before, "after_open": opened,
    "after_search": mem(), "p50_ms": round(float(np.percentile(lat, 50) * 1e3), 3),
    "p99_ms": round(float(np.percentile(lat, 99) * 1e3), 3),
    "mean_ms": round(float(lat.mean() * 1e3), 3), "cpu_ms_per_query": round(cpu / len(q) * 1e3, 3),
    "queries": len(q), "found_file": qfile + f".{os.getpid()}.found.npy"}))
"""


def run_workers(mode: str, path: Path, url: str, n: int, count: int, qfile: Path) -> list[dict]:
    go = WORK / f"go-{os.getpid()}-{mode}"
    go.unlink(missing_ok=True)
    procs = []
    for i in range(count):
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, mode, str(path), url, str(n), str(qfile), str(go)],
            stdout=subprocess.PIPE, cwd=common.REPO_ROOT,
        ))
        if mode == "gallery" and i == 0:
            # The first builds the file when there is none; the second then maps it (both
            # would wait on the file lock anyway: this keeps their start-up times apart).
            while not path.exists() and procs[0].poll() is None:
                time.sleep(0.5)
    # Each worker opens the index, warms up, writes <go>.ready.<pid> and waits for <go>.
    while len(list(WORK.glob(go.name + ".ready.*"))) < count:
        if any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError(f"a {mode} worker failed during start-up")
        time.sleep(0.2)
    go.touch()
    out = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in procs]
    go.unlink(missing_ok=True)
    for f in WORK.glob(go.name + ".ready.*"):
        f.unlink()
    return out


def mates_found(found_files: list[str], truth: np.ndarray) -> float:
    hits = [np.mean([t in row for t, row in zip(truth, np.load(f), strict=True)])
            for f in found_files]
    return round(float(min(hits)), 4)


def build_index(n: int, path: Path) -> dict:
    from biometric.index import FaceIndex

    spec = spec_for(n)
    index = FaceIndex(spec)
    started, cpu0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(3)
    per = -(-spec.max_train // (n // CHUNK))  # the training sample drawn from every chunk
    sample = np.concatenate(
        [chunk_templates(c)[rng.choice(CHUNK, per, replace=False)] for c in range(n // CHUNK)]
    )
    index.train_if_needed(sample, seed=0)
    del sample
    trained = time.perf_counter() - started
    for c in range(n // CHUNK):
        index.add(np.arange(c * CHUNK, (c + 1) * CHUNK, dtype=np.int64) + 1, chunk_templates(c))
        print(f"  added {(c + 1) * CHUNK:,}", flush=True)
    index.save(path, 0)
    return {
        "spec": spec.to_dict(),
        "train_s": round(trained, 1),
        "build_wall_s": round(time.perf_counter() - started, 1),
        "build_cpu_s": round(time.process_time() - cpu0, 1),
        "file_bytes": path.stat().st_size,
    }


def measure(n: int, result: dict, save) -> None:  # type: ignore[no-untyped-def]
    path = WORK / f"index-{n}.faissidx"
    q, truth = queries(n)
    qfile = WORK / f"queries-{n}.npy"
    np.save(qfile, q)
    entry = result["sizes"].setdefault(str(n), {"n": n, "dim": DIM})
    if n <= 1_000_000:
        url = store_url(n)
        if "load_sqlite" not in entry:
            entry["load_sqlite"] = fill_store(url, n)
            save()
        if "load_postgresql" not in entry:
            entry["load_postgresql"] = pg_rate(100_000)
            save()
        if not path.exists():
            first = run_workers("gallery", path, url, n, 2, qfile)
            entry["first_start_from_store"] = first[0]["startup_s"]
            entry["first_start_cpu_s"] = first[0]["startup_cpu_s"]
            save()
        mode = "gallery"
    else:
        url = ""
        if not path.exists():
            entry["build"] = build_index(n, path)
            save()
        mode = "mapped"
    entry["file_bytes"] = path.stat().st_size
    entry["shared"] = run_workers(mode, path, url, n, 2, qfile)
    entry["memory_one_worker"] = run_workers("memory", path, url, n, 1, qfile)[0]
    files = [w.pop("found_file") for w in (*entry["shared"], entry["memory_one_worker"])]
    entry["mates_in_top10"] = mates_found(files, truth)
    for f in files:
        Path(f).unlink()
    save()
    if n > 1_000_000 and "recall_check" not in entry:
        entry["recall_check"] = recall_check(n)
        save()


def recall_check(n: int, n_queries: int = 300) -> dict:
    """The mapped index against exact search over every generated template (chunk by chunk),
    at the benchmark's nprobe and at 4x: recall@10, the share of queries whose source is in
    the top 10, latency (one worker alone)."""
    from biometric.index import SharedIndex, set_num_threads

    set_num_threads(1)
    q, truth = queries(n)
    q, truth = q[:n_queries], truth[:n_queries]
    best = np.full((len(q), K), -np.inf, np.float32)
    best_id = np.zeros((len(q), K), np.int64)
    for c in range(n // CHUNK):
        s = q @ chunk_templates(c).T
        top = np.argpartition(-s, K, axis=1)[:, :K]
        scores = np.concatenate([best, np.take_along_axis(s, top, 1)], 1)
        ids = np.concatenate([best_id, top + c * CHUNK + 1], 1)
        order = np.argsort(-scores, 1)[:, :K]
        best, best_id = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    index, _ = SharedIndex.open(WORK / f"index-{n}.faissidx")
    out: dict = {"queries": len(q), "exact_search_mates_in_top10": float(
        np.mean([t in r for t, r in zip(truth, best_id, strict=True)]))}
    for nprobe in (index.spec.nprobe, 4 * index.spec.nprobe):
        index.base.set_search_params(nprobe=nprobe)
        lat, found = [], []
        cpu0 = time.process_time()
        for row in q:
            t = time.perf_counter()
            found.append(index.search(row[None], K)[1][0])
            lat.append(time.perf_counter() - t)
        out[f"nprobe_{nprobe}"] = {
            "recall_at_10_vs_exact": round(float(np.mean(
                [len(np.intersect1d(f, b)) / K for f, b in zip(found, best_id, strict=True)])), 4),
            "mates_in_top10": round(float(np.mean(
                [t in f for t, f in zip(truth, found, strict=True)])), 4),
            "p50_ms": round(float(np.percentile(lat, 50) * 1e3), 3),
            "p99_ms": round(float(np.percentile(lat, 99) * 1e3), 3),
            "cpu_ms_per_query": round((time.process_time() - cpu0) / len(q) * 1e3, 3),
        }
    return out


def plot(result: dict, path: Path) -> Path:
    plt = common._pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = sorted(result["sizes"].values(), key=lambda e: e["n"])
    labels = [f"{e['n'] / 1e6:g}M" for e in sizes if "shared" in e]
    xs = np.arange(len(labels))
    done = [e for e in sizes if "shared" in e]
    for i, key in enumerate(("p50_ms", "p99_ms")):
        a1.bar(xs + 0.4 * i, [max(w[key] for w in e["shared"]) for e in done], 0.4, label=key)
    a1.set_xticks(xs + 0.2, labels)
    a1.set_ylabel("ms per 1:N search (2 workers at once)")
    a1.legend()
    anon = [max(w["after_search"]["RssAnon_mib"] for w in e["shared"]) for e in done]
    own = [e["memory_one_worker"]["after_search"]["RssAnon_mib"] for e in done]
    a2.bar(xs, anon, 0.4, label="shared (mapped): private per worker")
    a2.bar(xs + 0.4, own, 0.4, label="own copy per worker")
    a2.set_xticks(xs + 0.2, labels)
    a2.set_ylabel("RssAnon per worker (MiB)")
    a2.legend(fontsize=8)
    fig.suptitle("Shared index: SYNTHETIC 128-d templates, ivf_sq8")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def section(path: Path, doc: dict) -> list[str]:
    """The BENCHMARKS.md section of this benchmark (rendered by benchmarks.report)."""
    from benchmarks.report import source_line, table

    out = ["## Shared index: online 1:N per worker at 1M and 10M (synthetic)", "",
           source_line(path, doc), "",
           "SYNTHETIC clustered 128-d templates (mechanics, not accuracy). Two worker "
           "processes map one saved `ivf_sq8` file and search at the same time, one query at "
           "a time on one thread each; `RssFile` pages are the mapped index, shared through "
           "the page cache; `RssAnon` is private to each worker. 'Own copy' is one worker "
           "that loads the file into its own memory (the earlier behaviour).", ""]
    rows = []
    for e in sorted(doc["sizes"].values(), key=lambda e: e["n"]):
        if "shared" not in e:
            continue
        own = e["memory_one_worker"]
        for i, w in enumerate(e["shared"]):
            a = w["after_search"]
            rows.append([f"{e['n']:,}", f"shared #{i + 1}", w["startup_s"], w["p50_ms"],
                         w["p99_ms"], w["cpu_ms_per_query"], a["RssAnon_mib"],
                         a["RssFile_mib"], a["Pss_mib"], e["mates_in_top10"]])
        a = own["after_search"]
        rows.append([f"{e['n']:,}", "own copy", own["startup_s"], own["p50_ms"], own["p99_ms"],
                     own["cpu_ms_per_query"], a["RssAnon_mib"], a["RssFile_mib"], a["Pss_mib"],
                     e["mates_in_top10"]])
    out += table(["templates", "worker", "start-up s", "p50 ms", "p99 ms", "CPU ms/query",
                  "RssAnon MiB", "RssFile MiB", "Pss MiB", "mates in top 10"], rows)
    checks = [(e["n"], e["recall_check"]) for e in doc["sizes"].values() if "recall_check" in e]
    for n, c in checks:
        out += ["", f"Recall check at {n:,} ({c['queries']} of the queries against exact search "
                f"over all {n:,}; one worker, mapped): a noisy copy's source is in the exact "
                f"top 10 for {c['exact_search_mates_in_top10']:.1%} of queries.", ""]
        out += table(["nprobe", "recall@10 vs exact", "mates in top 10", "p50 ms", "p99 ms",
                      "CPU ms/query"],
                     [[k.removeprefix("nprobe_"), v["recall_at_10_vs_exact"], v["mates_in_top10"],
                       v["p50_ms"], v["p99_ms"], v["cpu_ms_per_query"]]
                      for k, v in c.items() if k.startswith("nprobe_")])
    loads = []
    for e in doc["sizes"].values():
        for key in ("load_sqlite", "load_postgresql"):
            if key in e:
                r = e[key]
                loads.append([r["backend"], f"{r['templates']:,}", r["batch"], r["wall_s"],
                              r["cpu_s"], r["templates_per_s"]])
    if loads:
        out += ["", "Bulk load (`load-templates` path: COPY on PostgreSQL, executemany on "
                "SQLite; one transaction per batch with its change-log rows):", ""]
        out += table(["store", "templates", "batch", "wall s", "CPU s", "templates/s"], loads)
    other = [[f"{e['n']:,}", e.get("file_bytes"), e.get("first_start_from_store"),
              (e.get("build") or {}).get("build_wall_s")]
             for e in sorted(doc["sizes"].values(), key=lambda e: e["n"])]
    out += ["", "", *table(["templates", "index file bytes", "first start, build from store s",
                             "build from vectors s"], other)]
    return [*out, "", *[f"![{p}]({p})" for p in doc.get("plots", [])], ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_OUT)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    state = WORK / "result.json"
    result = json.loads(state.read_text()) if state.exists() else {
        "benchmark": "shared_index", "synthetic": True, "sizes": {}}
    result["machine"] = common.machine_info()

    def save() -> None:
        state.write_text(json.dumps(result, indent=2))

    for n in (int(float(x)) for x in args.sizes.split(",")):
        measure(n, result, save)
    args.out.mkdir(parents=True, exist_ok=True)
    png = plot(result, args.out / f"shared_index-{common.today()}.png")
    result["plots"] = [str(png.relative_to(common.REPO_ROOT))]
    save()
    print(common.write_result(args.out, "shared_index", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
