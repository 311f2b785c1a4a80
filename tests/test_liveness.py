"""Liveness policy in the pipeline. The attack image is SYNTHETIC (a printed-photo proxy made
from a real photo: halftone-blurred and framed); it checks the policy mechanics, not the model's
strength (benchmarks report APCER/BPCER)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from biometric.decide import Decision
from biometric.decode import read_image
from biometric.liveness import LivenessPolicy
from biometric.pipeline import Pipeline, PipelineConfig
from biometric.verification import Verifier


@pytest.fixture(scope="module")
def photos(fr_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    ids = fr_dir / "identities" / "obama"
    return read_image(ids / "obama.jpg").rgb, read_image(ids / "obama2.jpg").rgb


def _print_attack(rgb: np.ndarray) -> np.ndarray:
    soft = cv2.GaussianBlur(rgb, (0, 0), 2.5)
    return cv2.copyMakeBorder(soft, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=(245, 245, 240))


def test_warn_reports_liveness_without_changing_the_decision(photos) -> None:
    live, chip = photos
    pipeline = Pipeline(settings=PipelineConfig(liveness=LivenessPolicy.WARN))
    result = Verifier(pipeline).verify_faces(live, chip)
    assert result.decision is Decision.MATCH
    assert result.liveness is not None and result.liveness.policy == "warn"
    assert result.liveness.is_live is True and "liveness" in result.timings_ms
    assert result.liveness.model == pipeline.manifest.default_liveness == "minifasnet"
    assert result.liveness.higher_is_live is True and 0 <= result.liveness.score <= 1


def test_block_turns_a_suspected_attack_into_a_retake(photos) -> None:
    live, chip = photos
    # FaceAntiSpoofing calls this proxy an attack (MiniFASNet, the default, does not at its
    # threshold): the test is about what the policy does with a rejection.
    settings = PipelineConfig(liveness=LivenessPolicy.BLOCK, liveness_model="antispoof")
    pipeline = Pipeline(settings=settings)
    result = Verifier(pipeline).verify_faces(_print_attack(live), chip)
    assert result.liveness is not None and result.liveness.is_live is False
    assert result.decision is Decision.RETAKE
    assert "presentation_attack_suspected" in {r.code for r in result.reasons}


def test_off_runs_no_liveness_model(photos, pipeline: Pipeline) -> None:
    result = Verifier(pipeline).verify_faces(*photos)
    assert pipeline.liveness is None and result.liveness is None


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [
        # Worked by hand from alignLivenessImage (fr_liveness.js): w = h = 100, scale 2.7.
        ((500.0, 400.0, 600.0, 500.0), (1280, 960), (415, 315, 685, 585)),
        # Near the top-left corner: the enlarged box is moved inside, not shrunk.
        ((10.0, 20.0, 110.0, 120.0), (1280, 960), (0, 0, 270, 270)),
        # Small image: the scale drops to (H-1)/h = 2.39; the bottom edge is moved up by 0.5.
        ((75.0, 70.0, 175.0, 170.0), (250, 240), (5, 0, 244, 239)),
    ],
)
def test_minifasnet_crop_follows_the_package(box, size, expected) -> None:
    from biometric.liveness.minifasnet import enlarged_crop_box

    assert enlarged_crop_box(box, *size) == expected
