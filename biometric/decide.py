"""Turn a similarity score into a decision staff can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    RETAKE = "retake"


class RetakeReason(StrEnum):
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    FACE_TOO_SMALL = "face_too_small"


# What counter staff read; phrased as an instruction, not a diagnosis.
REASON_TEXT = {
    RetakeReason.NO_FACE: "No face found. Ask the person to face the camera.",
    RetakeReason.SEVERAL_FACES: (
        "More than one face in view. Only the card holder should be in frame."
    ),
    RetakeReason.FACE_TOO_SMALL: "Face too small. Ask the person to come closer to the camera.",
}


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the false-match rate it was calibrated for (ISO/IEC 19795-1 terms)."""

    threshold: float
    fmr: float


@dataclass(frozen=True)
class Reason:
    code: str
    image: str  # "live" or "chip"
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "image": self.image, "message": self.message}


def decide(score: float | None, point: OperatingPoint, reasons: list[Reason]) -> Decision:
    if reasons or score is None:
        return Decision.RETAKE
    return Decision.MATCH if score >= point.threshold else Decision.NO_MATCH
