"""Benchmark of the 1:N index kinds (biometric.index) on SYNTHETIC clustered templates.

What it measures, per gallery size and index kind (default spec from ``IndexSpec.for_size``):
build time, bytes per template (serialised faiss index + our id tables, and the process RSS
growth), single-query latency p50/p99 (batch 1, faiss threads 1 and 2), recall@10 against exact
search, and the time of the bulk self-join (k=10) that screens every template against all
others. It also sweeps the search parameter (efSearch / nprobe) for a latency-vs-recall plot.

The data are synthetic, so the figures say how the index behaves, not how well faces are
recognised; and recall against exact search depends on how clustered the data are (see
``clustered_templates``; ``--data hard`` removes the population structure). Accuracy claims
come only from real photos.

    python -m benchmarks.index_bench --quick            # CI: 10k templates, < 60 s
    python -m benchmarks.index_bench --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

try:
    from biometric.index import (
        FaceIndex,
        IndexKind,
        IndexSpec,
        default_kind_for,
        get_num_threads,
        set_num_threads,
    )
except ModuleNotFoundError:  # run as a script from a checkout: python benchmarks/index_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from biometric.index import (
        FaceIndex,
        IndexKind,
        IndexSpec,
        default_kind_for,
        get_num_threads,
        set_num_threads,
    )

import faiss

DIM = 192
K = 10
SELF_JOIN_THRESHOLD = 0.5  # about where genuine pairs start in these data (impostors < ~0.45)
SELF_JOIN_BATCH = 4096
TARGETS = {"p99_ms": 5.0, "recall_at_10": 0.99, "compressed_bytes": 300, "self_join_s": 900}

# Data presets: see clustered_templates.
DATA_PRESETS: dict[str, dict[str, float]] = {
    "clustered": {"group_weight": 0.8},
    "hard": {"group_weight": 0.0},
}


# --------------------------------------------------------------------------------------- data
def clustered_templates(
    n: int,
    dim: int = DIM,
    *,
    seed: int = 0,
    templates_per_identity: float = 2.0,
    group_weight: float = 0.8,
    noise: float = 0.65,
    spectrum: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic unit templates and their identity numbers.

    Three levels, like real face embeddings: population groups (think age, sex, origin,
    capture conditions; ``sqrt(identities)`` of them), identities around their group's centre,
    templates around their identity's centre. Group and identity offsets are anisotropic
    (variance of the i-th principal direction ~ i^-spectrum, about 116 effective dimensions out
    of 192), so the data are neither isotropic nor trivially low-dimensional. Identities get a
    Poisson number of templates (mean ``templates_per_identity``; many have one).

    With the defaults: genuine cosine ~0.70, impostor cosine mean ~0.00, std ~0.085, with a
    tail to ~0.42 at 1e-4 (where small face models put their FMR 1e-4 threshold); top-10
    neighbours of a query are its mates then impostors around 0.40-0.45. ``group_weight=0``
    ("hard") gives a thin, Gaussian impostor tail whose nearest impostors are nearly tied: far
    harder for any approximate index, and less like real faces.
    """
    rng = np.random.default_rng(seed)
    n_ids = max(1, round(n / templates_per_identity))
    n_groups = max(8, round(math.sqrt(n_ids)))
    scale = np.arange(1, dim + 1, dtype=np.float64) ** (-spectrum / 2)
    scale = (scale / np.linalg.norm(scale)).astype(np.float32)
    rot = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)

    def offsets(m: int) -> np.ndarray:
        return (rng.standard_normal((m, dim), dtype=np.float32) * scale) @ rot.T

    groups = offsets(n_groups)
    groups /= np.linalg.norm(groups, axis=1, keepdims=True)
    group_of = rng.integers(0, n_groups, size=n_ids)
    centres = np.empty((n_ids, dim), np.float32)
    step = 1 << 17
    for s in range(0, n_ids, step):
        e = min(n_ids, s + step)
        c = group_weight * groups[group_of[s:e]] + offsets(e - s)
        centres[s:e] = c / np.linalg.norm(c, axis=1, keepdims=True)
    identity = rng.integers(0, n_ids, size=n)
    out = np.empty((n, dim), np.float32)
    sigma = np.float32(noise / math.sqrt(dim))
    for s in range(0, n, step):
        e = min(n, s + step)
        t = centres[identity[s:e]] + rng.standard_normal((e - s, dim), dtype=np.float32) * sigma
        out[s:e] = t / np.linalg.norm(t, axis=1, keepdims=True)
    return out, identity


def score_stats(x: np.ndarray, identity: np.ndarray, q: np.ndarray, qid: np.ndarray) -> dict:
    """Genuine / impostor cosine statistics of queries against (part of) the gallery."""
    m = min(len(x), 50_000)
    s = q[:500] @ x[:m].T
    same = qid[:500, None] == identity[None, :m]
    imp = s[~same]
    return {
        "genuine_mean": round(float(s[same].mean()), 4) if same.any() else None,
        "impostor_mean": round(float(imp.mean()), 4),
        "impostor_std": round(float(imp.std()), 4),
        "impostor_q1e-4": round(float(np.quantile(imp, 1 - 1e-4)), 4),
    }


# --------------------------------------------------------------------------------------- probes
def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def release_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    with contextlib.suppress(ValueError, OSError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "load_average_at_start": load_average(),
    }


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def recall_above(found: np.ndarray, truth: np.ndarray, truth_scores: np.ndarray, t: float) -> float:
    """Recall of the exact neighbours scoring >= t (the pairs screening is after)."""
    want = total = 0
    for f, tr, ts in zip(found, truth, truth_scores, strict=True):
        strong = tr[ts >= t]
        total += len(strong)
        want += len(np.intersect1d(f, strong))
    return want / total if total else float("nan")


def latencies_ms(index: FaceIndex, queries: np.ndarray, threads: int, warmup: int = 20) -> dict:
    set_num_threads(threads)
    for row in queries[:warmup]:
        index.search(row[None], K)
    times = np.empty(len(queries))
    for i, row in enumerate(queries):
        t0 = time.perf_counter()
        index.search(row[None], K)
        times[i] = time.perf_counter() - t0
    ms = times * 1e3
    return {
        "threads": threads,
        "queries": len(queries),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
    }


def timed_self_join(index: FaceIndex, budget_s: float, threads: int) -> dict:
    """Run the k=10 self-join; stop early and extrapolate when the whole run would take more
    than ``budget_s`` (estimated from the first batches)."""
    set_num_threads(threads)
    n = len(index)
    done = 0
    pairs = 0
    t0 = time.perf_counter()
    extrapolated = False

    def progress(_phase: str, d: int, _total: int) -> None:
        nonlocal done
        done = d

    for ida, _, _ in index.iter_self_join(
        k=K, threshold=SELF_JOIN_THRESHOLD, batch_size=SELF_JOIN_BATCH, progress=progress
    ):
        pairs += len(ida)
        elapsed = time.perf_counter() - t0
        if done < n and elapsed > min(30.0, budget_s / 10) and elapsed / done * n > budget_s:
            extrapolated = True
            break
    # A batch with no pair above the threshold yields nothing: count those too.
    elapsed = time.perf_counter() - t0
    measured = max(done, 1)
    total_s = elapsed / measured * n if extrapolated else elapsed
    return {
        "seconds": round(total_s, 2),
        "extrapolated": extrapolated,
        "queries_measured": measured,
        "measured_seconds": round(elapsed, 2),
        "pairs_found": pairs if not extrapolated else None,
        "pairs_found_in_measured_part": pairs,
        "k": K,
        "threshold": SELF_JOIN_THRESHOLD,
        "batch_size": SELF_JOIN_BATCH,
        "threads": threads,
    }


def serialized_bytes(index: FaceIndex) -> int:
    return int(faiss.serialize_index(index.faiss_index).size)


# --quick trains the PQ codebooks on fewer points: training 96 sub-quantisers of 256 centroids
# is most of a quick run's time on 2 cores (recorded in the JSON with the spec).
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {"ivf_pq": {"max_train": 4096}}

# Extra id bookkeeping held by FaceIndex besides faiss: slot -> id (8 B) and id -> slot (16 B).
ID_TABLE_BYTES = 24


def sweep_values(kind: IndexKind, spec: IndexSpec, quick: bool) -> list[int]:
    if kind is IndexKind.HNSW:
        values = [16, 32, 64, 128, 256, 512]
    elif kind.is_ivf:
        values = sorted({v for v in (4, 8, 16, 32, 48, 64, 128, 256) if v <= spec.nlist})
    else:
        return []
    if quick:
        values = values[1::2]
    return values


def sweep(
    index: FaceIndex,
    queries: np.ndarray,
    truth: np.ndarray,
    truth_scores: np.ndarray,
    values: Iterable[int],
    n_latency: int,
) -> list[dict]:
    """Recall and single-query latency (1 thread) for a range of efSearch / nprobe."""
    base = index.spec
    param = "ef_search" if base.kind is IndexKind.HNSW else "nprobe"
    out = []
    for v in values:
        index.set_search_params(**{param: v})
        set_num_threads(2)
        _, found = index.search(queries, K)
        lat = latencies_ms(index, queries[:n_latency], threads=1, warmup=10)
        out.append(
            {
                param: v,
                "recall_at_10": round(recall_at_k(found, truth), 4),
                "recall_above_threshold": round(
                    recall_above(found, truth, truth_scores, SELF_JOIN_THRESHOLD), 4
                ),
                "p50_ms": lat["p50_ms"],
                "p99_ms": lat["p99_ms"],
            }
        )
    index.spec = base
    return out


# --------------------------------------------------------------------------------------- run
def bench_kind(
    kind: IndexKind,
    ids: np.ndarray,
    x: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    truth_scores: np.ndarray,
    *,
    quick: bool,
    n_latency: int,
    self_join_budget_s: float,
    log: Callable[[str], None],
    spec_overrides: dict[str, Any] | None = None,
) -> dict:
    n = len(x)
    spec = IndexSpec.for_size(kind, x.shape[1], n)
    if spec_overrides:
        spec = replace(spec, **spec_overrides)
    release_memory()
    rss0 = rss_bytes()
    load0 = load_average()
    phases: dict[str, float] = {}
    t_start = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        phases[phase] = time.perf_counter() - t_start
        if phase == "add" and done == total:
            log(f"    built {kind.value} in {phases[phase]:.1f} s")

    set_num_threads(2)
    index = FaceIndex.build(ids, x, spec, progress=progress)
    build_s = time.perf_counter() - t_start
    release_memory()
    rss_delta = rss_bytes() - rss0
    faiss_bytes = serialized_bytes(index)
    result: dict[str, Any] = {
        "kind": kind.value,
        "spec": spec.to_dict(),
        "build_s": round(build_s, 2),
        "train_s": round(phases.get("train", 0.0), 2),
        "faiss_bytes_per_template": round(faiss_bytes / n, 1),
        "bytes_per_template": round(faiss_bytes / n + ID_TABLE_BYTES, 1),
        "rss_bytes_per_template": round(rss_delta / n, 1),
    }
    set_num_threads(2)
    _, found = index.search(queries, K)
    result["recall_at_10"] = round(recall_at_k(found, truth), 4)
    result["recall_above_threshold"] = round(
        recall_above(found, truth, truth_scores, SELF_JOIN_THRESHOLD), 4
    )
    lat_q = queries[:n_latency]
    result["latency"] = [latencies_ms(index, lat_q, t) for t in (1, 2)]
    log(
        f"    recall@10 {result['recall_at_10']:.4f}, p99 {result['latency'][0]['p99_ms']:.2f} ms"
        " (1 thread)"
    )
    result["sweep"] = sweep(
        index,
        queries,
        truth,
        truth_scores,
        sweep_values(kind, spec, quick),
        n_latency=min(300, n_latency),
    )
    result["self_join"] = timed_self_join(index, self_join_budget_s, threads=2)
    sj = result["self_join"]
    log(f"    self-join {sj['seconds']:.1f} s{' (extrapolated)' if sj['extrapolated'] else ''}")
    result["load_average"] = {"before": load0, "after": load_average()}
    del index
    release_memory()
    return result


def run(
    quick: bool,
    sizes: list[int],
    out_dir: Path,
    *,
    kinds: list[IndexKind] | None = None,
    n_queries: int = 1000,
    data: str = "clustered",
    self_join_budget_s: float = 900.0,
    seed: int = 0,
    log: Callable[[str], None] = print,
    spec_overrides: dict[str, dict[str, Any]] | None = None,
    append: bool = False,
) -> dict:
    """Benchmark every kind at every size; write JSON + PNG into ``out_dir``; return the dict.

    With ``append``, results are merged into the day's JSON file if there is one (same size and
    kind: replaced), so a long benchmark can be run in parts; earlier runs' settings are kept
    under ``previous_runs``."""
    kinds = list(kinds or IndexKind)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.date.today().isoformat()
    suffix = ("-quick" if quick else "") + ("" if data == "clustered" else f"-{data}")
    json_path = out_dir / f"index-{stamp}{suffix}.json"
    previous = json.loads(json_path.read_text()) if append and json_path.exists() else None
    started = dt.datetime.now().isoformat(timespec="seconds")
    png_path = out_dir / f"index-{stamp}{suffix}.png"
    threads_before = get_num_threads()
    report: dict[str, Any] = {
        "benchmark": "biometric.index",
        "date": stamp,
        "synthetic": True,
        "note": (
            "Synthetic clustered unit vectors: index mechanics and speed only, no recognition "
            "accuracy. Recall is against exact (flat) search on the same data. Latency: one "
            "query per call through FaceIndex.search (Python overhead included). The machine "
            "may be shared: see load averages."
        ),
        "machine": machine_info(),
        "settings": {
            "quick": quick,
            "sizes": sizes,
            "kinds": [k.value for k in kinds],
            "dim": DIM,
            "k": K,
            "queries": n_queries,
            "data": {"preset": data, **DATA_PRESETS[data], "seed": seed},
            "self_join_threshold": SELF_JOIN_THRESHOLD,
            "self_join_budget_s": self_join_budget_s,
            "targets": TARGETS,
            "default_kind_for": {str(n): default_kind_for(n).value for n in sizes},
            "spec_overrides": spec_overrides or {},
        },
        "started": started,
        "results": [],
    }

    def save() -> None:
        json_path.write_text(json.dumps(_merged(previous, report), indent=2))

    try:
        for n in sizes:
            log(f"size {n:,}: generating data")
            x_all, ident_all = clustered_templates(
                n + n_queries, DIM, seed=seed + n, **DATA_PRESETS[data]
            )
            x, queries = x_all[:n], np.ascontiguousarray(x_all[n:])
            ident, qident = ident_all[:n], ident_all[n:]
            del x_all
            ids = np.random.default_rng(seed).permutation(n).astype(np.int64) * 3 + 1
            t0 = time.perf_counter()
            set_num_threads(2)
            exact = faiss.IndexFlatIP(DIM)
            exact.add(x)
            truth_scores, truth_slots = exact.search(queries, K)
            del exact
            truth = ids[truth_slots]
            log(f"  exact ground truth in {time.perf_counter() - t0:.1f} s")
            entry: dict[str, Any] = {
                "n": n,
                "scores": score_stats(x, ident, queries, qident),
                "truth_scores_mean": [round(float(v), 4) for v in truth_scores.mean(axis=0)],
                "kinds": {},
            }
            report["results"].append(entry)
            n_latency = n_queries
            for kind in kinds:
                log(f"  {kind.value}")
                entry["kinds"][kind.value] = bench_kind(
                    kind,
                    ids,
                    x,
                    queries,
                    truth,
                    truth_scores,
                    quick=quick,
                    n_latency=n_latency,
                    self_join_budget_s=self_join_budget_s,
                    log=log,
                    spec_overrides=(spec_overrides or {}).get(kind.value),
                )
                entry["kinds"][kind.value]["run_started"] = started
                save()
            del x, queries
            release_memory()
    finally:
        set_num_threads(threads_before)
    report["machine"]["load_average_at_end"] = load_average()
    save()
    report = _merged(previous, report)
    plot(report, png_path)
    report["files"] = {"json": str(json_path), "png": str(png_path)}
    return report


def _merged(previous: dict | None, report: dict) -> dict:
    """``report`` with the results of ``previous`` it does not replace (see ``run(append=)``)."""
    if not previous:
        return report
    merged = dict(report)
    merged["previous_runs"] = [
        *previous.get("previous_runs", []),
        {k: previous.get(k) for k in ("started", "machine", "settings")},
    ]
    by_n = {e["n"]: {**e, "kinds": dict(e["kinds"])} for e in previous.get("results", [])}
    for entry in report["results"]:
        if entry["n"] in by_n:
            by_n[entry["n"]]["kinds"].update(entry["kinds"])
        else:
            by_n[entry["n"]] = entry
    merged["results"] = [by_n[n] for n in sorted(by_n)]
    return merged


# --------------------------------------------------------------------------------------- output
def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    colours = {"flat": "black", "hnsw": "tab:blue", "ivf_sq8": "tab:orange", "ivf_pq": "tab:green"}
    for ax, entry in zip(axes[0], results, strict=True):
        for kind, r in entry["kinds"].items():
            c = colours.get(kind, "grey")
            if r["sweep"]:
                ax.plot(
                    [p["recall_at_10"] for p in r["sweep"]],
                    [p["p99_ms"] for p in r["sweep"]],
                    "o-",
                    color=c,
                    ms=3,
                    label=f"{kind} (sweep)",
                )
            ax.plot(
                r["recall_at_10"],
                r["latency"][0]["p99_ms"],
                "*",
                color=c,
                ms=12,
                label=f"{kind} default" if not r["sweep"] else None,
            )
        ax.axhline(TARGETS["p99_ms"], ls=":", color="red", lw=1)
        ax.axvline(TARGETS["recall_at_10"], ls=":", color="red", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 vs exact")
        ax.set_ylabel("p99 single-query latency, 1 thread (ms)")
        ax.set_title(f"{entry['n']:,} templates (synthetic, {DIM}-d)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("biometric.index: latency vs recall (star = default parameters)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="biometric.index benchmark (synthetic clustered templates)")
    for col in (
        "n",
        "kind",
        "build s",
        "B/tmpl",
        "RSS B/tmpl",
        "p50/p99 ms 1 thr",
        "p50/p99 ms 2 thr",
        "recall@10",
        f"recall>={SELF_JOIN_THRESHOLD}",
        "self-join s",
    ):
        table.add_column(col, justify="right")
    for entry in report["results"]:
        for kind, r in entry["kinds"].items():
            l1, l2 = r["latency"]
            sj = r["self_join"]
            table.add_row(
                f"{entry['n']:,}",
                kind,
                f"{r['build_s']:.1f}",
                f"{r['bytes_per_template']:.0f}",
                f"{r['rss_bytes_per_template']:.0f}",
                f"{l1['p50_ms']:.2f}/{l1['p99_ms']:.2f}",
                f"{l2['p50_ms']:.2f}/{l2['p99_ms']:.2f}",
                f"{r['recall_at_10']:.4f}",
                f"{r['recall_above_threshold']:.4f}",
                f"{sj['seconds']:.1f}{' (extrap.)' if sj['extrapolated'] else ''}",
            )
    Console(width=170).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k templates only (CI, < 60 s)")
    parser.add_argument("--sizes", default=None, help="comma-separated, e.g. 10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--kinds", default=None, help="comma-separated subset of index kinds")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--data", choices=sorted(DATA_PRESETS), default="clustered")
    parser.add_argument(
        "--self-join-budget",
        type=float,
        default=900.0,
        help="seconds; a longer self-join is measured on its first batches and extrapolated",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="merge into today's JSON (replacing the same size and kind) instead of overwriting",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    else:
        sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    kinds = [IndexKind(k) for k in args.kinds.split(",")] if args.kinds else None
    report = run(
        args.quick,
        sizes,
        args.out,
        kinds=kinds,
        n_queries=args.queries,
        data=args.data,
        self_join_budget_s=args.self_join_budget,
        spec_overrides=QUICK_OVERRIDES if args.quick else None,
        append=args.append,
    )
    print_table(report)
    print(f"wrote {report['files']['json']} and {report['files']['png']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def section(path: Path, doc: dict) -> list[str]:
    """BENCHMARKS.md section: per gallery size, one row per index kind; then each kind's
    parameter sweep at the largest size."""
    from benchmarks.markdown import table

    s = doc["settings"]
    out = ["## 1:N index", "", source_line_of(path, doc), "", doc.get("note", ""), "",
           f"{s['dim']}-d vectors, k = {s['k']}, {s['queries']} queries per size; self-join "
           f"threshold {s['self_join_threshold']}.", ""]
    rows = []
    for result in doc["results"]:
        for kind, r in result["kinds"].items():
            lat = {x["threads"]: x for x in r["latency"]}
            one, most = lat[min(lat)], lat[max(lat)]
            rows.append([result["n"], kind, r["recall_at_10"], r["recall_above_threshold"],
                         one["p50_ms"], one["p99_ms"], f"{most['p99_ms']:.3g} ({max(lat)})",
                         r["build_s"], r["bytes_per_template"], r["self_join"]["seconds"]])
    out += table(["templates", "index", "recall@10", "recall above threshold", "p50 ms (1 thread)",
                  "p99 ms (1 thread)", "p99 ms (threads)", "build s", "bytes / template",
                  "self-join s"], rows)
    largest = doc["results"][-1]
    for kind, r in largest["kinds"].items():
        if not r["sweep"]:
            continue
        knob = next(k for k in r["sweep"][0] if k not in
                    ("recall_at_10", "recall_above_threshold", "p50_ms", "p99_ms"))
        out += [f"Sweep of `{knob}`, {kind}, {largest['n']:,} templates:", ""]
        out += table([knob, "recall@10", "recall above threshold", "p50 ms", "p99 ms"],
                     [[x[knob], x["recall_at_10"], x["recall_above_threshold"], x["p50_ms"],
                       x["p99_ms"]] for x in r["sweep"]])
    return out


def source_line_of(path: Path, doc: dict) -> str:
    m = doc.get("machine", {})
    quick = " **(quick mode: small subset)**" if doc.get("settings", {}).get("quick") else ""
    return (f"Source: `{path.name}`{quick}; {m.get('cpu_model', '?')}, "
            f"{m.get('cpu_count', '?')} CPUs, Python {m.get('python', '?')}, faiss "
            f"{m.get('faiss', '?')}, numpy {m.get('numpy', '?')}.")
