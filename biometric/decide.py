"""Turn a similarity score into a decision staff can act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

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


def reason_message(code: str, locale: str | None = None, **params: object) -> str:
    """What counter staff read for a retake reason, phrased as an instruction, not a diagnosis
    (catalogue key ``reason.<code>``; ``locale`` None: the service's default)."""
    return translate(f"reason.{code}", locale, **params)


@dataclass(frozen=True)
class OperatingPoint:
    """Thresholds and the false-match rate they were calibrated for (ISO/IEC 19795-1 terms):
    one per capture condition (``biometric.conditions``) where the calibration data supported
    it, and the pooled ``threshold`` for any other condition."""

    threshold: float
    fmr: float
    by_condition: Mapping[str, float] = field(default_factory=dict)

    def threshold_for(self, condition: str | None) -> float:
        if condition is None:
            return self.threshold
        return self.by_condition.get(condition, self.threshold)

    def pair_thresholds(self, conditions: np.ndarray | None, n: int) -> np.ndarray:
        """The threshold each of ``n`` pairs is decided with, from their conditions (None:
        unknown, the pooled threshold for all)."""
        if conditions is None or not self.by_condition:
            return np.full(n, self.threshold, np.float32)
        out = np.full(n, self.threshold, np.float32)
        for condition, threshold in self.by_condition.items():
            out[conditions == condition] = threshold
        return out


@dataclass(frozen=True)
class Reason:
    """Why an image cannot be used: a stable code, the image it is about and the values its
    text needs. The text is chosen at the edges (API, CLI, pages) in the reader's language."""

    code: str
    image: str  # "live" or "chip"
    params: tuple[tuple[str, str], ...] = ()

    def text(self, locale: str | None = None) -> str:
        return reason_message(self.code, locale, **dict(self.params))


def reason(code: str, image: str, **params: object) -> Reason:
    return Reason(str(code), image, tuple((k, str(v)) for k, v in sorted(params.items())))


def decide(
    score: float | None, point: OperatingPoint, reasons: list[Reason], condition: str | None = None
) -> Decision:
    """``condition``: the pair's capture condition, whose threshold applies (None: pooled)."""
    if reasons or score is None:
        return Decision.RETAKE
    return Decision.MATCH if score >= point.threshold_for(condition) else Decision.NO_MATCH
