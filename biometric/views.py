"""The JSON shape of the verification's typed results, declared once and validated from the
domain objects themselves (``Model.model_validate(obj, from_attributes=True)``): the API's
response schemas, the CLI's ``--json`` output and the audit record all come from here.

Texts are chosen here, at the edge: a :class:`ReasonView` is written in the locale passed as
validation context (``context={"locale": "en"}``; none: the service's default language).
Rounding says how many digits carry meaning (boxes to 0.1 px, scores to 1e-4, times to
0.01 ms), as the answers always gave them.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from biometric.decide import Reason


def _rounded(digits: int) -> AfterValidator:
    return AfterValidator(partial(round, ndigits=digits))


def _listed(value: Any) -> Any:
    """numpy arrays (landmarks) and tuples as plain lists."""
    return np.asarray(value).tolist() if isinstance(value, np.ndarray | tuple) else value


Px = Annotated[float, _rounded(1)]
Score = Annotated[float, _rounded(4)]
Ms = Annotated[float, _rounded(2)]
Measure = Annotated[float, _rounded(2)]


class View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ReasonView(View):
    code: str
    image: str
    message: str

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Reason):
            locale = (info.context or {}).get("locale")
            return {"code": data.code, "image": data.image, "message": data.text(locale)}
        return data


class FaceView(View):
    box: Annotated[list[Px], BeforeValidator(_listed)]
    score: Score
    landmarks: Annotated[list[list[Px]], BeforeValidator(_listed)]


class QualityView(View):
    inter_eye_px: Measure
    yaw_deg: Measure
    pitch_deg: Measure
    roll_deg: Measure
    sharpness: Measure
    brightness: Measure
    contrast: Measure
    center_offset: Measure
    score: Measure
    violations: Annotated[list[str], BeforeValidator(_listed)]


class ImageFacesView(View):
    """One image of a verification (a :class:`biometric.pipeline.FaceAnalysis`)."""

    width: int
    height: int
    faces: list[FaceView]
    subject: int | None = Field(validation_alias="subject_index",
                                description="index of the chosen face in `faces`")
    reasons: list[ReasonView]
    quality: QualityView | None = Field(None, description="capture quality of the subject")


class LivenessView(View):
    score: float
    is_live: bool
    sharpness: int | None
    threshold: float
    higher_is_live: bool
    model: str | None
    policy: Literal["off", "warn", "block"]


class ChipCheckView(View):
    name: str
    status: str
    detail: str


class ChipAuthView(View):
    status: Literal[
        "verified", "hash_mismatch", "bad_signature", "untrusted_signer", "expired", "not_checked"
    ]
    message: str
    issuer: str | None = Field(description="the Document Signer's issuer (the CSCA), RFC 4514")
    country: str | None
    signer: str | None = Field(description="the Document Signer certificate's subject")
    hash_algorithm: str | None
    checks: list[ChipCheckView]
    policy: Literal["off", "warn", "block"] | None = Field(
        description="the policy it was judged under (null: read without a verification)")


class ChipImageView(View):
    """Where the portrait sits in the EF.DG2 that was sent (so a page can show it)."""

    version: str
    image_type: str
    data_type: Literal["jpeg", "jpeg2000"]
    width: int
    height: int
    feature_points: int
    image_offset: int
    image_bytes: int


class DecisionView(View):
    """What every answer to a verification carries."""

    decision: Literal["match", "no_match", "retake", "manual_check", "chip_untrusted", "refused"]
    score: Score | None
    display_score: int | None = Field(
        None, description="the score on the 0-100 scale staff see (the decision threshold = 50), "
        "the same scale as duplicate search; `score` is the raw one")
    chip_trust: Literal["verified", "not_verified", "failed"] = Field(
        "not_verified", description="passive authentication as the decision used it: only "
        "`verified` is a chip shown to be genuine")
    threshold: Score = Field(description="the threshold applied: the pair's capture condition's")
    fmr: float
    condition: str | None = Field(
        None, description="the pair's capture condition (colour or grey), whose threshold applied")
    operating_point: str = Field(
        description="which operating point made the decision: shipped:<calibration date> or "
        "site:<data fingerprint> (a file from `biometric calibrate`)")
    reasons: list[ReasonView]
    timings_ms: dict[str, Ms]
    models: dict[str, str]
    liveness: LivenessView | None = None
    chip_auth: ChipAuthView | None = Field(
        None, description="passive authentication of the chip (not_checked when only a portrait "
        "image was sent); null under BIOMETRIC_CHIP_AUTH=off")
    chip_image: ChipImageView | None = None


class VerifyView(DecisionView):
    """A :class:`biometric.verification.VerifyOutcome` (``biometric verify --json``, audit)."""

    live: ImageFacesView
    chip: ImageFacesView
