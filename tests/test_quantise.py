"""Shipped int8 embedders (issue 23): the manifest runs them in place of float32, they are the
files it pins, and they embed real faces as float32 does (parity against the float32 source)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from biometric.decode import read_image
from biometric.embed import Embedder
from biometric.manifest import QuantisedForm, load_manifest
from biometric.modelbuild.fetch import sha256_of
from biometric.pipeline import CHIP

# Lowest cosine between the int8 and float32 templates of one face: measured 0.9967 for
# dlib_resnet over 3,110 lfw_dev faces (benchmarks/int8.py, 2026-12-02); 0.99 leaves room for
# other faces without letting a broken quantisation (cosines ~0.9 and below) through.
MIN_COSINE = 0.99


def test_the_manifest_runs_the_int8_form(pipeline) -> None:
    manifest = pipeline.manifest.model_copy(deep=True)
    entry = manifest.get("dlib_resnet")
    entry.int8 = QuantisedForm(file="x.int8.onnx", sha256="ab" * 32, method="m",
                               calibration="c")
    assert manifest.embedder_spec("dlib_resnet").file == "x.int8.onnx"
    assert manifest.versions()["dlib_resnet"] == "ab" * 6
    entry.int8 = None
    assert manifest.embedder_spec("dlib_resnet").file == entry.file


def _shipped() -> list[str]:
    from biometric import config

    return [m.name for m in load_manifest(config.models_dir()).models if m.int8 is not None]


@pytest.mark.parametrize("name", _shipped() or ["none shipped"])
def test_shipped_int8_embeds_like_float32(pipeline, fr_dir: Path, name: str) -> None:
    if name == "none shipped":
        assert all(m.int8 is None for m in pipeline.manifest.models)
        return
    entry = pipeline.manifest.get(name)
    assert sha256_of(pipeline.models_dir / entry.int8.file) == entry.int8.sha256
    int8_spec = pipeline.manifest.embedder_spec(name)
    assert int8_spec.file == entry.int8.file
    fp32 = Embedder(dataclasses.replace(int8_spec, file=entry.file), pipeline.models_dir)
    int8 = Embedder(int8_spec, pipeline.models_dir)
    crops = []
    for path in sorted((fr_dir / "identities").rglob("*.jp*g")):
        rgb = read_image(path).rgb
        subject = pipeline.analyse(rgb, CHIP).subject
        if subject is not None:
            crops.append(fp32.align(rgb, subject.landmarks))
    assert len(crops) >= 8
    cos = (fp32.embed_crops(np.asarray(crops)) * int8.embed_crops(np.asarray(crops))).sum(1)
    assert cos.min() >= MIN_COSINE, cos.min()
