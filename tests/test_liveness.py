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
from biometric.pipeline import LivenessPolicy, Pipeline, PipelineConfig


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
    result = pipeline.verify(live, chip)
    assert result.decision is Decision.MATCH
    assert result.liveness is not None and result.liveness["policy"] == "warn"
    assert result.liveness["is_live"] is True and "liveness" in result.timings_ms


def test_block_turns_a_suspected_attack_into_a_retake(photos) -> None:
    live, chip = photos
    pipeline = Pipeline(settings=PipelineConfig(liveness=LivenessPolicy.BLOCK))
    result = pipeline.verify(_print_attack(live), chip)
    assert result.liveness is not None and result.liveness["is_live"] is False
    assert result.decision is Decision.RETAKE
    assert "presentation_attack_suspected" in {r.code for r in result.reasons}


def test_off_runs_no_liveness_model(photos, pipeline: Pipeline) -> None:
    result = pipeline.verify(*photos)
    assert pipeline.liveness is None and result.liveness is None
