"""Turn a similarity score into a decision staff can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from biometric.i18n import translate


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


def reason_message(code: str, locale: str | None = None) -> str:
    """What counter staff read for a retake reason, phrased as an instruction, not a diagnosis
    (catalogue key ``reason.<code>``; ``locale`` None: ``BIOMETRIC_LOCALE``)."""
    return translate(f"reason.{code}", locale)


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the false-match rate it was calibrated for (ISO/IEC 19795-1 terms);
    ``id`` names where it came from (:mod:`biometric.operating_point`)."""

    threshold: float
    fmr: float
    id: str = "shipped:unknown"


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
