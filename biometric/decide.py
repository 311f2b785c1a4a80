"""Turn a similarity score into a decision staff can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    RETAKE = "retake"
    REFUSED = "refused"  # the chip's data failed passive authentication (policy "block")


class RetakeReason(StrEnum):
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    # Quality bounds (biometric.quality); the values are the quality module's violation codes.
    FACE_TOO_SMALL = "face_too_small"
    HEAD_TURNED = "head_turned"
    HEAD_TILTED_UP_DOWN = "head_tilted_up_down"
    HEAD_TILTED_SIDEWAYS = "head_tilted_sideways"
    TOO_BLURRY = "too_blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    LOW_CONTRAST = "low_contrast"
    FACE_NOT_CENTERED = "face_not_centered"
    # Liveness (presentation attack detection), only under the "block" policy.
    PRESENTATION_ATTACK = "presentation_attack_suspected"


# What counter staff read; phrased as an instruction, not a diagnosis.
REASON_TEXT = {
    RetakeReason.NO_FACE: "No face found. Ask the person to face the camera.",
    RetakeReason.SEVERAL_FACES: (
        "More than one face in view. Only the card holder should be in frame."
    ),
    RetakeReason.FACE_TOO_SMALL: "Face too small. Ask the person to come closer to the camera.",
    RetakeReason.HEAD_TURNED: "Head turned. Ask the person to look straight at the camera.",
    RetakeReason.HEAD_TILTED_UP_DOWN: "Head tilted up or down. Ask for a level chin.",
    RetakeReason.HEAD_TILTED_SIDEWAYS: "Head tilted sideways. Ask for an upright head.",
    RetakeReason.TOO_BLURRY: "Image blurred. Ask the person to hold still, or clean the lens.",
    RetakeReason.TOO_DARK: "Face too dark. Improve the lighting or face the person to the light.",
    RetakeReason.TOO_BRIGHT: "Face overexposed. Reduce direct light or glare on the face.",
    RetakeReason.LOW_CONTRAST: "Face lacks contrast. Check the lighting and the camera lens.",
    RetakeReason.FACE_NOT_CENTERED: "Face at the edge of the picture. Centre the person in frame.",
    RetakeReason.PRESENTATION_ATTACK: (
        "Possible photo or screen held to the camera. Ask the person to remove anything in "
        "front of the face and retake; call a supervisor if it happens again."
    ),
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
