"""``python -m benchmarks scale``: the national-scale path on Ray, measured on this machine.

1. Bulk enrolment throughput of the Ray Data job (real yaleb_moderate photos), 1 and 2 workers.
2. Thresholds at scale: expected false candidates per search and per self-join at 1M/10M/100M
   for each embedder, from the impostor tail measured on lfw_dev (benchmarks/scale_thresholds.py).
3. Sharded (S Ray actors) against unsharded search: latency and recall@10 on SYNTHETIC templates
   (benchmarks/index_bench.clustered_templates; 1M, 50k in --quick).
4. The 100M capacity model computed from those measurements (nodes, memory per shard, CPU-hours
   of enrolment and self-join, online 1:N p99), every figure with the measurement it comes from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common, scale_thresholds
from benchmarks.index_bench import (
    ID_TABLE_BYTES,
    K,
    clustered_templates,
    latencies_ms,
    load_average,
    recall_at_k,
    serialized_bytes,
)
from benchmarks.markdown import f, load_text, plots, source_line, table
from biometric.distributed.enrol_job import EnrolJobConfig, run_enrol_job
from biometric.distributed.runtime import RayTarget, connect
from biometric.distributed.shards import ShardedIndex
from biometric.distributed.source import SourceRow
from biometric.evaluation import discover_sets, pair_scores
from biometric.index import FaceIndex, IndexSpec, set_num_threads
from biometric.manifest import load_manifest

CAP = 10  # photos per person, as in calibration and the accuracy benchmark
RAY_CPUS = 2  # this machine's cores
ENROL_PHOTOS = {False: 458, True: 24}  # real photos per enrolment run (all of yaleb_moderate)
ENROL_ORDER = (1, 2, 2, 1)
SYNTHETIC_N = {False: 1_000_000, True: 50_000}
QUERIES = {False: 1_000, True: 200}
BENCH_SHARDS = 4
# The index kind of the sharded comparison. IVF-SQ8 is the lean kind a national gallery needs
# (about 13 GB for 100M 128-d templates instead of ~50 GB) and it builds 4x faster than HNSW at
# 1M on this machine (index-2026-11-23.json: 117 s against 473 s), which the shared 2 cores need.
BENCH_KIND = "ivf_sq8"
# Capacity-model assumptions (not measurements), stated in the report:
TARGET_N = 100_000_000
NODE_CPUS, NODE_GIB = 16, 128  # a common cloud node
INDEX_RAM_SHARE = 0.6  # of a node's memory for shard indexes (the rest: OS, Ray, object store)
SHARD_GIB = 8.0  # at most per shard actor: a restart rebuilds it from the store in minutes
ENROL_DAYS = 7  # the national enrolment run


def enrol_throughput(quick: bool) -> dict:
    # yaleb_moderate: portrait-like crops the chip acquisition takes (97 % acquired in the
    # accuracy benchmark), so the run times real enrolments, not failed detections.
    yale = {s.name: s for s in discover_sets(common.data_dir())}["yaleb_moderate"]
    photos = yale.images[:: max(1, len(yale.images) // ENROL_PHOTOS[quick])][: ENROL_PHOTOS[quick]]
    rows = [SourceRow(f"{880000000000 + i:012d}", str(p)) for i, p in enumerate(photos)]
    with tempfile.TemporaryDirectory(prefix="scale-warm-") as tmp:
        # Ray Data's first run in a session starts its worker processes: not part of the figure.
        warm = EnrolJobConfig(Path(tmp), workers=2, target=RayTarget(num_cpus=RAY_CPUS))
        run_enrol_job(rows[:4], warm)
    runs = []
    # 1, 2, 2, 1: a drift in the machine's load over the runs weighs on both settings alike.
    for workers in ENROL_ORDER:
        with tempfile.TemporaryDirectory(prefix="scale-enrol-") as tmp:
            cfg = EnrolJobConfig(
                Path(tmp), workers=workers, batch_size=8, target=RayTarget(num_cpus=RAY_CPUS)
            )
            load_before = load_average()
            cpu0 = time.process_time()
            arrivals: list[tuple[float, int]] = []  # (time, rows) as results reach the driver
            result = run_enrol_job(
                rows, cfg, advance=lambda n, a=arrivals: a.append((time.perf_counter(), n))
            )
            # Steady state: from the first result to the last, past the actors' start-up.
            first_t = arrivals[0][0]
            after_first = sum(n for t, n in arrivals if t > first_t)
            steady_s = arrivals[-1][0] - first_t
            runs.append(
                {
                    "workers": workers,
                    "photos": len(rows),
                    "enrolled": result.enrolled,
                    "failed": result.failed,
                    "wall_s": result.wall_s,
                    "photos_per_s": round(len(rows) / result.wall_s, 3),
                    "steady_photos_per_s": round(after_first / steady_s, 3) if steady_s else None,
                    "worker_cpu_s": result.worker_cpu_s,
                    "worker_cpu_ms_per_photo": round(1000 * result.worker_cpu_s / len(rows), 2),
                    "driver_cpu_s": round(time.process_time() - cpu0, 3),
                    "load_average_before": load_before,
                }
            )
    by_workers = {}
    for w in sorted(set(ENROL_ORDER)):
        mine = [r for r in runs if r["workers"] == w]
        by_workers[str(w)] = {
            "photos_per_s": round(
                sum(r["photos"] for r in mine) / sum(r["wall_s"] for r in mine), 3
            ),
            "worker_cpu_ms_per_photo": round(
                float(np.mean([r["worker_cpu_ms_per_photo"] for r in mine])), 2
            ),
            "steady_photos_per_s": round(
                float(np.mean([r["steady_photos_per_s"] or np.nan for r in mine])), 3
            ),
            "cores_used_steady": round(
                float(
                    np.mean(
                        [
                            (r["steady_photos_per_s"] or np.nan) * r["worker_cpu_ms_per_photo"]
                            for r in mine
                        ]
                    )
                )
                / 1000,
                2,
            ),
        }
    return {
        "source": "yaleb_moderate (real photos), evenly spread over the set",
        "runs": runs,
        "by_workers": by_workers,
        "ratio_2_to_1": round(by_workers["2"]["photos_per_s"] / by_workers["1"]["photos_per_s"], 3),
        "steady_ratio_2_to_1": round(
            by_workers["2"]["steady_photos_per_s"] / by_workers["1"]["steady_photos_per_s"], 3
        ),
        "note": "wall time includes starting the actors (each loads the ONNX models once); "
        "'steady' counts from the first result to the last, past that start-up. The machine's "
        "2 cores are shared with other users (load average recorded), so a second worker gets "
        "only what they leave: 'cores used' (steady photos/s x worker CPU per photo) shows how "
        "much CPU each setting actually got, and CPU per photo that a photo costs the same with "
        "1 and 2 workers",
    }


def thresholds(quick: bool, cache_dir: Path | None) -> dict:
    """The single embedders' impostor tails on lfw_dev (the 1:N gallery searches with one
    embedder: the default's, or the fusion's first), through the shipped acquisition, at most
    10 photos per person as in calibration (the embeddings are shared with the accuracy
    benchmark's cache)."""
    from biometric.evaluation import acquire_sets

    manifest = load_manifest(common.REPO_ROOT / "models")
    lfw = next(s for s in discover_sets(common.data_dir(), CAP) if s.name == "lfw_dev")
    if quick:
        lfw = dataclasses.replace(lfw, images=lfw.images[:300], labels=lfw.labels[:300])
    names = [e.name for e in manifest.models if e.role == "embedder"]
    pipeline = common.make_pipeline(threads=1, embedder=names[0])
    with common.progress_bar("acquiring lfw_dev", len(lfw.images)) as step:
        acq = acquire_sets([lfw], names, pipeline, cache_dir=cache_dir, progress=step)[0]
    gallery_embedder = manifest.primary_embedder
    out = []
    for entry in manifest.models:
        if entry.name not in names:
            continue
        scores = pair_scores([acq.embedded(entry.name)])
        points = [(t.fmr, t.threshold) for t in entry.thresholds]
        out.append(
            scale_thresholds.analyse_embedder(entry.name, scores.genuine, scores.impostor, points)
            | {
                "default": entry.name == gallery_embedder,
                "failure_to_acquire": acq.failure_to_acquire,
                "calibrated_on": sorted({d for t in entry.thresholds for d in t.datasets}),
            }
        )
    return {
        "set": "lfw_dev" + (" (first 300 photos: quick)" if quick else "") + f", cap {CAP}",
        "acquisition": "the shipped acquisition (biometric.acquire)",
        "assumptions": scale_thresholds.assumptions(),
        "embedders": out,
    }


def _cpu_per_query(index: FaceIndex, queries: np.ndarray) -> float:
    set_num_threads(1)
    t0 = time.thread_time()
    index.search(queries, K)
    return (time.thread_time() - t0) / len(queries)


def sharded_search(quick: bool) -> dict:
    manifest = load_manifest(common.REPO_ROOT / "models")
    dim = manifest.embedder_spec().embedding_size
    n, q = SYNTHETIC_N[quick], QUERIES[quick]
    data, _ = clustered_templates(n + q, dim, seed=0)
    x, queries = data[:n], data[n:]
    ids = np.arange(n, dtype=np.int64)
    import faiss

    exact = faiss.IndexFlatIP(dim)
    exact.add(x)
    _, truth = exact.search(queries, K)
    del exact

    t0, c0 = time.perf_counter(), time.process_time()
    single = FaceIndex.build(ids, x, IndexSpec.for_size(BENCH_KIND, dim, n))
    build = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    _, found = single.search(queries, K)
    unsharded = {
        "templates": n,
        "spec": single.spec.to_dict(),
        "build": build,
        "recall_at_10": recall_at_k(found, truth),
        "latency": latencies_ms(single, queries, threads=1),
        "cpu_ms_per_query": 1000 * _cpu_per_query(single, queries),
        "bytes_per_template": serialized_bytes(single) / n + ID_TABLE_BYTES,
    }
    del single

    from biometric.distributed.source import shard_of

    owner = np.array([shard_of(f"{i:012d}", BENCH_SHARDS) for i in range(n)])
    parts = [(ids[owner == s], x[owner == s]) for s in range(BENCH_SHARDS)]
    t0 = time.perf_counter()
    index = ShardedIndex(None, "synthetic", dim, BENCH_SHARDS, BENCH_KIND, templates=parts)
    info = index.info()
    build_s = time.perf_counter() - t0
    del parts
    try:
        found = np.vstack([index.search(row[None], K, sync=False)[1] for row in queries])
        times = []
        for row in queries:
            t1 = time.perf_counter()
            index.search(row[None], K, sync=False)
            times.append((time.perf_counter() - t1) * 1000)
        import ray

        shard_cpu = ray.get(index.actors[0].search_cost.remote(queries, K))
    finally:
        index.shutdown()
    ms = np.array(times)
    sharded = {
        "shards": BENCH_SHARDS,
        "templates_per_shard": [i["templates"] for i in info],
        "kind_per_shard": sorted({i["kind"] for i in info}),
        "build_wall_s": build_s,
        "recall_at_10": recall_at_k(found, truth),
        "latency": {
            "queries": len(ms),
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()),
        },
        "cpu_ms_per_query_one_shard": 1000 * shard_cpu,
    }
    return {
        "data": "SYNTHETIC templates (benchmarks/index_bench.clustered_templates, seed 0): "
        "latency and recall only, no accuracy claim",
        "dim": dim,
        "kind": BENCH_KIND,
        "queries": q,
        "unsharded": unsharded,
        "sharded": sharded,
    }


def capacity_model(enrol: dict, search: dict, n: int = TARGET_N) -> dict:
    """The 100M plan from the measurements above; the scaling rules are stated with it."""
    cpu_ms_photo = enrol["by_workers"]["1"]["worker_cpu_ms_per_photo"]
    enrol_cpu_h = n * cpu_ms_photo / 3.6e6
    bytes_t = search["unsharded"]["bytes_per_template"]
    total_gib = n * bytes_t / 2**30
    shards = max(1, math.ceil(total_gib / SHARD_GIB))
    nodes_memory = math.ceil(total_gib / (NODE_GIB * INDEX_RAM_SHARE))
    nodes_enrol = math.ceil(enrol_cpu_h / (ENROL_DAYS * 24 * NODE_CPUS))
    nodes = max(nodes_memory, nodes_enrol, 1)
    shards = max(shards, nodes)
    shards = math.ceil(shards / nodes) * nodes  # the same number on every node
    # Query cost per shard grows with shard size; the exponent comes from the two sizes measured
    # (whole index at N, one shard at N/S): a fitted extrapolation.
    bench_n = search["unsharded"]["templates"]
    s_bench = search["sharded"]["shards"]
    c_full = search["unsharded"]["cpu_ms_per_query"]
    c_shard = search["sharded"]["cpu_ms_per_query_one_shard"]
    alpha = math.log(c_full / c_shard) / math.log(s_bench) if c_full > c_shard else 1.0
    per_shard_n = n / shards
    c_target = c_shard * (per_shard_n / (bench_n / s_bench)) ** alpha
    join_cpu_h = n * shards * c_target / 3.6e6
    lat = search["unsharded"]["latency"]
    tail = lat["p99_ms"] / max(lat["mean_ms"], 1e-9)
    overhead = max(0.0, search["sharded"]["latency"]["p99_ms"] - c_shard * tail)
    p99 = overhead + c_target * tail
    return {
        "templates": n,
        "assumptions": {
            "node": f"{NODE_CPUS} vCPU, {NODE_GIB} GiB",
            "index_ram_share": INDEX_RAM_SHARE,
            "max_gib_per_shard": SHARD_GIB,
            "enrolment_days": ENROL_DAYS,
            "index_kind": search["kind"],
        },
        "nodes": nodes,
        "nodes_for_memory": nodes_memory,
        "nodes_for_enrolment_in_days": nodes_enrol,
        "shards": shards,
        "templates_per_shard": round(per_shard_n),
        "bytes_per_template": round(bytes_t, 1),
        "index_gib_total": round(total_gib, 1),
        "gib_per_shard": round(total_gib / shards, 2),
        "enrolment_cpu_hours": round(enrol_cpu_h, 1),
        "enrolment_wall_hours_on_nodes": round(enrol_cpu_h / (nodes * NODE_CPUS), 1),
        "self_join_cpu_hours": round(join_cpu_h, 1),
        "self_join_wall_hours_on_nodes": round(join_cpu_h / (nodes * NODE_CPUS), 1),
        "online_p99_ms": round(p99, 2),
        "sources": {
            "enrolment": "worker CPU per photo, 1-worker run on real photos (measured)",
            "memory": "serialized index bytes per template + id tables, measured on the "
            f"{bench_n:,} synthetic templates",
            "self_join": f"CPU per query per shard measured at {bench_n // s_bench:,} templates, "
            f"scaled to {round(per_shard_n):,} by size^{alpha:.2f} (exponent fitted between "
            f"{bench_n // s_bench:,} and {bench_n:,}: EXTRAPOLATION); k={K} neighbours, every "
            "template queries every shard",
            "online_p99": "Ray fan-out overhead measured (sharded p99 minus one shard's p99) + "
            "one shard's query at its 100M size (EXTRAPOLATION as above); shards searched in "
            "parallel",
        },
        "scale_exponent": round(alpha, 3),
    }


def plot(report: dict, path: Path) -> Path:
    plt = common._pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for e in report["thresholds"]["embedders"]:
        fit = e["tail_fit"]
        ts = np.linspace(fit["fitted_above_score"], e["max_impostor_score"] + 0.15, 50)
        ax1.plot(
            ts,
            fit["log10_fmr_intercept"] + fit["log10_fmr_slope"] * ts,
            label=f"{e['embedder']} tail fit (extrapolated past "
            f"FMR {e['smallest_measured_fmr']:.1e})",
        )
        keep = e["recommended"]["keep_90_percent_of_duplicates"]
        points = [("keeps 90% of duplicates", keep["threshold"], keep["fmr"])] + [
            (use, r["threshold"], r["target_fmr"])
            for use, r in e["recommended"].items()
            if r.get("reachable")
        ]
        for label, threshold, fmr in points:
            ax1.scatter([threshold], [math.log10(fmr)], marker="x")
            ax1.annotate(f"{e['embedder']} {label}", (threshold, math.log10(fmr)), fontsize=7)
    ax1.axvline(1.0, linestyle=":", color="grey")  # no cosine threshold lies beyond 1.0
    ax1.set_xlabel("threshold (cosine)")
    ax1.set_ylabel("log10 FMR per comparison")
    ax1.set_title("Impostor tail on lfw_dev and operating points at 100M")
    ax1.legend(fontsize=7)
    s = report["sharded_search"]
    names = ["unsharded", f"{s['sharded']['shards']} shards (Ray)"]
    p50 = [s["unsharded"]["latency"]["p50_ms"], s["sharded"]["latency"]["p50_ms"]]
    p99 = [s["unsharded"]["latency"]["p99_ms"], s["sharded"]["latency"]["p99_ms"]]
    pos = np.arange(2)
    ax2.bar(pos - 0.2, p50, 0.4, label="p50")
    ax2.bar(pos + 0.2, p99, 0.4, label="p99")
    ax2.set_xticks(pos, names)
    ax2.set_ylabel("ms per query")
    ax2.set_title(f"1:N search, {s['unsharded']['templates']:,} SYNTHETIC templates ({s['kind']})")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


STAGES = ("enrolment", "sharded_search", "thresholds")


def run(
    quick: bool,
    out_dir: Path,
    cache_dir: Path | None = common.EMBED_CACHE,
    only: str | None = None,
) -> dict:
    """All stages; with ``only``, that stage again on top of today's result (the others kept),
    e.g. the thresholds after a recalibration without re-timing the 1M search."""
    started, cpu0 = time.perf_counter(), time.process_time()
    report: dict = {"settings": {"quick": quick, "ray_cpus": RAY_CPUS, "k": K}}
    if only is not None:
        previous = common.result_path(out_dir, "scale", quick)
        if only not in STAGES or not previous.is_file():
            raise SystemExit(f"--only takes one of {STAGES} and needs {previous}")
        report = json.loads(previous.read_text())
        report.setdefault("reruns", []).append({"stage": only, "at": common.today()})
    stages = {
        "enrolment": lambda: enrol_throughput(quick),
        "sharded_search": lambda: sharded_search(quick),
        "thresholds": lambda: thresholds(quick, cache_dir),
    }
    if only != "thresholds":
        connect(RayTarget(num_cpus=RAY_CPUS))
    todo = [only] if only else list(STAGES)
    with common.progress_bar("scale benchmark", len(todo)) as step:
        for stage in todo:
            report[stage] = stages[stage]()
            step(1)
    report["capacity_100m"] = capacity_model(report["enrolment"], report["sharded_search"])
    report["run" if only is None else f"run_{only}"] = {
        "wall_s": round(time.perf_counter() - started, 1),
        "driver_cpu_s": round(time.process_time() - cpu0, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    png = common.result_path(out_dir, "scale", quick).with_suffix(".png")
    common.write_result(out_dir, "scale", report)  # the figures are kept even if a plot fails
    report["plots"] = [plot(report, png).name]
    common.write_result(out_dir, "scale", report)
    e = report["enrolment"]
    common.print_table(
        "Bulk enrolment (Ray Data, real photos)",
        ["workers", "photos", "wall s", "photos/s", "worker CPU ms/photo"],
        [
            [
                r["workers"],
                r["photos"],
                r["wall_s"],
                r["photos_per_s"],
                r["worker_cpu_ms_per_photo"],
            ]
            for r in e["runs"]
        ],
    )
    cap = report["capacity_100m"]
    common.print_table(
        "100M capacity model",
        ["figure", "value"],
        [[k, v] for k, v in cap.items() if not isinstance(v, dict)],
    )
    return report


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def section(path: Path, doc: dict) -> list[str]:
    out = ["## National scale on Ray", "", source_line(path, doc), ""]
    e = doc["enrolment"]
    out.append(
        f"**Bulk enrolment** (`biometric enrol-bulk`, Ray Data actor pool, {e['source']}). "
        f"Throughput with 2 workers over 1 (all runs of each): **{f(e['ratio_2_to_1'])}x** "
        f"wall-clock, **{f(e.get('steady_ratio_2_to_1'))}x** steady state "
        f"("
        + ", ".join(
            f"{w} worker(s) {f(b['photos_per_s'])} photos/s, "
            f"{f(b['worker_cpu_ms_per_photo'])} CPU ms/photo, "
            f"{f(b.get('cores_used_steady'))} cores used"
            for w, b in e["by_workers"].items()
        )
        + f"). {e['note']}. Runs in order:"
    )
    out.append("")
    out += table(
        [
            "workers",
            "photos",
            "failed",
            "wall s",
            "photos/s",
            "steady photos/s",
            "worker CPU s",
            "CPU ms/photo",
            "driver CPU s",
            "load avg before",
        ],
        [
            [
                r["workers"],
                r["photos"],
                r["failed"],
                r["wall_s"],
                r["photos_per_s"],
                r.get("steady_photos_per_s"),
                r["worker_cpu_s"],
                r["worker_cpu_ms_per_photo"],
                r["driver_cpu_s"],
                load_text(r["load_average_before"]),
            ]
            for r in e["runs"]
        ],
    )
    t = doc["thresholds"]
    a = t["assumptions"]
    out.append(
        f"**Thresholds at scale**, from the impostor tail measured on {t['set']} (real photos). "
        "FMR is *measured* while at least 10 impostor pairs score at or above the threshold, "
        "otherwise *extrapolated* from an exponential fit to the top 0.1 % of impostor scores. "
        "Expected false candidates: per 1:N search FMR x N (before the top-k cut: a ranked "
        "list shows at most k), per self-join FMR x N(N-1)/2."
    )
    out.append("")
    rows = []
    for emb in t["embedders"]:
        for p in emb["operating_points"]:
            ef = p["expected_false"]
            rows.append(
                [
                    f"`{emb['embedder']}`" + (" (default)" if emb.get("default") else ""),
                    p["calibrated_fmr"],
                    p["threshold"],
                    p["fmr_on_lfw_dev"],
                    p["fmr_source"],
                    p["genuine_accept_rate"],
                ]
                + [ef[n]["per_search"] for n in ef]
                + [ef[n]["per_self_join"] for n in ef]
            )
    sizes = list(t["embedders"][0]["operating_points"][0]["expected_false"]) if rows else []
    label = {"1000000": "1M", "10000000": "10M", "100000000": "100M"}
    out += table(
        ["embedder", "manifest FMR", "threshold", "FMR on lfw_dev", "FMR is", "genuine accept"]
        + [f"per search {label.get(n, n)}" for n in sizes]
        + [f"per self-join {label.get(n, n)}" for n in sizes],
        rows,
    )
    out.append(
        f"**Recommended operating points at 100M** for {a['reviewer_cases_per_day']:,} review "
        f"cases a day ({a['online_share_of_reviewers']:.0%} online, "
        f"{a['online_searches_per_day']:,} searches a day; the rest for the one-off self-join "
        f"reviewed over {a['self_join_review_days']} days). {a['note']}."
    )
    out.append("")
    rows = []
    for emb in t["embedders"]:
        for use in ("online_search", "self_join"):
            r = emb["recommended"][use]
            rows.append(
                [
                    f"`{emb['embedder']}`",
                    use,
                    r["target_fmr"],
                    r["false_cases_budget"],
                    r["threshold"] if r["reachable"] else "unreachable (> 1.0)",
                    r["threshold_source"],
                    r["genuine_accept_rate"],
                ]
            )
    out += table(
        [
            "embedder",
            "use",
            "FMR per comparison",
            "false cases budget",
            "threshold",
            "threshold is",
            "genuine accept (lfw_dev)",
        ],
        rows,
    )
    out.append(
        f"What keeping {a.get('keep_genuine', 0.9):.0%} of true duplicates (threshold at that "
        f"genuine quantile on lfw_dev) costs at 100M, with ranked lists of at most "
        f"{a.get('top_k', 10)} candidates:"
    )
    out.append("")
    rows = []
    for emb in t["embedders"]:
        r = emb["recommended"]["keep_90_percent_of_duplicates"]
        rows.append(
            [
                f"`{emb['embedder']}`",
                r["threshold"],
                r["fmr"],
                r["fmr_source"],
                r["false_candidates_per_search"],
                r["online_cases_per_day"],
                r["self_join_false_pairs"],
                r.get("largest_block_within_budget"),
            ]
        )
    out += table(
        [
            "embedder",
            "threshold",
            "FMR",
            "FMR is",
            "false candidates per search",
            "online cases a day (top-k capped)",
            "self-join false pairs",
            "largest block within the online budget",
        ],
        rows,
    )
    review = [(e["embedder"], r) for e in t["embedders"] for r in e.get("review_load", [])]
    if review:
        out.append(
            f"**Review load at 100M** as ranked lists of at most {a.get('top_k', 10)} "
            f"candidates, {a['online_searches_per_day']:,} enrolments screened a day, "
            f"{a.get('cases_per_reviewer_day', 50)} cases per reviewer-day:"
        )
        out.append("")
        out += table(
            ["embedder", "operating point", "threshold", "FMR", "FMR is", "genuine accept",
             "false per search", "shown per search (top-k)", "searches with one",
             "false a day", "reviewer-days a day"],
            [[f"`{name}`", r["operating_point"], r["threshold"], r["fmr"], r["fmr_source"],
              r["genuine_accept_rate"], r["false_candidates_per_search"],
              r["shown_per_search_top_k"], r["searches_with_a_false_candidate"],
              r["false_candidates_per_day"], r["reviewer_days_per_day"]]
             for name, r in review],
        )
    s = doc["sharded_search"]
    out.append(
        f"**Sharded vs unsharded 1:N search** on {s['unsharded']['templates']:,} {s['data']}; "
        f"{s['dim']}-d, `{s['kind']}`, k=10, {s['queries']} single queries."
    )
    out.append("")
    u, sh = s["unsharded"], s["sharded"]
    out += table(
        ["index", "recall@10", "p50 ms", "p99 ms", "CPU ms/query (batch)", "build s"],
        [
            [
                "unsharded (in process)",
                u["recall_at_10"],
                u["latency"]["p50_ms"],
                u["latency"]["p99_ms"],
                u["cpu_ms_per_query"],
                u["build"]["wall_s"],
            ],
            [
                f"{sh['shards']} Ray shard actors",
                sh["recall_at_10"],
                sh["latency"]["p50_ms"],
                sh["latency"]["p99_ms"],
                sh["cpu_ms_per_query_one_shard"],
                sh["build_wall_s"],
            ],
        ],
    )
    c = doc["capacity_100m"]
    out.append(
        f"**Capacity model for {c['templates']:,} templates** (assumptions: "
        + ", ".join(f"{k} {v}" for k, v in c["assumptions"].items())
        + ")."
    )
    out.append("")
    out += table(
        ["capacity", "value"],
        [[k.replace("_", " "), v] for k, v in c.items() if not isinstance(v, dict)],
    )
    out += [f"- {k}: {v}" for k, v in c["sources"].items()]
    out.append("")
    return out + plots(doc)
