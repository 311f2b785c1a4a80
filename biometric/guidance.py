"""Guided capture: one short instruction for the person in front of the camera.

The counter page sends a small camera frame a few times a second; :func:`check_capture` runs
detection and the live quality bounds on it (no embedding, nothing stored) and
:func:`instruction_for` turns the violated bounds into the single most useful instruction:
what blocks a usable photo first (no face, a second person), then distance, pose, light,
blur, centring. ``GOOD`` means the frame would pass the live quality bounds as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from biometric.decide import RetakeReason
from biometric.pipeline import LIVE, FaceAnalysis, Pipeline, Timer


class Instruction(StrEnum):
    NO_FACE = "no_face"
    ONE_PERSON = "one_person"
    MOVE_CLOSER = "move_closer"
    FACE_CAMERA = "face_camera"
    MORE_LIGHT = "more_light"
    LESS_LIGHT = "less_light"
    HOLD_STILL = "hold_still"
    CENTRE = "centre"
    GOOD = "good"


# Most blocking first: a person can act on one instruction at a time.
_BY_REASON: tuple[tuple[RetakeReason, Instruction], ...] = (
    (RetakeReason.NO_FACE, Instruction.NO_FACE),
    (RetakeReason.SEVERAL_FACES, Instruction.ONE_PERSON),
    (RetakeReason.FACE_TOO_SMALL, Instruction.MOVE_CLOSER),
    (RetakeReason.HEAD_TURNED, Instruction.FACE_CAMERA),
    (RetakeReason.HEAD_TILTED_UP_DOWN, Instruction.FACE_CAMERA),
    (RetakeReason.HEAD_TILTED_SIDEWAYS, Instruction.FACE_CAMERA),
    (RetakeReason.TOO_DARK, Instruction.MORE_LIGHT),
    (RetakeReason.LOW_CONTRAST, Instruction.MORE_LIGHT),
    (RetakeReason.TOO_BRIGHT, Instruction.LESS_LIGHT),
    (RetakeReason.TOO_BLURRY, Instruction.HOLD_STILL),
    (RetakeReason.FACE_NOT_CENTERED, Instruction.CENTRE),
)


def instruction_for(reason_codes: list[str]) -> Instruction:
    """The first instruction, in order of what blocks a usable photo most."""
    codes = set(reason_codes)
    for reason, instruction in _BY_REASON:
        if reason.value in codes:
            return instruction
    # A reason this module does not know (added later) still must not read as "good".
    return Instruction.HOLD_STILL if codes else Instruction.GOOD


@dataclass(frozen=True)
class CaptureCheck:
    instruction: Instruction
    analysis: FaceAnalysis
    timings_ms: dict[str, float]

    @property
    def ready(self) -> bool:
        return self.instruction is Instruction.GOOD


def check_capture(pipeline: Pipeline, rgb: np.ndarray, scale: float = 1.0) -> CaptureCheck:
    """Detection and live quality on a preview frame. ``scale`` is the full capture's width
    over this frame's width: the page sends a reduced frame, and the face-size bound applies to
    the photo that will be taken, not to the preview."""
    if not scale >= 1.0:
        raise ValueError(f"scale must be >= 1 (full width / frame width), got {scale}")
    live = pipeline.settings.quality[LIVE]
    bounds = replace(live, min_inter_eye_px=live.min_inter_eye_px / scale)
    timer = Timer()
    analysis = pipeline.analyse(rgb, LIVE, timer, bounds=bounds)
    instruction = instruction_for([r.code for r in analysis.reasons])
    return CaptureCheck(instruction, analysis, timer.ms)
