"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) -> ONNX.

Two halves, numpy and ``onnx.helper`` only (dlib itself is never imported):

- a reader for dlib's binary ``serialize()`` format. dlib writes a network as nested C++ layer
  objects; the file carries each layer's parameters and a version string, but *not* the wiring:
  which tag an ``add_prev``/``skip`` refers to and where ``tag`` layers sit exist only in the C++
  type. So, like dlib itself, the reader walks a description of the network type
  (``ANET_TYPE``, transcribed from dlib's ``tools/python/src/face_recognition.cpp``) and checks
  every layer's version string and hyper-parameters against it;
- an emitter that turns the parsed layers into a plain ONNX graph (opset 17): batch-norm /
  affine layers are folded into the convolution before them, dlib's zero-padding ``add_prev``
  of tensors with different channel counts becomes ``Pad`` + ``Add``, ``avg_pool_everything``
  becomes ``GlobalAveragePool`` and ``fc_no_bias`` a ``MatMul``.

Input normalisation is NOT in the graph. dlib's ``input_rgb_image_sized`` computes
``(pixel - avg) / 256`` per channel with avg = (122.782, 117.001, 104.298) for R, G, B (read from
the file); :func:`convert` returns those constants (``mean``, ``std`` = 256) so the pipeline's
embedder applies them the way it does for every other model. The graph input ``input`` is
therefore NCHW float32 RGB, already normalised; the output ``embedding`` [N, 128] is dlib's raw
descriptor, not L2-normalised (dlib compares descriptors by Euclidean distance, threshold 0.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from biometric.errors import ModelError

OPSET = 17
IR_VERSION = 8  # the IR that introduced opset 17; keeps the file loadable by older runtimes
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
BATCH_DIM = "N"

# ---------------------------------------------------------------------------------------------
# The network type, bottom (input) to top (loss), as dlib's templates expand it.
# Each entry is (kind, params); "add_layer" kinds carry parameters in the file, "tag" and
# "skip" are pure wiring.


@dataclass(frozen=True)
class Spec:
    kind: str
    args: tuple[int, ...] = ()


WIRING_KINDS = {"tag", "skip"}


def _block(filters: int, stride: int) -> list[Spec]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, SUBNET>>>>>
    return [
        Spec("con", (filters, 3, 3, stride, stride)),
        Spec("affine"),
        Spec("relu"),
        Spec("con", (filters, 3, 3, 1, 1)),
        Spec("affine"),
    ]


def _ares(filters: int) -> list[Spec]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [Spec("tag", (1,)), *_block(filters, 1), Spec("add_prev", (1,)), Spec("relu")]


def _ares_down(filters: int) -> list[Spec]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        Spec("tag", (1,)),
        *_block(filters, 2),
        Spec("tag", (2,)),
        Spec("skip", (1,)),
        Spec("avg_pool", (2, 2, 2, 2)),
        Spec("add_prev", (2,)),
        Spec("relu"),
    ]


def _anet_type() -> list[Spec]:
    def level(filters: int, down: bool, repeats: int) -> list[Spec]:
        head = _ares_down(filters) if down else []
        return head + [s for _ in range(repeats) for s in _ares(filters)]

    levels = [
        *level(32, False, 3),  # alevel4
        *level(64, True, 3),  # alevel3
        *level(128, True, 2),  # alevel2
        *level(256, True, 2),  # alevel1
        *level(256, True, 0),  # alevel0
    ]
    return [
        Spec("input_rgb_image_sized", (150,)),
        Spec("con", (32, 7, 7, 2, 2)),
        Spec("affine"),
        Spec("relu"),
        Spec("max_pool", (3, 3, 2, 2)),
        *levels,
        Spec("avg_pool", (0, 0, 1, 1)),  # avg_pool_everything
        Spec("fc_no_bias", (128,)),
        Spec("loss_metric"),
    ]


ANET_TYPE: list[Spec] = _anet_type()

# ---------------------------------------------------------------------------------------------
# Primitive decoding (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h).


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError(f"dlib model truncated at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self) -> int:
        # Control byte: low nibble = number of little-endian magnitude bytes, 0x80 = negative.
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8:
            raise ModelError(f"bad dlib integer control byte {ctrl:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def boolean(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise ModelError(f"bad dlib bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def real(self) -> float:
        # float_details: int64 mantissa and int16 exponent; 32000.. flag inf / -inf / nan.
        if self.data[self.pos : self.pos + 1] and self.data[self.pos] & 0x70:
            raise ModelError("dlib's pre-2016 ASCII float encoding is not supported")
        mantissa, exponent = self.integer(), self.integer()
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return specials[exponent] if exponent in specials else math.ldexp(mantissa, exponent)

    def string(self) -> str:
        return self._take(self.integer()).decode("ascii")

    def expect(self, *versions: str) -> str:
        version = self.string()
        if version not in versions:
            raise ModelError(f"expected dlib layer {versions}, found {version!r}")
        return version

    def tensor(self) -> np.ndarray:
        # resizable_tensor: version 2, (num_samples, k, nr, nc), little-endian float32 data.
        if self.integer() != 2:
            raise ModelError("unexpected dlib tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, ...]:
        # alias_tensor: only a shape; the values live in the layer's params tensor.
        if self.integer() != 1:
            raise ModelError("unexpected dlib alias_tensor version")
        return tuple(self.integer() for _ in range(4))

    def version_in(self, allowed: range, what: str) -> int:
        version = self.integer()
        if version not in allowed:
            raise ModelError(f"unexpected version {version} for dlib {what}")
        return version


# ---------------------------------------------------------------------------------------------
# Parsed layers.


@dataclass
class Layer:
    """One layer of the parsed network, bottom-up; ``params`` holds float32 arrays."""

    kind: str
    args: tuple[int, ...] = ()
    params: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, float] = field(default_factory=dict)


def _read_multipliers(s: _Stream, count: int) -> None:
    # Learning-rate / weight-decay multipliers: training-only, skipped.
    for _ in range(count):
        s.real()


def _read_con(s: _Stream, spec: Spec) -> Layer:
    version = s.expect("con_4", "con_5", "con_6")
    params = s.tensor().ravel()
    num_filters, nr, nc, stride_y, stride_x = (s.integer() for _ in range(5))
    pad_y, pad_x = s.integer(), s.integer()
    filters_shape = s.alias_tensor()
    s.alias_tensor()  # biases: shape (1, num_filters), implied
    _read_multipliers(s, 4)
    if version in ("con_5", "con_6"):
        s.boolean()  # use_bias; the params size tells us anyway
    if version == "con_6" and s.boolean():
        raise ModelError("dlib con_ with a fused relu is not supported")
    if (num_filters, nr, nc, stride_y, stride_x) != spec.args:
        raise ModelError(f"dlib con_ {(num_filters, nr, nc, stride_y, stride_x)} != {spec.args}")
    n_weights = int(np.prod(filters_shape))
    weight = params[:n_weights].reshape(filters_shape)  # (out, in, kh, kw): cross-correlation
    bias = params[n_weights:]
    if bias.size not in (0, num_filters):
        raise ModelError("dlib con_ params have an unexpected size")
    if bias.size == 0:
        bias = np.zeros(num_filters, np.float32)
    return Layer(
        "con", spec.args, {"weight": weight, "bias": bias}, {"pad_y": pad_y, "pad_x": pad_x}
    )


def _read_bn_con(s: _Stream) -> dict[str, np.ndarray]:
    """bn_<CONV_MODE> as stored by the training net; dlib converts it to an affine_ on load."""
    params = s.tensor().ravel()
    gamma_shape = s.alias_tensor()
    s.alias_tensor()  # beta, same shape
    s.tensor()  # means of the last training batch
    s.tensor()  # invstds of the last training batch
    running_means = s.tensor().ravel()
    running_variances = s.tensor().ravel()
    s.integer()  # num_updates
    s.integer()  # running_stats_window_size
    _read_multipliers(s, 4)
    eps = np.float32(s.real())
    k = int(np.prod(gamma_shape))
    gamma, beta = params[:k], params[k : 2 * k]
    # Same float32 arithmetic as affine_(const bn_&): g = gamma / sqrt(var + eps), b = beta - g*mean
    scale = gamma / np.sqrt(running_variances + eps)
    shift = beta - scale * running_means
    return {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32)}


def _read_affine(s: _Stream, spec: Spec) -> Layer:
    version = s.expect("bn_con2", "affine_", "affine_2")
    if version == "bn_con2":
        return Layer("affine", spec.args, _read_bn_con(s))
    params = s.tensor().ravel()
    gamma_shape = s.alias_tensor()
    s.alias_tensor()
    mode = s.integer()
    if mode != 0:  # CONV_MODE (0): one scale/shift per channel
        raise ModelError("dlib affine_ in FC_MODE is not supported here")
    if version == "affine_2" and s.boolean():
        raise ModelError("disabled dlib affine_ layers are not supported")
    k = int(np.prod(gamma_shape))
    return Layer("affine", spec.args, {"scale": params[:k], "shift": params[k : 2 * k]})


def _read_relu(s: _Stream, spec: Spec) -> Layer:
    if s.expect("relu_", "relu_2") == "relu_2" and s.boolean():
        raise ModelError("disabled dlib relu_ layers are not supported")
    return Layer("relu")


def _read_pool(s: _Stream, spec: Spec) -> Layer:
    s.expect(f"{spec.kind}_2")
    nr, nc, stride_y, stride_x, pad_y, pad_x = (s.integer() for _ in range(6))
    if (nr, nc, stride_y, stride_x) != spec.args:
        raise ModelError(f"dlib {spec.kind} {(nr, nc, stride_y, stride_x)} != {spec.args}")
    return Layer(spec.kind, spec.args, meta={"pad_y": pad_y, "pad_x": pad_x})


def _read_fc(s: _Stream, spec: Spec) -> Layer:
    version = s.expect("fc_2", "fc_3")
    num_outputs, num_inputs = s.integer(), s.integer()
    params = s.tensor().ravel()
    s.alias_tensor()  # weights: (num_inputs, num_outputs)
    s.alias_tensor()
    if s.integer() != 1:  # FC_NO_BIAS
        raise ModelError("expected dlib fc_ without bias (fc_no_bias)")
    _read_multipliers(s, 4)
    if version == "fc_3":
        s.boolean()
    if num_outputs != spec.args[0]:
        raise ModelError(f"dlib fc_ has {num_outputs} outputs, expected {spec.args[0]}")
    # dlib computes output = input(N x num_inputs) * weights(num_inputs x num_outputs).
    weight = params[: num_inputs * num_outputs].reshape(num_inputs, num_outputs)
    return Layer("fc_no_bias", spec.args, {"weight": weight})


def _read_add_prev(s: _Stream, spec: Spec) -> Layer:
    s.expect("add_prev_")
    return Layer("add_prev", spec.args)


def _read_input(s: _Stream, spec: Spec) -> Layer:
    s.expect("input_rgb_image_sized")
    mean = np.array([s.real() for _ in range(3)], dtype=np.float32)  # R, G, B
    nr, nc = s.integer(), s.integer()
    if (nr, nc) != (spec.args[0], spec.args[0]):
        raise ModelError(f"dlib input is {nr}x{nc}, expected {spec.args[0]}")
    return Layer("input", (nr, nc), {"mean": mean})


def _read_loss(s: _Stream) -> Layer:
    if s.expect("loss_metric_", "loss_metric_2") == "loss_metric_":
        return Layer("loss_metric", meta={"margin": 0.1, "distance_threshold": 0.75})
    margin, threshold = s.real(), s.real()
    return Layer("loss_metric", meta={"margin": margin, "distance_threshold": threshold})


_DETAIL_READERS = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_relu,
    "max_pool": _read_pool,
    "avg_pool": _read_pool,
    "fc_no_bias": _read_fc,
    "add_prev": _read_add_prev,
}


def _read_add_layer_state(s: _Stream, version: int, on_input: bool) -> None:
    """Training state add_layer writes after a layer's details (dlib/dnn/core.h); all skipped."""
    s.boolean()  # this_layer_setup_called
    s.boolean()  # gradient_input_is_stale
    s.boolean()  # get_output_and_gradient_input_disabled
    s.tensor()  # x_grad
    s.tensor()  # cached_output
    if on_input:
        s.tensor()  # grad_final
        if version >= 3:
            s.integer()  # _sample_expansion_factor
    elif version >= 2:
        s.tensor()  # params_grad


def read_dat(data: bytes, net_type: list[Spec] = ANET_TYPE) -> list[Layer]:
    """Parse a serialised dlib network of type ``net_type``; returns layers bottom-up.

    The stream mirrors dlib's recursive ``serialize``: the loss writes its version and details,
    then every wrapper writes its version *before* its sub-network, and an ``add_layer`` writes
    its details *after* it. So: versions top-down, the input layer, then details bottom-up.
    """
    s = _Stream(data)
    *body, loss_spec = net_type
    input_spec, *stack = body
    if loss_spec.kind != "loss_metric" or input_spec.kind != "input_rgb_image_sized":
        raise ModelError("only loss_metric networks on input_rgb_image_sized are supported")
    s.version_in(range(1, 2), "add_loss_layer")
    loss = _read_loss(s)
    versions: list[int] = []
    for i, spec in enumerate(reversed(stack)):
        on_input = i == len(stack) - 1
        if spec.kind in WIRING_KINDS:
            allowed = range(1, 3) if on_input else range(1, 2)
        else:
            allowed = range(2, 4) if on_input else range(1, 3)
        versions.append(s.version_in(allowed, f"{spec.kind} wrapper"))
    versions.reverse()
    layers = [_read_input(s, input_spec)]
    for i, (spec, version) in enumerate(zip(stack, versions, strict=True)):
        if spec.kind in WIRING_KINDS:
            if i == 0:
                raise ModelError("a tag directly on the input layer is not supported")
            layers.append(Layer(spec.kind, spec.args))
            continue
        layers.append(_DETAIL_READERS[spec.kind](s, spec))
        _read_add_layer_state(s, version, on_input=i == 0)
    layers.append(loss)
    if s.pos != len(data):
        raise ModelError(f"{len(data) - s.pos} unread bytes after the dlib network")
    return layers


# ---------------------------------------------------------------------------------------------
# ONNX emission.


Shape = tuple[int, int, int]  # (channels, rows, cols) of one sample


class _GraphBuilder:
    """Accumulates nodes and initialisers with deterministic names, and each tensor's shape.

    Shapes are static apart from the batch; they are tracked because dlib's ``add_prev``
    zero-pads mismatched operands (see _emit_add_prev) and ONNX needs that spelt out.
    """

    def __init__(self, input_shape: Shape) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.shapes: dict[str, Shape] = {INPUT_NAME: input_shape}
        self.tags: dict[int, str] = {}
        self.convs = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], shape: Shape, output: str = "", **attrs) -> str:
        name = f"{op_type.lower()}_{len(self.nodes)}"
        out = output or name
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        self.shapes[out] = shape
        return out


def _window_out(size: int, window: int, stride: int, pad: int) -> int:
    # dlib's conv/pool output size, 1 + (n + 2p - k) / s with integer division (ONNX's floor).
    return 1 + (size + 2 * pad - window) // stride


def _window_attrs(layer: Layer, kernel: tuple[int, int], in_shape: Shape) -> tuple[dict, Shape]:
    stride_y, stride_x = layer.args[-2:] if layer.kind == "con" else layer.args[2:4]
    pad_y, pad_x = int(layer.meta["pad_y"]), int(layer.meta["pad_x"])
    rows = _window_out(in_shape[1], kernel[0], stride_y, pad_y)
    cols = _window_out(in_shape[2], kernel[1], stride_x, pad_x)
    attrs = {
        "kernel_shape": list(kernel),
        "strides": [stride_y, stride_x],
        "pads": [pad_y, pad_x, pad_y, pad_x],
    }
    return attrs, (in_shape[0], rows, cols)


def _fold_affine(con: Layer, affine: Layer) -> tuple[np.ndarray, np.ndarray]:
    # affine(conv(x)) = scale * (W*x + b) + shift = (scale*W)*x + (scale*b + shift), in float64
    # so the only rounding is the final cast to float32.
    scale = affine.params["scale"].astype(np.float64)
    shift = affine.params["shift"].astype(np.float64)
    weight = con.params["weight"].astype(np.float64) * scale[:, None, None, None]
    bias = con.params["bias"].astype(np.float64) * scale + shift
    return weight.astype(np.float32), bias.astype(np.float32)


def _emit_conv(g: _GraphBuilder, x: str, con: Layer, affine: Layer) -> str:
    weight, bias = _fold_affine(con, affine)
    index, g.convs = g.convs, g.convs + 1
    attrs, (_, rows, cols) = _window_attrs(con, weight.shape[2:], g.shapes[x])
    inputs = [x, g.const(f"conv{index}.weight", weight), g.const(f"conv{index}.bias", bias)]
    return g.op("Conv", inputs, (weight.shape[0], rows, cols), **attrs)


def _zero_pad_to(g: _GraphBuilder, x: str, shape: Shape) -> str:
    missing = [want - have for want, have in zip(shape, g.shapes[x], strict=True)]
    if not any(missing):
        return x
    pads = np.array([0, 0, 0, 0, 0, *missing], np.int64)  # NCHW begins, then NCHW ends
    return g.op("Pad", [x, g.const(f"{x}.pads", pads)], shape)


def _emit_add_prev(g: _GraphBuilder, a: str, b: str) -> str:
    # dlib's add_prev (tt::add) adds tensors of different shapes by zero-extending both to the
    # larger size in every dimension, at the end (channels, bottom rows, right columns). In this
    # network that happens where a stage widens (32 -> 64 -> 128 -> 256 channels) and where the
    # unpadded 3x3/2 convolution of an even-sized map is one pixel smaller than the 2x2/2
    # average pool of the shortcut (8x8 -> 3x3 vs 4x4, 4x4 -> 1x1 vs 2x2).
    shape = tuple(max(p, q) for p, q in zip(g.shapes[a], g.shapes[b], strict=True))
    return g.op("Add", [_zero_pad_to(g, a, shape), _zero_pad_to(g, b, shape)], shape)


def _emit_pool(g: _GraphBuilder, x: str, layer: Layer) -> str:
    channels = g.shapes[x][0]
    if layer.args[:2] == (0, 0):  # avg_pool_everything
        return g.op("GlobalAveragePool", [x], (channels, 1, 1))
    attrs, shape = _window_attrs(layer, layer.args[:2], g.shapes[x])
    if layer.kind == "max_pool":
        return g.op("MaxPool", [x], shape, **attrs)
    # dlib averages over the in-image pixels of a window only (padding excluded).
    return g.op("AveragePool", [x], shape, count_include_pad=0, **attrs)


def _emit_layer(g: _GraphBuilder, x: str, layer: Layer) -> str:
    """Emit one layer (affine layers are consumed by _emit_conv); returns the new output."""
    if layer.kind == "relu":
        return g.op("Relu", [x], g.shapes[x])
    if layer.kind == "tag":
        g.tags[layer.args[0]] = x
        return x
    if layer.kind == "skip":
        return g.tags[layer.args[0]]
    if layer.kind == "add_prev":
        return _emit_add_prev(g, x, g.tags[layer.args[0]])
    if layer.kind in ("max_pool", "avg_pool"):
        return _emit_pool(g, x, layer)
    if layer.kind == "fc_no_bias":
        weight = layer.params["weight"]
        if weight.shape[0] != int(np.prod(g.shapes[x])):
            raise ModelError(f"fc_ expects {weight.shape[0]} inputs, gets {g.shapes[x]}")
        flat = g.op("Flatten", [x], (weight.shape[0], 1, 1), axis=1)
        fc_weight = g.const("fc.weight", weight)
        return g.op("MatMul", [flat, fc_weight], (weight.shape[1], 1, 1), OUTPUT_NAME)
    raise ModelError(f"no ONNX mapping for dlib layer {layer.kind!r}")


def _build_graph(layers: list[Layer]) -> _GraphBuilder:
    g = _GraphBuilder((3, *layers[0].args))
    x = INPUT_NAME
    # layers[0] is the input layer (normalisation stays outside the graph), layers[-1] the
    # loss (it does not change the output at inference).
    body = layers[1:-1]
    i = 0
    while i < len(body):
        if body[i].kind == "con":
            if i + 1 == len(body) or body[i + 1].kind != "affine":
                raise ModelError("expected every dlib con_ to be followed by an affine_")
            x = _emit_conv(g, x, body[i], body[i + 1])
            i += 2
        else:
            x = _emit_layer(g, x, body[i])
            i += 1
    if x != OUTPUT_NAME:
        raise ModelError("the network must end in fc_no_bias")
    return g


def build_onnx(layers: list[Layer], doc: str = "") -> onnx.ModelProto:
    """ONNX model for parsed dlib layers: ``input`` [N,3,H,W] -> ``embedding`` [N,D]."""
    nr, nc = layers[0].args
    embedding_size = layers[-2].params["weight"].shape[1]
    g = _build_graph(layers)
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, 3, nr, nc])],
        [
            helper.make_tensor_value_info(
                OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, embedding_size]
            )
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="biometric.modelbuild.dlib_resnet",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _short_float(value: float) -> float:
    # The float32 read from the file, written with the fewest digits that round-trip to it,
    # so the manifest shows 122.782 rather than 122.78199768066406.
    return float(str(np.float32(value)))


def preprocessing_facts(layers: list[Layer]) -> dict:
    """What the pipeline must do around the ONNX graph, for the model manifest."""
    nr, nc = layers[0].args
    loss = layers[-1]
    return {
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": [nc, nr],  # width, height
        "channels": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "mean": [_short_float(v) for v in layers[0].params["mean"]],
        "std": [256.0, 256.0, 256.0],
        "scale": 1.0 / 256.0,
        "normalisation_in_graph": False,
        "embedding_size": int(layers[-2].params["weight"].shape[1]),
        "l2_normalized": False,
        "distance": "euclidean",
        "distance_threshold": _short_float(loss.meta["distance_threshold"]),
        "alignment": "dlib get_face_chip_details(5-point shape, size=150, padding=0.25), "
        "bilinear chip extraction (biometric.modelbuild.dlib_chip)",
    }


def convert(dat_path: Path, onnx_path: Path) -> dict:
    """Convert dlib's ``.dat`` network to ONNX at ``onnx_path``; returns preprocessing facts."""
    data = Path(dat_path).read_bytes()
    layers = read_dat(data)
    model = build_onnx(layers, doc=f"converted from {Path(dat_path).name} (dlib serialisation)")
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(onnx_path))
    return preprocessing_facts(layers)
