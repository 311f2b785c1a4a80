"""Converted models against their source runtime, on real face crops from the shared sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biometric import config
from biometric.decode import read_image
from biometric.embed import Embedder
from biometric.manifest import load_manifest
from biometric.modelbuild import sources
from biometric.modelbuild.fetch import extract_file, sha256_of
from biometric.onnx_session import open_session
from biometric.pipeline import CHIP, Pipeline


def _real_face_crops(pipeline: Pipeline, embedder: Embedder, data_dir: Path) -> np.ndarray:
    paths = sorted((data_dir / "fr_examples" / "identities").glob("*/*"))
    paths += sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::40]
    crops = []
    for p in paths:
        rgb = read_image(p).rgb
        analysis = pipeline.analyse(rgb, CHIP)
        if analysis.subject is not None:
            crops.append(embedder.align(rgb, analysis.subject.landmarks))
    assert len(crops) >= 20
    return np.asarray(crops)


def test_mobilefacenet_onnx_matches_tflite(pipeline: Pipeline, data_dir: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    tflite = extract_file(sources.MOBILEFACENET_TFLITE, config.model_cache_dir())
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = int(inp["shape"][0])  # the source graph is fixed at batch 2

    spec = pipeline.manifest.embedder_spec("mobilefacenet")
    crops = _real_face_crops(pipeline, Embedder(spec, pipeline.models_dir), data_dir)
    crops = crops[: len(crops) // batch * batch]
    x = (crops.astype(np.float32) - 127.5) / 128.0
    session = open_session(pipeline.models_dir / spec.file)
    ours = session.run([spec.output_name], {spec.input_name: x.transpose(0, 3, 1, 2).copy()})[0]
    ref = []
    for i in range(0, len(x), batch):
        interpreter.set_tensor(inp["index"], x[i : i + batch])
        interpreter.invoke()
        ref.append(interpreter.get_tensor(outp["index"]).copy())
    theirs = np.concatenate(ref)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    max_abs = float(np.abs(ours - theirs).max())
    print(
        f"\nMobileFaceNet parity on {len(x)} real faces: min cosine {cos.min():.7f}, "
        f"max abs diff {max_abs:.2e}"
    )
    assert cos.min() >= 0.9999
    assert max_abs <= 1e-3


def test_manifest_records_provenance_and_thresholds() -> None:
    manifest = load_manifest(config.models_dir())
    for entry in manifest.models:
        assert entry.source.license
        assert sha256_of(config.models_dir() / entry.file) == entry.sha256
    embedder = manifest.get(manifest.primary_embedder)
    assert embedder.template is not None and len(embedder.template) == 5
    assert embedder.threshold_for(manifest.default_fmr).impostor_pairs > 10_000
