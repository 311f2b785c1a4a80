"""Turn a similarity score, the capture problems and the chip's authenticity into a decision
staff can act on, and the score into one scale staff can read."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from biometric.i18n import translate


class Decision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    RETAKE = "retake"  # the live capture cannot be used: the citizen can fix it (reasons say how)
    # The chip portrait has no usable face: nobody can retake it, staff check identity by hand.
    MANUAL_CHECK = "manual_check"
    # Passive authentication failed (the chip's data is not what the issuer signed): whatever
    # the faces say, staff follow the agency's procedure for a suspect card.
    CHIP_UNTRUSTED = "chip_untrusted"
    REFUSED = "refused"  # policy "block": the chip could not be checked, so it is not used


class ChipTrust(StrEnum):
    """What passive authentication established about the chip, for the decision."""

    VERIFIED = "verified"  # EF.SOD signed by a trusted Document Signer, hashes equal
    NOT_VERIFIED = "not_verified"  # not checked: no EF.SOD, no trust store, image only, off
    FAILED = "failed"  # hash mismatch, bad signature, untrusted or expired signer


# Chip portrait problems that leave no face to compare (the others, pose and lighting, are
# reported with the chip's quality and the faces are still compared: a chip portrait cannot be
# retaken, and these bounds are already lenient, biometric.quality.CHIP_BOUNDS).
CHIP_UNUSABLE = ("no_face", "face_too_small", "too_blurry")
# Reason codes for an unusable chip portrait: catalogue keys reason.chip_<code>.
CHIP_REASON_PREFIX = "chip_"


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
    it, and the pooled ``threshold`` for any other condition. ``id`` names where they came
    from (:mod:`biometric.operating_point`)."""

    threshold: float
    fmr: float
    by_condition: Mapping[str, float] = field(default_factory=dict)
    id: str = "shipped:unknown"

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


def chip_problems(codes: Sequence[str]) -> list[Reason]:
    """The chip portrait's problems that stop the comparison, as staff reasons (``chip_<code>``:
    check identity by hand, and why); pose or lighting problems of a chip portrait are not
    among them (nobody can retake a chip photo)."""
    return [reason(CHIP_REASON_PREFIX + c, "chip") for c in codes if c in CHIP_UNUSABLE]


@dataclass(frozen=True)
class ScoreScale:
    """One 0-100 score staff can read, the same for verification and duplicate search.

    The raw score (cosine, or the fusion's z-score sum) is mapped through the calibrated
    operating points: a score equal to the threshold for FMR f sits at level -log10(f) (1e-3:
    3), levels between and beyond the points are interpolated (extrapolated) linearly in the
    raw score. The display is 50 * level / level(decision FMR), so the decision threshold always
    shows as 50, and with the default FMR 1e-3 every ~17 points above it mean ten times fewer
    different people scoring that high. The raw score stays in the JSON beside it."""

    points: tuple[OperatingPoint, ...]
    fmr: float  # the operating point the decision uses: shown as 50

    def anchors(self) -> list[tuple[float, float]]:
        """(threshold, level) with thresholds strictly increasing. Where calibration gave one
        threshold for several FMRs (too few impostor pairs to tell them apart), the highest FMR
        (the weaker claim) is kept."""
        out: list[tuple[float, float]] = []
        for p in sorted(self.points, key=lambda p: (p.threshold, -p.fmr)):
            if p.fmr <= 0 or (out and p.threshold <= out[-1][0]):
                continue
            out.append((p.threshold, -math.log10(p.fmr)))
        return out

    def level(self, score: float) -> float | None:
        anchors = self.anchors()
        if len(anchors) < 2:
            return None  # one point gives no slope: only the raw score is shown
        i = 1
        while i < len(anchors) - 1 and score > anchors[i][0]:
            i += 1
        (t0, l0), (t1, l1) = anchors[i - 1], anchors[i]
        return l0 + (score - t0) * (l1 - l0) / (t1 - t0)

    def display(self, score: float | None) -> int | None:
        if score is None:
            return None
        level = self.level(score)
        if level is None:
            return None
        return int(min(100, max(0, round(50 * level / -math.log10(self.fmr)))))
