"""Faster forms of an embedder: static int8 (QDQ, per-channel) and fp32 optimised offline.

int8: onnxruntime's static quantisation, QDQ format, per-channel int8 weights, uint8
activations, their ranges calibrated on real aligned faces (:data:`CALIBRATION`). Whether an
int8 model may replace its float32 source is decided by ``benchmarks/int8.py`` on photos the
calibration never saw (TAR at FMR 1e-3 and 1e-4 on lfw_dev and the East-Asian sets must not fall
below float32's 95 % interval).

fp32: onnxruntime's graph optimisations (constant folding, BatchNorm folded into Conv, Conv +
activation fusion, redundant node elimination) applied once and saved (``optimise``), at the
EXTENDED level: the ALL level adds a CPU-specific memory layout (NCHWc) that onnxruntime
documents as unsafe to save for other hardware, so it is still applied when a session opens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from biometric.manifest import QuantisedForm
    from biometric.pipeline import Pipeline

METHOD = ("onnxruntime quantize_static: QDQ, per-channel int8 weights, uint8 activations, "
          "MinMax calibration")
# Photos per person when the calibration sets are listed (as the int8 benchmark's sets).
CALIBRATION_CAP = 10

# Calibration faces: sets never used to judge int8 (lfw_dev, lfw_dev_asian, asian_celeb and
# vn_celeb_toy are the judges), with East-Asian faces (kpop_idols, every image) beside
# fr_examples and every 10th yaleb_moderate image (grey, hard light: the activation ranges then
# cover it). set name -> stride.
CALIBRATION = {"kpop_idols": 1, "fr_examples": 1, "yaleb_moderate": 10}


def calibration_inputs(pipeline: Pipeline, name: str, data_dir: Path) -> Iterator[np.ndarray]:
    """The network inputs of the calibration faces for embedder ``name``: every
    :data:`CALIBRATION` set's ``stride``-th image (listed as the int8 benchmark lists them),
    detected by the pipeline's front end and aligned for that embedder; photos without a face
    are skipped."""
    from biometric.decode import read_image
    from biometric.embed import Embedder
    from biometric.errors import ImageDecodeError
    from biometric.evaluation import discover_sets
    from biometric.pipeline import CHIP

    # The float32 file aligns and feeds the calibration faces: the int8 file is what is being
    # built (a fresh install has none yet).
    embedder = Embedder(pipeline.manifest.embedder_spec(name, float32=True), pipeline.models_dir)
    for s in discover_sets(data_dir, CALIBRATION_CAP):
        stride = CALIBRATION.get(s.name, 0)
        for path in s.images[::stride] if stride else []:
            try:
                rgb = read_image(path).rgb
            except ImageDecodeError:
                continue
            subject = pipeline.analyse(rgb, CHIP).subject
            if subject is not None:
                crop = embedder.align(rgb, subject.landmarks)
                yield embedder.network_input(crop[None])


def build_int8(pipeline: Pipeline, name: str, data_dir: Path, judged: dict) -> QuantisedForm:
    """Quantise embedder ``name`` next to its float32 file (``<name>.int8.onnx``) and describe
    it for the manifest; ``judged``: the int8 benchmark's verdict it ships on."""
    from biometric.manifest import QuantisedForm
    from biometric.modelbuild.fetch import sha256_of

    entry = pipeline.manifest.get(name)
    dst = pipeline.models_dir / f"{name}.int8.onnx"
    quantise_static(pipeline.models_dir / entry.file, dst, entry.facts["input_name"],
                    calibration_inputs(pipeline, name, data_dir))
    return QuantisedForm(
        file=dst.name, sha256=sha256_of(dst), method=METHOD,
        calibration=", ".join(f"{n} (every {k})" if k > 1 else n
                              for n, k in CALIBRATION.items()),
        judged=judged,
    )


def _opset13(src: Path, dst: Path) -> Path:
    """``src`` converted to opset 13 when older: per-channel DequantizeLinear (its axis
    attribute) needs it."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(src))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 13:
        return src
    onnx.save(version_converter.convert_version(model, 13), str(dst))
    return dst


def quantise_static(src: Path, dst: Path, input_name: str,
                    batches: Iterable[np.ndarray]) -> None:
    """Write the static int8 (QDQ, per-channel) form of ``src`` to ``dst``; ``batches``: the
    network inputs of the calibration faces."""
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

    upgraded = _opset13(src, dst.with_suffix(".opset.onnx"))
    pre = dst.with_suffix(".pre.onnx")
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
    for tmp in {upgraded, pre} - {src}:
        tmp.unlink(missing_ok=True)


def optimise(src: Path, dst: Path) -> None:
    """Write ``src`` with onnxruntime's EXTENDED graph optimisations applied to ``dst``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])


def rebuild_missing(
    models_dir: Path,
    data_dir: Path,
    record: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """The int8 forms the manifest ships, rebuilt where missing from the same calibration faces;
    a rebuilt file must have the recorded sha256 (as every built model) unless ``record``."""
    from biometric.errors import ModelError
    from biometric.manifest import load_manifest, save_manifest
    from biometric.pipeline import Pipeline

    manifest = load_manifest(models_dir)
    todo = [m for m in manifest.models
            if m.int8 is not None and not (models_dir / m.int8.file).is_file()]
    if not todo:
        return
    pipeline = Pipeline(models_dir)
    for m in todo:
        assert m.int8 is not None
        if on_step:
            on_step(f"{m.name} int8 ({m.int8.file})")
        form = build_int8(pipeline, m.name, data_dir, m.int8.judged)
        if form.sha256 != m.int8.sha256 and not record:
            raise ModelError(f"{m.int8.file}: sha256 {form.sha256[:16]} differs from the "
                             f"manifest's {m.int8.sha256[:16]}; check parity "
                             "(tests/test_quantise.py) and rebuild with --record")
        m.int8 = form
    save_manifest(manifest, models_dir)
