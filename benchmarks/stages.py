"""Latency of each pipeline stage, median and p99, at onnxruntime threads=1 (default) and 2.

Inputs are made from real photos of the data folder: a 640x480 live frame (a photo resized and
letterboxed, JPEG quality 90) and a 240x320 JPEG 2000 chip portrait rendered from another photo
of the same person (see ``benchmarks.chip``). Each measurement is one call timed with
``time.perf_counter``, after warm-up calls that are not counted; the inputs cycle over several
photos.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import chip as chipmod
from benchmarks import common
from benchmarks.markdown import f, load_text, source_line, table
from biometric.chip import synthetic
from biometric.chip.dg2 import parse_dg2
from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.reader import read_chip
from biometric.chip.trust import TrustStore
from biometric.compare import cosine
from biometric.decode import read_image
from biometric.evaluation import discover_sets
from biometric.pipeline import CHIP, LIVE, FrontEnd, PipelineConfig
from biometric.verification import Verifier

FRAME_SIZE = (640, 480)
WARMUP = 3
# Issue 23: after the capture (prepared chip), in process, median.
AFTER_CAPTURE_TARGET_MS = 30.0
# Issue 14: checking the chip's signature may add at most this much to a verification.
CHIP_AUTH_TARGET_MS = 5.0
CHIP_AUTH_KINDS = {
    "ecdsa": "ECDSA P-256",
    "rsa_pkcs1v15": "RSA-2048 PKCS#1 v1.5",
    "rsa_pss": "RSA-2048 PSS",
}


def letterbox(rgb: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    w, h = size
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    left, top = (w - nw) // 2, (h - nh) // 2
    return cv2.copyMakeBorder(
        resized, top, h - nh - top, left, w - nw - left, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return buf.tobytes()


def make_inputs(pipeline, count: int, others: tuple = ()) -> list[dict[str, Any]]:
    """(live JPEG 640x480, chip JP2 240x320) pairs of the same person from real photos, then as
    many of different people (``impostor_inputs``)."""
    sets = discover_sets(common.data_dir())
    # Colour photos first (fr_examples), then the rest; identities with at least 2 photos.
    sets.sort(key=lambda s: s.name != "fr_examples")
    pairs: list[tuple[Path, Path]] = []
    for s in sets:
        by_label: dict[str, list[Path]] = {}
        for img, label in zip(s.images, s.labels, strict=True):
            by_label.setdefault(label, []).append(img)
        for imgs in by_label.values():
            pairs.extend(
                (imgs[k], imgs[(k + 1) % len(imgs)]) for k in range(len(imgs)) if len(imgs) > 1
            )
    inputs = []
    for live_path, chip_path in pairs:
        live_rgb = letterbox(read_image(live_path).rgb)
        live_bytes = encode_jpeg(live_rgb)
        live_rgb = pipeline.decode(live_bytes).rgb
        live_a = pipeline.analyse(live_rgb, LIVE)
        src = read_image(chip_path).rgb
        src_a = pipeline.analyse(src, CHIP)
        if live_a.subject is None or src_a.subject is None or live_a.reasons:
            continue
        chip_bytes, _ = chipmod.encode_chip(
            chipmod.portrait_crop(src, src_a.subject.landmarks, (240, 320)), grey=False
        )
        chip_rgb = pipeline.decode(chip_bytes).rgb
        chip_a = pipeline.analyse(chip_rgb, CHIP)
        if chip_a.subject is None:
            continue
        # Every front end timed must decide on these inputs, or it would time a retake.
        if any(
            o.analyse(live_rgb, LIVE).reasons or o.analyse(chip_rgb, CHIP).reasons
            for o in others
        ):
            continue
        inputs.append(
            {
                "live_path": str(live_path),
                "chip_path": str(chip_path),
                "live_bytes": live_bytes,
                "chip_bytes": chip_bytes,
                "live_rgb": live_rgb,
                "chip_rgb": chip_rgb,
                "live_landmarks": live_a.subject.landmarks,
                "chip_landmarks": chip_a.subject.landmarks,
            }
        )
        if len(inputs) >= count:
            break
    if not inputs:
        raise RuntimeError("no usable live/chip pair found in the data folder")
    return inputs + impostor_inputs(inputs)


def impostor_inputs(genuine: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each live capture with the chip of the next input's (different) person, so that verify
    is timed on no-match decisions as well as matches."""
    out = []
    for i, x in enumerate(genuine):
        other = next(
            (y for y in genuine[i + 1 :] + genuine[:i]
             if Path(y["chip_path"]).parent != Path(x["live_path"]).parent),
            None,
        )
        if other is not None:
            chip = {k: other[k] for k in ("chip_path", "chip_bytes", "chip_rgb", "chip_landmarks")}
            out.append({**x, **chip})
    return out


def measure(fn: Callable[[int], Any], runs: int) -> dict[str, float]:
    for k in range(WARMUP):
        fn(k)
    ms, cpu = [], []
    for k in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(k)
        ms.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    a = np.asarray(ms)
    return {
        "runs": runs,
        "cpu_median_ms": float(np.median(cpu)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        "median_ms": float(np.median(a)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
    }


def stage_functions(
    pipelines: dict[str, Any], default: str, inputs: list[dict]
) -> dict[str, tuple[str, Callable[[int], Any]]]:
    """Every stage once; detection and verify once per front end (``<stage>_<front end>``)."""
    n = len(inputs)
    pipeline = pipelines[default]
    emb = pipeline.embedder
    crops = [emb.align(x["live_rgb"], x["live_landmarks"]) for x in inputs]
    batch8 = np.stack([crops[k % n] for k in range(8)])
    vectors = emb.embed_crops(np.stack(crops))
    name = emb.spec.name

    def pick(k: int) -> dict:
        return inputs[k % n]

    stages: dict[str, tuple[str, Callable[[int], Any]]] = {
        "decode_jpeg_640x480": (
            "decode a 640x480 JPEG (q90)",
            lambda k: pipeline.decode(pick(k)["live_bytes"]),
        ),
        "decode_chip_jp2_240x320": (
            "decode a 240x320 JPEG 2000 chip (10-20 KB)",
            lambda k: pipeline.decode(pick(k)["chip_bytes"]),
        ),
    }
    for fe, p in pipelines.items():
        what = FRONT_END_TEXT[fe]
        stages[f"detect_live_640x480_{fe}"] = (
            f"{what} on the 640x480 live frame",
            lambda k, p=p: p.detect(pick(k)["live_rgb"]),
        )
        stages[f"detect_chip_240x320_{fe}"] = (
            f"{what} on the 240x320 chip",
            lambda k, p=p: p.detect(pick(k)["chip_rgb"]),
        )
    stages |= {
        "align": (
            "similarity transform + warp to the embedder's crop",
            lambda k: emb.align(pick(k)["live_rgb"], pick(k)["live_landmarks"]),
        ),
        "embed_batch1": (f"{name}, 1 crop", lambda k: emb.embed_crops(crops[k % n][None])),
        "embed_batch8": (f"{name}, 8 crops in one call", lambda k: emb.embed_crops(batch8)),
        "compare": (
            "cosine of two templates",
            lambda k: cosine(vectors[k % n], vectors[(k + 1) % n]),
        ),
    }
    for fe, p in pipelines.items():
        verifier = Verifier(p, ChipAuthPolicy.OFF)
        prepared = [verifier.prepare(x["chip_bytes"]) for x in inputs]
        stages[f"verify_{fe}"] = (
            f"one-shot: Verifier.compare(live JPEG bytes, chip JP2 bytes), end to end, {fe} "
            "front end",
            lambda k, v=verifier: v.compare(pick(k)["live_bytes"], pick(k)["chip_bytes"]),
        )
        stages[f"chip_prepare_{fe}"] = (
            f"before the capture: Verifier.prepare(chip JP2 bytes), {fe} front end",
            lambda k, v=verifier: v.prepare(pick(k)["chip_bytes"]),
        )
        stages[f"verify_prepared_{fe}"] = (
            f"after the capture: Verifier.compare(live JPEG bytes, prepared chip), {fe} front "
            "end",
            lambda k, v=verifier, pc=prepared: v.compare(pick(k)["live_bytes"], pc[k % n]),
        )
    return stages


FRONT_END_TEXT = {
    FrontEnd.MTCNN.value: "MTCNN cascade (padded and retried on small images)",
    FrontEnd.BLAZEFACE.value: "BlazeFace + O-Net landmarks (MTCNN fallback)",
}


def chip_stage_functions(inputs: list[dict]) -> dict[str, tuple[str, Callable[[int], Any]]]:
    """Passive authentication of SYNTHETIC chip files: each input's JPEG 2000 chip portrait in
    an EF.DG2, an EF.SOD signed over it by a test Document Signer under a test CSCA, one PKI per
    signature algorithm (what countries use: RSA-2048 v1.5 or PSS, ECDSA P-256)."""
    n = len(inputs)
    dg2s = [synthetic.make_dg2(x["chip_bytes"], 240, 320, "jpeg2000") for x in inputs]
    stages: dict[str, tuple[str, Callable[[int], Any]]] = {
        "chip_dg2_parse": ("parse EF.DG2 down to the portrait",
                           lambda k: parse_dg2(dg2s[k % n])),
    }
    for kind, label in CHIP_AUTH_KINDS.items():
        csca = synthetic.make_party("SYNTHETIC CSCA", kind)
        ds = synthetic.make_party("SYNTHETIC DS", kind, issuer=csca)
        trust = TrustStore([csca.cert])
        sods = [synthetic.make_sod({2: d}, ds) for d in dg2s]
        assert read_chip(dg2s[0], sods[0], trust).auth.status == "verified"

        def check(k: int, sods=sods, trust=trust) -> None:
            read_chip(dg2s[k % n], sods[k % n], trust)

        stages[f"chip_auth_{kind}"] = (
            f"EF.DG2 parse + passive authentication ({label}, SHA-256): EF.SOD parse, DG2 hash, "
            "SOD signature, DS certificate vs CSCA, dates",
            check,
        )
    return stages


def run_threads(threads: int, runs: int, n_inputs: int, advance) -> dict[str, Any]:
    default = PipelineConfig().front_end.value
    pipelines = {fe.value: common.make_pipeline(threads=threads, front_end=fe) for fe in FrontEnd}
    pipeline = pipelines[default]
    others = tuple(p for fe, p in pipelines.items() if fe != default)
    inputs = make_inputs(pipeline, n_inputs, others)
    stages = {}
    functions = {**stage_functions(pipelines, default, inputs), **chip_stage_functions(inputs)}
    for name, (what, fn) in functions.items():
        stages[name] = {"what": what, **measure(fn, runs)}
        advance()
    verify_breakdown: dict[str, dict[str, list[float]]] = {}
    decisions: dict[str, dict[str, int]] = {}
    for fe, p in pipelines.items():
        verifier = Verifier(p, ChipAuthPolicy.OFF)
        for x in inputs:
            result = verifier.compare(x["live_bytes"], x["chip_bytes"])
            after = verifier.compare(x["live_bytes"], verifier.prepare(x["chip_bytes"]))
            assert after.decision == result.decision, "prepared and one-shot must agree"
            for flow, r in ((fe, result), (f"{fe}_prepared", after)):
                d = decisions.setdefault(flow, {})
                d[r.decision.value] = d.get(r.decision.value, 0) + 1
                for k, v in r.timings_ms.items():
                    verify_breakdown.setdefault(flow, {}).setdefault(k, []).append(v)
    med = {k: stages[k]["median_ms"] for k in stages}
    cpu = {k: stages[k]["cpu_median_ms"] for k in stages}
    chip_ms = {k: v for k, v in med.items() if k.startswith("chip_auth_")}
    detect, verify = f"detect_live_640x480_{default}", f"verify_{default}"
    after = stages[f"verify_prepared_{default}"]
    per_face_ms = med[detect] + med["align"] + med["embed_batch1"]
    per_face_b8_ms = med[detect] + med["align"] + med["embed_batch8"] / 8
    per_face_cpu = cpu[detect] + cpu["align"] + cpu["embed_batch1"]
    per_face_b8_cpu = cpu[detect] + cpu["align"] + cpu["embed_batch8"] / 8
    return {
        "threads": threads,
        "default_front_end": default,
        "embedder": pipeline.option,
        "operating_point": {"fmr": pipeline.operating_point.fmr,
                            "threshold": pipeline.operating_point.threshold,
                            "by_condition": dict(pipeline.operating_point.by_condition)},
        "after_capture": {
            "target_median_ms": AFTER_CAPTURE_TARGET_MS,
            "median_ms": after["median_ms"],
            "cpu_median_ms": after["cpu_median_ms"],
            "met_wall": after["median_ms"] <= AFTER_CAPTURE_TARGET_MS,
            "met_cpu": after["cpu_median_ms"] <= AFTER_CAPTURE_TARGET_MS,
            "one_shot_median_ms": med[verify],
            "one_shot_cpu_median_ms": cpu[verify],
        },
        "model_versions": pipeline.model_versions,
        "stages": stages,
        "verify_internal_breakdown_median_ms": {
            fe: {k: float(np.median(v)) for k, v in b.items()}
            for fe, b in verify_breakdown.items()
        },
        "verify_decisions_on_inputs": {
            fe: common.check_decisions(d, f"verify ({fe} front end)") for fe, d in decisions.items()
        },
        "chip_auth": {
            "target_ms": CHIP_AUTH_TARGET_MS,
            "median_ms": chip_ms,
            "worst_median_ms": max(chip_ms.values()),
            "met": max(chip_ms.values()) <= CHIP_AUTH_TARGET_MS,
            "share_of_verify": max(chip_ms.values()) / med[verify],
        },
        "inputs": [
            {"live": x["live_path"], "chip": x["chip_path"], "chip_bytes": len(x["chip_bytes"])}
            for x in inputs
        ],
        "throughput": {
            "live_faces_per_second": 1000.0 / per_face_ms,
            "live_faces_per_second_per_core": 1000.0 / per_face_ms / threads,
            "live_faces_per_second_per_core_embed_batch8": 1000.0 / per_face_b8_ms / threads,
            "verifications_per_second": 1000.0 / med[verify],
            "verifications_per_second_per_core": 1000.0 / med[verify] / threads,
            # CPU seconds per face: what one core can do when it is not shared (robust to load)
            "live_faces_per_cpu_second": 1000.0 / per_face_cpu,
            "live_faces_per_cpu_second_embed_batch8": 1000.0 / per_face_b8_cpu,
            "verifications_per_cpu_second": 1000.0 / cpu[verify],
            "note": f"default front end ({default}); one live face = detect 640x480 + align + "
            "embed (medians); per core = / threads",
        },
    }


def run(quick: bool, out_dir: Path, threads_list: tuple[int, ...] = (1, 2),
        runs: int | None = None) -> dict:
    runs = runs or (10 if quick else 60)
    n_inputs = 4 if quick else 8  # genuine pairs; as many impostor pairs are added
    results = {}
    load_before = os.getloadavg()
    n_stages = 7 + 5 * len(FrontEnd) + 1 + len(CHIP_AUTH_KINDS)
    with common.progress_bar("timing stages", n_stages * len(threads_list)) as advance:
        for t in threads_list:
            results[str(t)] = run_threads(t, runs, n_inputs, advance)
    load_after = os.getloadavg()
    rows = []
    for name in results[str(threads_list[0])]["stages"]:
        row: list[Any] = [name]
        for t in threads_list:
            st = results[str(t)]["stages"][name]
            row += [st["median_ms"], st["p99_ms"], st["cpu_median_ms"]]
        rows.append(row)
    cols = ["stage"]
    for t in threads_list:
        cols += [f"median ms (t={t})", f"p99 ms (t={t})", f"CPU ms (t={t})"]
    common.print_table(f"Stage latency ({runs} runs each)", cols, rows)
    common.print_table(
        "Throughput",
        ["threads", "faces/s", "faces/s/core", "faces/CPU-s", "faces/CPU-s (b8)", "verify/s"],
        [
            [
                t,
                results[str(t)]["throughput"]["live_faces_per_second"],
                results[str(t)]["throughput"]["live_faces_per_second_per_core"],
                results[str(t)]["throughput"]["live_faces_per_cpu_second"],
                results[str(t)]["throughput"]["live_faces_per_cpu_second_embed_batch8"],
                results[str(t)]["throughput"]["verifications_per_second"],
            ]
            for t in threads_list
        ],
    )
    payload = {
        "settings": {
            "quick": quick,
            "runs_per_stage": runs,
            "warmup_runs": WARMUP,
            "inputs_cycled": n_inputs,
            "live_frame": "real photo resized + letterboxed to 640x480, JPEG q90",
            "chip": "240x320 JPEG 2000, 10-20 KB, rendered as in the chip benchmark",
            "onnxruntime_threads": list(threads_list),
            "onnxruntime_thread_setting": (
                "PipelineConfig(threads=N): intra_op_num_threads=N, inter_op_num_threads=1, "
                "sequential execution, one session per model"
            ),
            "load_average_before": list(load_before),
            "load_average_after": list(load_after),
            "note": (
                "wall-clock (perf_counter) and process CPU time (process_time) per call; on a "
                "shared machine other work inflates wall-clock figures, CPU time much less"
            ),
            "contended": max(load_before[0], load_after[0]) > (os.cpu_count() or 1),
        },
        "model_versions": results[str(threads_list[0])]["model_versions"],
        "results": results,
    }
    common.write_result(out_dir, "stages", payload)
    return payload


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def _after_capture_lines(results: dict, threads: list[str]) -> list[str]:
    """Prepared chip against one-shot, per thread count (results before issue 23 have none)."""
    first = results[threads[0]]
    if "after_capture" not in first:
        return []
    op = first["operating_point"]
    return [
        f"Embedder `{first['embedder']}`, operating point FMR {op['fmr']:g} (threshold "
        f"{f(op['threshold'])}), front end {first['default_front_end']}. After the capture = "
        "the live path against a chip prepared before it (`Verifier.prepare`, `POST /v1/chip`); "
        "one-shot = both images.",
        "",
        *table(
            ["threads", "after capture median ms", "after capture CPU ms", "one-shot median ms",
             "one-shot CPU ms", f"target {f(first['after_capture']['target_median_ms'])} ms"],
            [[t, a["median_ms"], a["cpu_median_ms"], a["one_shot_median_ms"],
              a["one_shot_cpu_median_ms"],
              "met" if a["met_wall"] else ("met in CPU time" if a["met_cpu"] else "**not met**")]
             for t in threads for a in [results[t]["after_capture"]]],
        ),
    ]


def section(path: Path, doc: dict) -> list[str]:
    s = doc.get("settings", {})
    out = ["## Stage latency", "", source_line(path, doc), ""]
    out.append(
        f"{s.get('runs_per_stage')} timed runs per stage after {s.get('warmup_runs')} warm-up "
        f"runs, cycling over {s.get('inputs_cycled')} real photo pairs; live frame: "
        f"{s.get('live_frame')}; chip: {s.get('chip')}. onnxruntime: "
        f"{s.get('onnxruntime_thread_setting')}. Load average before/after: "
        f"{load_text(s.get('load_average_before'))} / {load_text(s.get('load_average_after'))}. "
        f"{s.get('note', '')}"
    )
    out.append("")
    results = doc["results"]
    threads = list(results)
    out += _after_capture_lines(results, threads)
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
