"""What every liveness model gives and what a verification reports of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np


class LivenessPolicy(StrEnum):
    """What a failed passive liveness check does. Off by default: on colour bona fide photos the
    best model (MiniFASNet at 0.01) still rejects 6.2 % of lfw_dev faces, above the 5 % bar for
    a warn default, and FaceAntiSpoofing rejects 93 % (README, "Liveness")."""

    OFF = "off"
    WARN = "warn"  # score reported, decision unchanged
    BLOCK = "block"  # a suspected attack turns the decision into a retake


@dataclass(frozen=True)
class LivenessResult:
    # FaceAntiSpoofing: the spoof score (leafScore1), lower is more live; MiniFASNet: the
    # probability of the live class, higher is more live (``higher_is_live``).
    score: float
    is_live: bool  # the model's rule against ``threshold`` (and sharpness, for FaceAntiSpoofing)
    # FaceAntiSpoofing only (None otherwise): count of 3x3 Laplacian responses > 50 on the
    # 256x256 grey crop, and whether it reaches the package's sharpness threshold (50).
    sharpness: int | None
    is_sharp: bool | None
    threshold: float  # the score threshold used for is_live
    crop_box: tuple[int, int, int, int]  # crop actually used: x1, y1, x2, y2 (exclusive)
    higher_is_live: bool = False


@dataclass(frozen=True)
class LivenessCheck:
    """The liveness of a verification's live capture, as reported and audited."""

    score: float  # rounded to 4 decimals
    is_live: bool
    sharpness: int | None
    threshold: float
    higher_is_live: bool
    model: str | None  # the manifest entry's name
    policy: LivenessPolicy

    @classmethod
    def of(cls, result: LivenessResult, model: str | None,
           policy: LivenessPolicy) -> LivenessCheck:
        return cls(round(result.score, 4), result.is_live, result.sharpness, result.threshold,
                   result.higher_is_live, model, policy)


class LivenessModel(Protocol):
    threshold: float
    higher_is_live: bool  # direction of the score

    def score(
        self, image_rgb: np.ndarray, box: tuple[float, float, float, float]
    ) -> LivenessResult: ...
