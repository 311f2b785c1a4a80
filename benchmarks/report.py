"""Regenerate BENCHMARKS.md from the latest JSON result of each kind (never typed by hand)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.markdown import f, source_line, table

KINDS = (
    "accuracy",
    "chip",
    "stages",
    "peer",
    "quality",
    "capture",
    "int8",
    "index",
    "api",
    "scale",
    "shared_index",
)
NAME_RE = re.compile(r"^(?P<kind>[a-z0-9_]+)-(?P<date>\d{4}-\d{2}-\d{2})(?P<quick>-quick)?\.json$")


def latest(out_dir: Path) -> dict[str, tuple[Path, dict]]:
    """Per kind, the newest full run (a quick run only where no full run exists)."""
    found: dict[str, tuple[tuple, Path]] = {}
    for path in out_dir.glob("*.json"):
        m = NAME_RE.match(path.name)
        if not m or m["kind"] not in KINDS:
            continue
        key = (m["quick"] is None, m["date"], path.stat().st_mtime)
        if m["kind"] not in found or key > found[m["kind"]][0]:
            found[m["kind"]] = (key, path)
    return {k: (p, json.loads(p.read_text())) for k, (_, p) in found.items()}


def _at(fig: dict, fmr: str, key: str) -> Any:
    return fig.get("at_fmr", {}).get(fmr, {}).get(key)


def _fnmr4(fig: dict) -> Any:
    p = fig.get("at_fmr", {}).get("0.0001", {})
    if not p:
        return None
    if not p.get("supported"):
        have, need = p.get("impostor_pairs", 0), p.get("impostor_pairs_needed", 0)
        return f"unsupported ({have:,} < {need:,} impostor pairs)"
    return p.get("fnmr")


def worst_set_line(doc: dict) -> str:
    diff = doc.get("differential") or {}
    if not diff:
        return ""
    return (
        f"**Worst set for the shipped default ({diff['default']}): {diff['worst_set']}, where "
        f"the measured FMR at the shipped threshold is {f(diff['worst_ratio'], 3)}x the claimed "
        f"{f(diff['options'][diff['default']]['fmr_claimed'])}.**"
    )


def condition_lines(diff: dict) -> list[str]:
    """Each option's shipped thresholds: pooled, and per capture condition where fitted."""
    options = diff["options"]
    conditions = sorted({c for o in options.values() for c in o.get("condition_thresholds", {})})
    if not conditions:
        return []
    rows = [
        [name, o["threshold"], *(o["condition_thresholds"].get(c) for c in conditions),
         o.get("worst_set"), o.get("worst_ratio")]
        for name, o in options.items()
    ]
    return [
        "Shipped thresholds at FMR 1e-3: pooled (any condition without its own), and per "
        "capture condition where its pairs held 10/FMR impostor pairs (– : pooled applies).",
        "",
        *table(["option", "pooled", *conditions, "worst set", "worst FMR/claim"], rows),
    ]


def accuracy_section(path: Path, doc: dict) -> list[str]:
    out = ["## Accuracy: differential report per set and option", "", source_line(path, doc), ""]
    diff = doc.get("differential")
    if diff:
        out += [worst_set_line(doc), ""]
        out.append(
            "Every option at its own shipped operating point (FMR 1e-3: all sets pooled with "
            "equal weight, raised to the strictest set; each pair at its capture condition's "
            "threshold: colour, grey or tight crop). Site = the same rule fitted on half of "
            "the set's people and checked on the other half, both ways (mean and worst ratio; "
            "'<10/FMR': a half held fewer impostor pairs than the rule asks). FTA = no whole "
            "face found (decode failures included); retakes = acquired images a quality "
            "bound (or a second face, live only) sends back, per role. "
            "FNMR/FMR are over acquired images; FMR/claim is given where a set has at least "
            "1/claim impostor pairs; TAR at an FMR where it has 10/FMR. View-1 = LFW's official "
            "DevTest pairs (500 same + 500 different): at the shipped threshold a pair with a "
            "photo not acquired counts as a non-match; best = best threshold, acquired pairs."
        )
        out.append("")
        out += table(diff["columns"], diff["rows"])
        out += condition_lines(diff)
        choice = diff.get("default_choice") or {}
        if choice:
            out += [
                f"Default: **{choice.get('chosen')}**, chosen on {choice.get('date')} by the "
                f"rule: {choice.get('rule')} Outcome: {choice.get('why')}.",
                "",
            ]
    name = doc.get("embedder", "default")
    out += [f"### {name} alone, every set and pooled (TAR at fixed FMRs)", ""]
    rows = []
    for name, fig in [*doc["sets"].items(), ("**pooled**", doc["pooled"])]:
        rows.append(
            [
                name,
                fig["images"],
                fig["failure_to_acquire"],
                fig["genuine_pairs"],
                fig["impostor_pairs"],
                _at(fig, "0.01", "fnmr"),
                _at(fig, "0.001", "fnmr"),
                _at(fig, "0.001", "tar"),
                _fnmr4(fig),
                fig["eer"],
            ]
        )
    out += table(
        [
            "set",
            "images",
            "FTA",
            "genuine pairs",
            "impostor pairs",
            "FNMR@FMR1e-2",
            "FNMR@FMR1e-3",
            "TAR@FMR1e-3",
            "FNMR@FMR1e-4",
            "EER",
        ],
        rows,
    )
    out += _plots(doc)
    return out


def quality_section(path: Path, doc: dict) -> list[str]:
    out = ["## Capture quality and liveness", "", source_line(path, doc), ""]
    rows = [
        [
            name,
            s["measured"],
            s["distribution"]["score"]["5"],
            s["distribution"]["score"]["50"],
            s["genuine_pairs"],
            s["spearman_min_quality_vs_genuine_score"],
            *s["genuine_score_by_quality_quartile"],
        ]
        for name, s in doc["sets"].items()
    ]
    out += table(
        [
            "set",
            "images",
            "quality p5",
            "quality p50",
            "genuine pairs",
            "Spearman(min quality, genuine score)",
            "genuine score Q1",
            "Q2",
            "Q3",
            "Q4",
        ],
        rows,
    )
    out += ["", *liveness_lines(doc["liveness"], doc.get("settings", {}))]
    return out


def liveness_lines(live: dict, settings: dict) -> list[str]:
    """Per liveness model and set: BPCER on colour bona fide photos, APCER on proxy attacks."""
    if "models" not in live:  # results written before per-model liveness
        return [f"Liveness: {live.get('note', '')} (older result format; rerun the benchmark)", ""]
    out = [
        "### Liveness (presentation-attack detection)",
        "",
        f"{live['note'][0].upper()}{live['note'][1:]}. Attacks ({live['attacks']}) are a "
        "**proxy**: they show how "
        "a model reacts to such renderings, not how it resists a real attacker. Sampling: every "
        f"n-th image per set {settings.get('liveness_every_nth_image', {})} (other sets: every "
        f"image), photos reduced to at most {settings.get('liveness_camera_max_side', '?')} px "
        "(a camera frame). Scores are oriented so that higher is more live.",
        "",
    ]
    rows = []
    for model, fig in live["models"].items():
        kinds = sorted({k for r in fig["sets"].values() for k in r.get("apcer", {})})
        points = [("shipped", fig["threshold"], fig["sets"].items(), fig["pooled"])]
        for label, threshold, per_set, pooled in points:
            for set_name, r in [*per_set, ("pooled", pooled)]:
                apcer = r.get("apcer", {})
                rows.append(
                    [
                        model,
                        f"{label} {threshold:g}",
                        set_name,
                        r["bpcer"]["samples"],
                        r["bpcer"]["rate"],
                        *(apcer.get(k, {}).get("rate") for k in kinds),
                    ]
                )
        at = fig.get("pooled_at_bpcer_5pct")
        at_t = fig.get("threshold_at_bpcer_5pct")
        # None: the 5th percentile is a face the model never calls live (FaceAntiSpoofing's
        # sharpness gate), so no threshold reaches BPCER 5 %.
        if at and at_t is not None:
            rows.append(
                [
                    model,
                    f"BPCER 5 % ({at_t:.4g})",
                    "pooled",
                    at["bpcer"]["samples"],
                    at["bpcer"]["rate"],
                    *(at.get("apcer", {}).get(k, {}).get("rate") for k in kinds),
                ]
            )
    kinds = sorted(
        {
            k
            for fig in live["models"].values()
            for r in fig["sets"].values()
            for k in r.get("apcer", {})
        }
    )
    out += table(
        ["model", "threshold", "set", "bona fide", "BPCER", *(f"APCER {k} (proxy)" for k in kinds)],
        rows,
    )
    target = live.get("bpcer_target", 0.05)
    for model, fig in live["models"].items():
        worst = max(
            (r["bpcer"]["rate"], name)
            for name, r in [*fig["sets"].items(), ("pooled", fig["pooled"])]
        )
        verdict = "meets" if worst[0] <= target else "misses"
        out.append(
            f"- `{model}` at its shipped threshold {verdict} the bar for a `warn` default "
            f"(BPCER <= {target:.0%} on every colour set and pooled): worst BPCER "
            f"{worst[0]:.1%} ({worst[1]})."
        )
    out.append("")
    return out


def capture_section(path: Path, doc: dict) -> list[str]:
    s, lib, ep = doc["settings"], doc["library"], doc["endpoint"]
    out = ["## Guided capture (`POST /v1/capture-check`)", "", source_line(path, doc), ""]
    out.append(
        f"{s['frames']} camera views of real faces sent as {s['frame_size'][0]}x"
        f"{s['frame_size'][1]} JPEG (the page's preview frame), {s['rounds']} round(s); "
        f"detector {s['detector']}, {s['onnx_threads']} onnxruntime thread. Target: "
        f"{doc['target_cpu_ms']:g} ms CPU per call. Instructions given: {lib['instructions']}."
    )
    out.append("")
    out += table(
        ["where", "CPU ms mean", "CPU ms p50", "CPU ms p95", "wall ms mean"],
        [
            [
                "library: decode + check",
                lib["cpu_ms"]["mean"],
                lib["cpu_ms"]["p50"],
                lib["cpu_ms"]["p95"],
                lib["wall_ms"]["mean"],
            ],
            [
                f"endpoint: server process, {ep['calls']} calls",
                ep["server_cpu_ms_per_call"],
                None,
                None,
                ep["wall_ms"],
            ],
        ],
    )
    return out


def chip_section(path: Path, doc: dict) -> list[str]:
    out = ["## Live photo vs chip portrait (ICAO 9303 DG2)", "", source_line(path, doc), ""]
    s = doc.get("settings", {})
    out.append(
        f"Every image rendered as a chip portrait ({s.get('crop', '')}; {s.get('codec', '')}, "
        f"target {s.get('target_bytes')} bytes) and decoded again with "
        "`biometric.decode.decode_image`; scores between the original (live) embedding of image i "
        "and the chip embedding of image j ≠ i (ordered pairs). FTA here = no usable chip "
        "(source face not found or chip face not found). "
        "Plain = the accuracy run on the same images. The ordered pairs are correlated (each "
        "image appears in many), so FNMR at 1e-4 rests on fewer independent trials than the "
        "impostor count suggests."
    )
    out.append("")
    rows = []
    plain = doc["plain"]
    for name, fig in [*plain["sets"].items(), ("pooled", plain["pooled"])]:
        rows.append(
            [
                "plain",
                name,
                fig["failure_to_acquire"],
                fig["genuine_pairs"],
                fig["impostor_pairs"],
                _at(fig, "0.01", "tar"),
                _at(fig, "0.001", "tar"),
                _fnmr4(fig),
                fig["eer"],
                None,
            ]
        )
    for cname, cond in doc["conditions"].items():
        for name, fig in [*cond["sets"].items(), ("pooled", cond["pooled"])]:
            rows.append(
                [
                    cname,
                    name,
                    fig["chip_failure_to_acquire"],
                    fig["genuine_pairs"],
                    fig["impostor_pairs"],
                    _at(fig, "0.01", "tar"),
                    _at(fig, "0.001", "tar"),
                    _fnmr4(fig),
                    fig["eer"],
                    fig["jp2_size"].get("median_bytes"),
                ]
            )
    out += table(
        [
            "condition",
            "set",
            "FTA",
            "genuine",
            "impostor",
            "TAR@FMR1e-2",
            "TAR@FMR1e-3",
            "FNMR@FMR1e-4",
            "EER",
            "median JP2 bytes",
        ],
        rows,
    )
    sizes = []
    for cname, cond in doc["conditions"].items():
        z = cond["pooled"]["jp2_size"]
        sizes.append(
            [
                cname,
                "x".join(map(str, cond["size"])),
                cond["grey"],
                z.get("median_bytes"),
                z.get("min_bytes"),
                z.get("max_bytes"),
                z.get("fraction_in_10_20_kb"),
            ]
        )
    out += table(["condition", "size", "grey", "median bytes", "min", "max", "in 10-20 KB"], sizes)
    out += _plots(doc)
    return out


def stages_section(path: Path, doc: dict) -> list[str]:
    s = doc.get("settings", {})
    out = ["## Stage latency", "", source_line(path, doc), ""]
    out.append(
        f"{s.get('runs_per_stage')} timed runs per stage after {s.get('warmup_runs')} warm-up "
        f"runs, cycling over {s.get('inputs_cycled')} real photo pairs; live frame: "
        f"{s.get('live_frame')}; chip: {s.get('chip')}. onnxruntime: "
        f"{s.get('onnxruntime_thread_setting')}. Load average before/after: "
        f"{_load(s.get('load_average_before'))} / {_load(s.get('load_average_after'))}. "
        f"{s.get('note', '')}"
    )
    out.append("")
    results = doc["results"]
    threads = list(results)
    first = results[threads[0]]
    if "after_capture" in first:
        op = first["operating_point"]
        out.append(f"Embedder `{first['embedder']}`, operating point FMR {op['fmr']:g} "
                   f"(threshold {f(op['threshold'])}), front end {first['default_front_end']}. "
                   "After the capture = the live path against a chip prepared before it "
                   "(`Verifier.prepare`, `POST /v1/chip`); one-shot = both images.")
        out.append("")
        out += table(
            ["threads", "after capture median ms", "after capture CPU ms", "one-shot median ms",
             "one-shot CPU ms", f"target {f(first['after_capture']['target_median_ms'])} ms"],
            [[t, a["median_ms"], a["cpu_median_ms"], a["one_shot_median_ms"],
              a["one_shot_cpu_median_ms"], "met" if a["met_wall"] else
              ("met in CPU time" if a["met_cpu"] else "**not met**")]
             for t in threads for a in [results[t]["after_capture"]]])
    cols = ["stage", "what"]
    for t in threads:
        cols += [f"median ms (threads={t})", f"p99 ms (threads={t})", f"CPU ms (threads={t})"]
    rows = []
    for name, st in results[threads[0]]["stages"].items():
        row = [f"`{name}`", st["what"]]
        for t in threads:
            r = results[t]["stages"][name]
            row += [r["median_ms"], r["p99_ms"], r.get("cpu_median_ms")]
        rows.append(row)
    out += table(cols, rows)
    rows = []
    for t in threads:
        tp = results[t]["throughput"]
        rows.append(
            [
                t,
                tp["live_faces_per_second"],
                tp["live_faces_per_second_per_core"],
                tp.get("live_faces_per_cpu_second"),
                tp.get("live_faces_per_cpu_second_embed_batch8"),
                tp["verifications_per_second"],
                tp.get("verifications_per_cpu_second"),
            ]
        )
    out += table(
        [
            "threads",
            "live faces/s (wall)",
            "per core (wall)",
            "faces per CPU-second",
            "per CPU-second (embed b8)",
            "verify/s (wall)",
            "verify per CPU-second",
        ],
        rows,
    )
    out.append(
        "One live face = detect (640x480) + align + embed, from the medians above. "
        "'Per CPU-second' divides by process CPU time instead of wall-clock time: what one "
        "unshared core does."
    )
    chip = results[threads[0]].get("chip_auth")
    if chip:
        out.append("")
        out.append(
            f"Chip signature check (passive authentication of a SYNTHETIC EF.DG2/EF.SOD, "
            f"`chip_auth_*` rows): worst median {chip['worst_median_ms']:.2f} ms against the "
            f"{chip['target_ms']:g} ms target ({'met' if chip['met'] else 'NOT met'}), "
            f"{100 * chip['share_of_verify']:.1f} % of a verification."
        )
    if s.get("contended"):
        out.append("")
        out.append(
            "**The machine was shared and loaded while this ran (load average above the CPU "
            "count): wall-clock figures are pessimistic; CPU-time figures are the better guide.**"
        )
    out.append("")
    return out


def scale_section(path: Path, doc: dict) -> list[str]:
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
                _load(r["load_average_before"]),
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
    return out + _plots(doc)


def _load(v: Any) -> str:
    return "–" if not v else ", ".join(f"{x:.2f}" for x in v)


def _peer_speed(sp: dict, st: dict) -> list[str]:
    if "per_verification" not in sp:  # results before issue 23: per image
        o, t = sp.get("ours_ms_per_640px_image", {}), sp.get("theirs_ms_per_640px_image", {})
        return table(["per 640x480 image (interleaved, same run)", "median ms", "p99 ms",
                      "CPU median ms"],
                     [[f"ours ({st.get('front_end', 'mtcnn')} front end)", o.get("median_ms"),
                       o.get("p99_ms"), o.get("cpu_median_ms")],
                      ["face_recognition (HOG + ResNet)", t.get("median_ms"), t.get("p99_ms"),
                       t.get("cpu_median_ms")]])
    names = {"ours_one_shot": "ours, one-shot (both images)",
             "ours_after_capture": "ours, after the capture (chip prepared)",
             "theirs": "face_recognition (HOG + ResNet), both images"}
    rows = [[names[k], v["median_ms"], v["p99_ms"], v["cpu_median_ms"],
             ", ".join(f"{d} {n}" for d, n in sorted(v["decisions"].items()))]
            for k, v in sp["per_verification"].items()]
    out = table([f"per verification ({sp['pairs']} pairs, interleaved, same run)", "median ms",
                 "p99 ms", "CPU median ms", "decisions"], rows)
    less = sp.get("cpu_times_less_than_theirs")
    if less:
        out.append(f"CPU per verification: ours one-shot uses {f(less['one_shot'], 1)}x less "
                   f"than face_recognition, after the capture {f(less['after_capture'], 1)}x "
                   f"less (target {f(less['target'], 0)}x).")
    return out


def peer_section(path: Path, doc: dict) -> list[str]:
    out = ["## Peer: face_recognition (dlib)", "", source_line(path, doc), ""]
    out.append(f"Status: {doc.get('peer_message')}.")
    out.append("")
    sp = doc.get("speed", {})
    st = doc["settings"]
    if "embedder" in st:
        out.append(f"Ours: embedder `{st['embedder']}`, operating point FMR "
                   f"{f(st['operating_point']['fmr'])} (threshold "
                   f"{f(st['operating_point']['threshold'])}); theirs: {st.get('peer_decision')}.")
        out.append("")
    if not doc.get("peer_available"):
        out += _peer_speed(sp, st)
        return [*out, ""]
    pv = doc.get("peer_versions", {})
    out.append(
        f"Peer versions: {', '.join(f'{k} {v}' for k, v in pv.items())}. "
        f"{doc['settings'].get('peer')}; score {doc['settings'].get('peer_score')}. "
        "Ratios are ours / theirs. 'common' = only the images both systems acquired."
    )
    out.append("")
    rows = []
    for name, a in doc["accuracy"].items():
        r = a["ratios_ours_over_theirs"]
        rows.append(
            [
                name,
                a["images"],
                a["ours"]["failure_to_acquire"],
                a["theirs"]["failure_to_acquire"],
                _at(a["ours"], "0.001", "tar"),
                _at(a["theirs"], "0.001", "tar"),
                r["tar_at_1e-3"],
                _at(a["ours_on_common_images"], "0.001", "tar"),
                _at(a["theirs_on_common_images"], "0.001", "tar"),
                r["tar_at_1e-3_common_images"],
                a["ours"]["eer"],
                a["theirs"]["eer"],
            ]
        )
    out += table(
        [
            "set",
            "images",
            "FTA ours",
            "FTA theirs",
            "TAR@1e-3 ours",
            "TAR@1e-3 theirs",
            "ratio",
            "TAR@1e-3 ours (common)",
            "theirs (common)",
            "ratio (common)",
            "EER ours",
            "EER theirs",
        ],
        rows,
    )
    out += _peer_speed(sp, st)
    return [*out, ""]


def generic_section(kind: str, path: Path, doc: dict) -> list[str]:
    out = [f"## {kind}", "", source_line(path, doc), ""]
    levels = doc.get("levels")
    if isinstance(levels, list) and levels and all(isinstance(x, dict) for x in levels):
        cols = [k for k, v in levels[0].items() if not isinstance(v, dict | list)]
        out += table(cols, [[lv.get(c) for c in cols] for lv in levels])
        doc = {k: v for k, v in doc.items() if k != "levels"}
    rows = []
    for key, value in _flatten(doc):
        if key.startswith(("machine.", "benchmark", "date", "created", "model_versions")):
            continue
        rows.append([f"`{key}`", value])
        if len(rows) >= 60:
            rows.append(["…", "(see the JSON)"])
            break
    out += table(["figure", "value"], rows)
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            items += _flatten(v, f"{prefix}{k}.")
        return items
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value) and len(value) <= 8:
            return [(prefix.rstrip("."), ", ".join(f(v) for v in value))]
        items = []
        for i, v in enumerate(value[:10]):
            items += _flatten(v, f"{prefix}{i}.")
        return items
    return [(prefix.rstrip("."), value)]


def _plots(doc: dict) -> list[str]:
    plots = doc.get("plots") or []
    if not plots:
        return []
    return [
        "Plots (PNG, git-ignored; regenerate with the command above): "
        + ", ".join(f"`benchmarks/results/{p}`" for p in plots),
        "",
    ]


def int8_section(path: Path, doc: dict) -> list[str]:
    s = doc["settings"]
    out = ["## Faster forms of the embedders: static int8 and fp32 optimised offline", "",
           source_line(path, doc), ""]
    out.append(
        f"{s['quantisation']}; calibration on {s['calibration']}; judged on "
        f"{', '.join(s.get('judges', []))}; alignment from the {s['front_end']}. Rule: "
        f"{s['rule']}. Same crops for every form. Load average at start: "
        f"{f(s.get('load_average_at_start'), 1)}."
    )
    out.append("")
    speed = []
    for name, e in doc["embedders"].items():
        sp = e["speed_batch1"]
        speed.append([name, sp["fp32"]["cpu_median_ms"], sp["fp32_offline"]["cpu_median_ms"],
                      sp["int8"]["cpu_median_ms"], f"{e['int8_cpu_saving']:.0%}",
                      e["fp32_offline_min_cosine"], e["ships"]])
    out += table(["embedder", "CPU ms fp32 (1 crop)", "CPU ms fp32 offline", "CPU ms int8",
                  "int8 saving", "min cosine fp32/offline", "ships"], speed)
    rows = []
    for name, e in doc["embedders"].items():
        for set_name, fig in e["sets"].items():
            for fmr, x in fig["fmrs"].items():
                a, b = x["fp32"], x["int8"]
                rows.append([name, set_name, fmr, fig["genuine_pairs"], a["tar"],
                             f"{f(a['tar_ci'][0])}-{f(a['tar_ci'][1])}", b["tar"],
                             f"{b['tar'] - a['tar']:+.4f}", b["fmr_at_fp32_threshold"],
                             fig["cosine_fp32_int8"]["min"],
                             "yes" if x["holds"] else "**no**"])
    if rows:
        out += table(["embedder", "set", "FMR", "genuine pairs", "TAR fp32", "95% interval",
                      "TAR int8", "change", "FMR int8 at fp32 threshold",
                      "min cosine fp32/int8", "holds"], rows)
    return out


SECTIONS = {
    "accuracy": accuracy_section,
    "chip": chip_section,
    "stages": stages_section,
    "peer": peer_section,
    "quality": quality_section,
    "capture": capture_section,
    "int8": int8_section,
    "scale": scale_section,
    # Each new benchmark renders its own section (imported when rendered: it imports this).
    "shared_index": lambda p, d: importlib.import_module("benchmarks.shared_index").section(p, d),
}


# Benchmarks that render their own section: kind -> module defining ``section(path, doc)``.
OWN_SECTION = {"index": "index_bench", "api": "api_bench"}


def section_renderer(kind: str) -> Callable[[Path, dict], list[str]]:
    if kind in OWN_SECTION:
        return importlib.import_module(f"benchmarks.{OWN_SECTION[kind]}").section
    return SECTIONS.get(kind, lambda p, d, k=kind: generic_section(k, p, d))


def render(out_dir: Path) -> str:
    found = latest(out_dir)
    lines = [
        "<!-- GENERATED FILE: do not edit. Regenerate with `python -m benchmarks report`. -->",
        "",
        "# Benchmarks",
        "",
        "*This file is generated by `python -m benchmarks report` from the latest JSON result of "
        "each kind in `benchmarks/results/`; edit `benchmarks/report.py`, not this file.*",
        "",
        "Run: `.venv/bin/python -m benchmarks NAME [--quick] [--out benchmarks/results]`, NAME in "
        "accuracy, chip, stages, peer, quality, capture, int8, index, api, scale, report. "
        "`--quick` uses small subsets (< 60 s) and never runs the peer.",
        "",
    ]
    if "accuracy" in found:
        headline = worst_set_line(found["accuracy"][1])
        if headline:
            lines += [headline, ""]
    missing = [k for k in KINDS if k not in found]
    if missing:
        lines += [f"Not measured yet: {', '.join(missing)}.", ""]
    for kind in KINDS:
        if kind not in found:
            continue
        path, doc = found[kind]
        try:
            lines += section_renderer(kind)(path, doc)
        except (KeyError, TypeError, IndexError) as exc:
            lines += [f"## {kind}", "", f"`{path.name}` could not be rendered ({exc!r}).", ""]
    return "\n".join(lines).rstrip() + "\n"


def run(out_dir: Path, markdown: Path) -> Path:
    markdown.write_text(render(out_dir))
    common.console.print(f"[green]wrote[/green] {markdown}")
    return markdown
