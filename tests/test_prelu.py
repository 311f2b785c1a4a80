"""The PReLU rewrite (biometric.modelbuild.prelu): the same numbers as the source graphs, on a
SYNTHETIC graph with every kind of slope and on the shipped models' real inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from biometric import config
from biometric.decode import read_image
from biometric.detect import _crops
from biometric.manifest import load_manifest
from biometric.modelbuild import sources
from biometric.modelbuild.fetch import extract_file
from biometric.modelbuild.prelu import vectorise_prelu
from biometric.onnx_session import open_session

# Slopes of every sign and size the shipped models hold (-9.4 to 8.9 in MobileFaceNet).
SLOPES = np.array([-9.0, -0.8, 0.0, 0.25, 1.0, 1.12, 8.9, -1e-3], np.float32)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _synthetic_graph() -> onnx.ModelProto:
    """SYNTHETIC: a convolution's per-channel PReLU (slope C x 1 x 1) and a fully connected
    layer's (slope C), each followed by an operator so that the PReLU is not an output."""
    c = len(SLOPES)
    conv_w = np.random.default_rng(1).normal(size=(c, c, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["y", "a4"], ["p4"]),
        helper.make_node("Conv", ["p4", "w"], ["out4"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["v", "a2"], ["p2"]),
        helper.make_node("Identity", ["p2"], ["out2"]),
    ]
    inits = [
        numpy_helper.from_array(conv_w, "w"),
        numpy_helper.from_array(SLOPES.reshape(c, 1, 1), "a4"),
        numpy_helper.from_array(SLOPES, "a2"),
    ]
    graph = helper.make_graph(
        nodes, "synthetic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 9, 9]),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", c])],
        [helper.make_tensor_value_info("out4", TensorProto.FLOAT, ["N", c, 9, 9]),
         helper.make_tensor_value_info("out2", TensorProto.FLOAT, ["N", c])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_rewrite_gives_the_prelu_results_for_every_slope() -> None:
    rng = np.random.default_rng(0)
    feeds = {"x": rng.normal(scale=3.0, size=(2, len(SLOPES), 9, 9)).astype(np.float32),
             "v": rng.normal(scale=3.0, size=(5, len(SLOPES))).astype(np.float32)}
    source = _synthetic_graph()
    rewritten = _synthetic_graph()
    assert vectorise_prelu(rewritten) == 2
    assert not [n for n in rewritten.graph.node if n.op_type == "PRelu"]
    assert [n.op_type for n in rewritten.graph.node].count("Conv") == 1 + 2 + 1  # depthwise pair
    for ours, theirs in zip(_run(rewritten, feeds), _run(source, feeds), strict=True):
        scale = float(np.abs(theirs).max())
        assert np.abs(ours - theirs).max() <= 1e-6 * scale
    assert vectorise_prelu(rewritten) == 0  # nothing left to rewrite


def _real_photos(data_dir: Path) -> list[np.ndarray]:
    paths = sorted((data_dir / "fr_examples" / "identities").glob("*/*"))[:6]
    paths += sorted((data_dir / "asian_celeb").glob("*/*"))[:: 97][:6]
    return [read_image(p).rgb for p in paths if p.is_file()]


# Input side of each MTCNN net here: P-Net is fully convolutional (any size), R-Net and O-Net
# take 24 and 48 pixel crops.
MTCNN_INPUTS = {"mtcnn_pnet": ("input_1", 96), "mtcnn_rnet": ("input_2", 24),
                "mtcnn_onet": ("input_3", 48)}


def _inputs(name: str, photos: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Real photos as each network's input: the detector's own crops (whole photo as the box)
    for MTCNN, the 0-255 NCHW image for MiniFASNet."""
    if name in MTCNN_INPUTS:
        input_name, size = MTCNN_INPUTS[name]
        whole = [np.array([[0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1]]) for rgb in photos]
        return {input_name: np.concatenate([_crops(rgb, box, size)
                                            for rgb, box in zip(photos, whole, strict=True)])}
    rgb = cv2.resize(photos[0], (128, 128)).astype(np.float32)
    return {"input": rgb.transpose(2, 0, 1)[None].copy()}


@pytest.mark.parametrize(
    ("name", "source"),
    [("mtcnn_pnet", sources.MTCNN_PNET), ("mtcnn_rnet", sources.MTCNN_RNET),
     ("mtcnn_onet", sources.MTCNN_ONET), ("minifasnet", sources.MINIFASNET_ONNX)],
)
def test_shipped_onnx_matches_its_pinned_source_on_real_photos(
    name: str, source: sources.SourceFile, data_dir: Path
) -> None:
    """Models that ship as ONNX: the built file (PReLU rewritten) against the pinned source file
    in the same runtime. SFace and MobileFaceNet are checked against OpenCV and TFLite
    (test_sface.py, test_parity.py)."""
    entry = load_manifest(config.models_dir()).get(name)
    assert entry.source.member_sha256 == source.sha256
    assert entry.facts["prelu_rewritten"] > 0
    shipped = onnx.load(str(config.models_dir() / entry.file))
    assert not [n for n in shipped.graph.node if n.op_type == "PRelu"]
    feeds = _inputs(name, _real_photos(data_dir))
    theirs = open_session(extract_file(source, config.model_cache_dir())).run(None, feeds)
    ours = open_session(config.models_dir() / entry.file).run(None, feeds)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(b).max()))
