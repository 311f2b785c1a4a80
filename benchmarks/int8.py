"""Faster forms of each embedder against its float32 source, on the same crops: static int8
(QDQ, per-channel; :mod:`biometric.modelbuild.quantise`) and fp32 optimised offline.

Every image of the judged sets and of the calibration sets is detected once (fast front end)
and aligned for each embedder. Calibration uses :data:`~biometric.modelbuild.quantise.CALIBRATION`
(kpop_idols, fr_examples, every 10th yaleb_moderate image); the judges are lfw_dev and the
East-Asian sets the calibration never saw (lfw_dev_asian, asian_celeb, vn_celeb_toy; also
pooled, people kept apart by set: alone they are too small for FMR 1e-3). Per set and per FMR
(1e-3, 1e-4, where the set has at least 10/FMR impostor pairs): TAR of each model at its own
threshold, float32's Wilson 95 % interval, and the FMR int8 gives at float32's threshold (what
a switch to int8 gives until ``biometric models calibrate`` refits the thresholds on the form
that runs). Both forms start from the float32 source, whichever ships. int8 ships only where it
is faster and its TAR
is within float32's interval at both FMRs on every judged set; otherwise the float32 form whose
CPU time is lowest. CPU times (``time.process_time``, one thread, batch of 1) hold on a loaded
machine where wall times do not.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy, common
from benchmarks.markdown import f, source_line, table
from biometric.decode import read_image
from biometric.embed import Embedder
from biometric.errors import ImageDecodeError
from biometric.modelbuild.quantise import CALIBRATION, optimise, quantise_static
from biometric.pipeline import CHIP, FrontEnd
from biometric.rates import threshold_at_fmr

JUDGES = ("lfw_dev", "lfw_dev_asian", "asian_celeb", "vn_celeb_toy")
# The East-Asian judges are too small alone for FMR 1e-3 (asian_celeb: 6,555 impostor pairs);
# pooled (people kept apart by set) they support it.
EAST_ASIAN = ("lfw_dev_asian", "asian_celeb", "vn_celeb_toy")
POOLED = "east_asian_pooled"
EMBEDDERS = ("mobilefacenet", "dlib_resnet", "sface")
TAR_FMRS = (1e-3, 1e-4)
MIN_IMPOSTORS_PER_FMR = 10  # a set supports an FMR with at least 10/FMR impostor pairs
SPEED_RUNS = 60
# int8 must save at least this share of float32's CPU per crop to be worth a second model file.
MIN_SAVING = 0.10


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [float(c - h), float(c + h)]


def _speed(emb: Embedder, crops: np.ndarray) -> dict[str, float]:
    emb.embed_crops(crops[:1])
    wall, cpu = [], []
    for k in range(SPEED_RUNS):
        c, w = time.process_time(), time.perf_counter()
        emb.embed_crops(crops[k % len(crops)][None])
        wall.append((time.perf_counter() - w) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    return {"median_ms": float(np.median(wall)), "cpu_median_ms": float(np.median(cpu))}


def _set_figures(vecs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    sims = {tag: v @ v.T for tag, v in vecs.items()}
    genuine = {t: x[same & upper] for t, x in sims.items()}
    impostor = {t: x[~same & upper] for t, x in sims.items()}
    n_gen, n_imp = len(genuine["fp32"]), len(impostor["fp32"])
    out: dict[str, Any] = {"genuine_pairs": n_gen, "impostor_pairs": n_imp, "fmrs": {}}
    for fmr in TAR_FMRS:
        if n_gen == 0 or n_imp < MIN_IMPOSTORS_PER_FMR / fmr:
            continue
        fig: dict[str, Any] = {}
        thr32 = threshold_at_fmr(impostor["fp32"], fmr)
        for tag in vecs:
            k_tar = int((genuine[tag] >= threshold_at_fmr(impostor[tag], fmr)).sum())
            k_fm = int((impostor[tag] >= thr32).sum())
            fig[tag] = {"tar": k_tar / n_gen, "tar_ci": wilson(k_tar, n_gen),
                        "fmr_at_fp32_threshold": k_fm / n_imp}
        fig["holds"] = bool(fig["int8"]["tar"] >= fig["fp32"]["tar_ci"][0])
        out["fmrs"][f"{fmr:g}"] = fig
    cos = (vecs["fp32"] * vecs["int8"]).sum(axis=1)
    out["cosine_fp32_int8"] = {"min": float(cos.min()), "median": float(np.median(cos))}
    out["holds"] = all(f["holds"] for f in out["fmrs"].values())
    return out


def _acquire(pipeline, sets, embedders: dict[str, Embedder]):
    """Crops per embedder, with each crop's set, label and whether it calibrates."""
    crops: dict[str, list[np.ndarray]] = {n: [] for n in embedders}
    set_of, label_of, calib = [], [], []
    seen: dict[Path, list[np.ndarray] | None] = {}  # lfw_dev_asian repeats lfw_dev's photos
    total = sum(len(s.images) for s in sets)
    with common.progress_bar("detect + align", total) as advance:
        for s in sets:
            stride = CALIBRATION.get(s.name, 0)
            for k, (path, label) in enumerate(zip(s.images, s.labels, strict=True)):
                advance(1)
                if path not in seen:
                    seen[path] = None
                    try:
                        rgb = read_image(path).rgb
                    except ImageDecodeError:  # a failure to acquire, as in evaluation
                        continue
                    subject = pipeline.analyse(rgb, CHIP).subject
                    if subject is not None:
                        seen[path] = [e.align(rgb, subject.landmarks) for e in embedders.values()]
                aligned = seen[path]
                if aligned is None:
                    continue
                if stride and k % stride == 0:
                    calib.append(len(set_of))
                set_of.append(s.name)
                label_of.append(label)
                for n, crop in zip(embedders, aligned, strict=True):
                    crops[n].append(crop)
    return ({n: np.asarray(c) for n, c in crops.items()}, np.asarray(set_of),
            np.asarray(label_of), calib)


def _embed(e: Embedder, batch: np.ndarray) -> np.ndarray:
    return np.concatenate([e.embed_crops(batch[i : i + 32]) for i in range(0, len(batch), 32)])


def run(quick: bool, out_dir: Path) -> dict:
    pipeline = common.make_pipeline(threads=1, front_end=FrontEnd.BLAZEFACE)
    wanted = set(JUDGES) | set(CALIBRATION)
    sets = [s for s in accuracy.load_sets(quick) if s.name in wanted]
    # Each embedder's float32 source, whatever form ships: int8 is built and judged from it.
    embedders = {
        n: Embedder(pipeline.manifest.embedder_spec(n, float32=True), pipeline.models_dir)
        for n in EMBEDDERS
    }
    crops, set_arr, label_arr, calib = _acquire(pipeline, sets, embedders)
    judged = np.isin(set_arr, JUDGES)
    payload: dict[str, Any] = {
        "settings": {
            "quick": quick,
            "quantisation": "onnxruntime quantize_static: QDQ, per-channel int8 weights, "
            "uint8 activations, MinMax calibration",
            "calibration": f"{len(calib)} aligned faces: "
            + ", ".join(f"{n} (every {k})" if k > 1 else n for n, k in CALIBRATION.items()),
            "judges": list(JUDGES),
            "front_end": "blazeface (landmarks for alignment)",
            "rule": "int8 ships when it saves at least "
            f"{MIN_SAVING:.0%} CPU per crop and its TAR at FMR "
            + " and ".join(f"{f:g}" for f in TAR_FMRS)
            + " is within float32's Wilson 95% interval on every judged set (an FMR is judged "
            f"where the set has at least {MIN_IMPOSTORS_PER_FMR}/FMR impostor pairs)",
            "load_average_at_start": os.getloadavg()[0],
        },
        "model_versions": pipeline.model_versions,
        "embedders": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n, emb in embedders.items():
            batch = crops[n]
            src = pipeline.models_dir / emb.spec.file
            int8_file, opt_file = Path(tmp) / f"{n}-int8.onnx", Path(tmp) / f"{n}-opt.onnx"
            quantise_static(src, int8_file, emb.spec.input_name,
                            (emb.network_input(batch[i : i + 1]) for i in calib))
            optimise(src, opt_file)
            forms = {
                "fp32": emb,
                "fp32_offline": Embedder(dataclasses.replace(emb.spec, file=str(opt_file)),
                                         pipeline.models_dir),
                "int8": Embedder(dataclasses.replace(emb.spec, file=str(int8_file)),
                                 pipeline.models_dir),
            }
            speed = {tag: _speed(e, batch) for tag, e in forms.items()}
            few = batch[calib]  # parity of the offline form on a few hundred faces
            parity = (_embed(forms["fp32"], few) * _embed(forms["fp32_offline"], few)).sum(1)
            entry: dict[str, Any] = {
                "speed_batch1": speed,
                "bytes": {tag: (pipeline.models_dir / e.spec.file).stat().st_size
                          for tag, e in forms.items()},
                "fp32_offline_min_cosine": float(parity.min()),
                "load_average": os.getloadavg()[0],
            }
            saving = 1 - speed["int8"]["cpu_median_ms"] / speed["fp32"]["cpu_median_ms"]
            entry["int8_cpu_saving"] = saving
            if saving >= MIN_SAVING:  # accuracy judged only where int8 would pay
                vecs = {tag: _embed(forms[tag], batch[judged]) for tag in ("fp32", "int8")}
                per_set = {}
                sets_j = set_arr[judged]
                people = np.char.add(np.char.add(sets_j.astype(str), "/"),
                                     label_arr[judged].astype(str))
                for name in (*JUDGES, POOLED):
                    keep = np.isin(sets_j, EAST_ASIAN) if name == POOLED else sets_j == name
                    if keep.any():
                        per_set[name] = _set_figures({t: v[keep] for t, v in vecs.items()},
                                                     people[keep])
                entry["sets"] = per_set
                entry["holds_on_every_set"] = all(f["holds"] for f in per_set.values())
            else:
                entry["sets"] = {}
                entry["holds_on_every_set"] = None
            # The offline form is the same graph (onnxruntime applies these optimisations when
            # a session opens): it ships only if it saves as much as int8 must.
            offline = 1 - speed["fp32_offline"]["cpu_median_ms"] / speed["fp32"]["cpu_median_ms"]
            fp32_best = "fp32_offline" if offline >= MIN_SAVING else "fp32"
            entry["ships"] = "int8" if entry["holds_on_every_set"] else fp32_best
            payload["embedders"][n] = entry
    rows = []
    for n, e in payload["embedders"].items():
        sp = e["speed_batch1"]
        rows.append([n, sp["fp32"]["cpu_median_ms"], sp["fp32_offline"]["cpu_median_ms"],
                     sp["int8"]["cpu_median_ms"], e["holds_on_every_set"], e["ships"]])
        for s_name, fig in e["sets"].items():
            for fmr, x in fig["fmrs"].items():
                rows.append([f"  {s_name} @{fmr}", x["fp32"]["tar"], "", x["int8"]["tar"],
                             x["holds"], f"ci {x['fp32']['tar_ci'][0]:.4f}"])
    common.print_table("faster forms vs float32 (same crops)",
                       ["embedder / set", "fp32 ms | TAR", "fp32 offline ms", "int8 ms | TAR",
                        "holds", "ships"], rows)
    common.write_result(out_dir, "int8", payload)
    return payload


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def section(path: Path, doc: dict) -> list[str]:
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
