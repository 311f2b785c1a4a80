"""Static int8 quantisation of the embedders: accuracy and speed against float32, same crops.

Every image of every set is detected once (fast front end) and aligned for each embedder. Each
embedder is quantised with onnxruntime's static quantisation (QDQ, per-channel int8 weights,
uint8 activations, MinMax calibration) on crops from ``asian_celeb``, ``fr_examples`` and every
10th ``yaleb_moderate`` image; ``lfw_dev`` is never seen by the calibration. Per set: TAR at
FMR 1e-3 (each model at its own threshold, Wilson 95 % interval), and the FMR the int8 model
gives at the float32 model's threshold (the shipped thresholds were calibrated in float32),
with its interval. int8 may replace float32 only where its TAR is not below float32's interval
and its FMR not above it, on every set.
"""

from __future__ import annotations

import dataclasses
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
from biometric.pipeline import CHIP, FrontEnd
from biometric.rates import threshold_at_fmr

CALIBRATION_SETS = ("asian_celeb", "fr_examples")
CALIBRATION_STRIDE = {"yaleb_moderate": 10}
SPEED_RUNS = 50


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [float(c - h), float(c + h)]


def quantise(src: Path, dst: Path, input_name: str, batches: list[np.ndarray]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.items, None)
            return None if x is None else {input_name: x}

    import onnx
    from onnx import version_converter

    model = onnx.load(str(src))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:  # per-channel DequantizeLinear (its axis attribute) needs opset 13
        model = version_converter.convert_version(model, 13)
    upgraded, pre = dst.with_suffix(".opset.onnx"), dst.with_suffix(".pre.onnx")
    onnx.save(model, str(upgraded))
    quant_pre_process(str(upgraded), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


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
    out: dict[str, Any] = {}
    thr32 = None
    for tag in ("fp32", "int8"):
        sims = vecs[tag] @ vecs[tag].T
        genuine, impostor = sims[same & upper], sims[~same & upper]
        thr = threshold_at_fmr(impostor, 1e-3)
        thr32 = thr if thr32 is None else thr32
        k_tar = int((genuine >= thr).sum())
        k_fm = int((impostor >= thr32).sum())
        out[tag] = {
            "tar_at_1e-3": k_tar / len(genuine),
            "tar_ci": wilson(k_tar, len(genuine)),
            "fmr_at_fp32_threshold": k_fm / len(impostor),
            "fmr_ci": wilson(k_fm, len(impostor)),
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
        }
    f32, i8 = out["fp32"], out["int8"]
    out["holds"] = bool(
        i8["tar_at_1e-3"] >= f32["tar_ci"][0]
        and i8["fmr_at_fp32_threshold"] <= f32["fmr_ci"][1]
    )
    cos = (vecs["fp32"] * vecs["int8"]).sum(axis=1)
    out["cosine_fp32_int8"] = {"min": float(cos.min()), "median": float(np.median(cos))}
    return out


def run(quick: bool, out_dir: Path) -> dict:
    pipeline = common.make_pipeline(threads=1, front_end=FrontEnd.BLAZEFACE)
    sets = accuracy.load_sets(quick)
    names = ("dlib_resnet", "mobilefacenet")
    embedders = {
        n: Embedder(pipeline.manifest.embedder_spec(n), pipeline.models_dir) for n in names
    }
    crops: dict[str, list[np.ndarray]] = {n: [] for n in names}
    set_of, label_of, calib = [], [], []
    total = sum(len(s.images) for s in sets)
    with common.progress_bar("detect + align", total) as advance:
        for s in sets:
            stride = CALIBRATION_STRIDE.get(s.name, 1 if s.name in CALIBRATION_SETS else 0)
            for k, (path, label) in enumerate(zip(s.images, s.labels, strict=True)):
                advance(1)
                try:
                    rgb = read_image(path).rgb
                except ImageDecodeError:  # counted as a failure to acquire, as in evaluation
                    continue
                subject = pipeline.analyse(rgb, CHIP).subject
                if subject is None:
                    continue
                if stride and k % stride == 0:
                    calib.append(len(set_of))
                set_of.append(s.name)
                label_of.append(label)
                for n in names:
                    crops[n].append(embedders[n].align(rgb, subject.landmarks))
    set_arr, label_arr = np.asarray(set_of), np.asarray(label_of)
    payload: dict[str, Any] = {
        "settings": {
            "quick": quick,
            "quantisation": "onnxruntime quantize_static: QDQ, per-channel int8 weights, "
            "uint8 activations, MinMax calibration",
            "calibration": f"{len(calib)} crops: {', '.join(CALIBRATION_SETS)}, every "
            f"{CALIBRATION_STRIDE['yaleb_moderate']}th yaleb_moderate image",
            "front_end": "blazeface (landmarks for alignment)",
            "rule": "int8 holds on a set when its TAR@1e-3 is not below float32's Wilson 95% "
            "interval and its FMR at the float32 threshold not above float32's",
        },
        "model_versions": pipeline.model_versions,
        "embedders": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            emb = embedders[n]
            batch = np.asarray(crops[n])
            dst = Path(tmp) / f"{n}-int8.onnx"
            calibration = [emb.network_input(batch[i : i + 1]) for i in calib]
            quantise(pipeline.models_dir / emb.spec.file, dst, emb.spec.input_name, calibration)
            int8 = Embedder(dataclasses.replace(emb.spec, file=str(dst)), pipeline.models_dir)
            vecs = {
                tag: np.concatenate(
                    [e.embed_crops(batch[i : i + 32]) for i in range(0, len(batch), 32)]
                )
                for tag, e in (("fp32", emb), ("int8", int8))
            }
            per_set = {}
            for name in [*dict.fromkeys(set_of), "pooled"]:
                keep = np.ones(len(set_arr), bool) if name == "pooled" else set_arr == name
                per_set[name] = _set_figures({t: v[keep] for t, v in vecs.items()}, label_arr[keep])
            payload["embedders"][n] = {
                "sets": per_set,
                "speed_batch1": {"fp32": _speed(emb, batch), "int8": _speed(int8, batch)},
                "int8_bytes": dst.stat().st_size,
                "holds_on_every_set": all(f["holds"] for f in per_set.values()),
            }
    rows = []
    for n, e in payload["embedders"].items():
        for s, fig in e["sets"].items():
            rows.append(
                [
                    n,
                    s,
                    fig["fp32"]["tar_at_1e-3"],
                    fig["int8"]["tar_at_1e-3"],
                    fig["fp32"]["fmr_at_fp32_threshold"],
                    fig["int8"]["fmr_at_fp32_threshold"],
                    fig["cosine_fp32_int8"]["min"],
                    "yes" if fig["holds"] else "no",
                ]
            )
    common.print_table(
        "int8 vs float32 (same crops)",
        [
            "embedder",
            "set",
            "TAR fp32",
            "TAR int8",
            "FMR fp32",
            "FMR int8 @fp32 thr",
            "min cos",
            "holds",
        ],
        rows,
    )
    common.write_result(out_dir, "int8", payload)
    return payload


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def section(path: Path, doc: dict) -> list[str]:
    s = doc["settings"]
    out = ["## Static int8 quantisation of the embedders", "", source_line(path, doc), ""]
    out.append(
        f"{s['quantisation']}; calibration on {s['calibration']}; alignment from the "
        f"{s['front_end']}. Rule: {s['rule']}. Same crops for both models."
    )
    out.append("")
    rows = []
    for name, e in doc["embedders"].items():
        for set_name, fig in e["sets"].items():
            a, b = fig["fp32"], fig["int8"]
            rows.append(
                [
                    name,
                    set_name,
                    a["genuine_pairs"],
                    a["tar_at_1e-3"],
                    f"{f(a['tar_ci'][0])}-{f(a['tar_ci'][1])}",
                    b["tar_at_1e-3"],
                    a["fmr_at_fp32_threshold"],
                    b["fmr_at_fp32_threshold"],
                    fig["cosine_fp32_int8"]["min"],
                    "yes" if fig["holds"] else "**no**",
                ]
            )
    out += table(
        [
            "embedder",
            "set",
            "genuine pairs",
            "TAR@1e-3 fp32",
            "95% interval",
            "TAR@1e-3 int8",
            "FMR fp32",
            "FMR int8 at fp32 threshold",
            "min cosine fp32/int8",
            "holds",
        ],
        rows,
    )
    speed = []
    for name, e in doc["embedders"].items():
        sp = e["speed_batch1"]
        speed.append(
            [
                name,
                sp["fp32"]["cpu_median_ms"],
                sp["int8"]["cpu_median_ms"],
                "yes" if e["holds_on_every_set"] else "no",
            ]
        )
    out += table(["embedder", "CPU ms fp32 (1 crop)", "CPU ms int8", "ships"], speed)
    return out
