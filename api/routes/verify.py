"""1:1 verification at the counter: ``POST /v1/verify`` (live capture vs the chip portrait).

Multipart or JSON with base64 images; the pipeline runs in a worker process (or, with
``verify_workers=0``, the bounded thread pool), never on the event loop; after
``request_timeout_s`` the request is answered 503 and, in a worker process, its work stopped.
Every decision and every refusal is written to the audit trail (never the photos).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
import cv2
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from api.auditing import audit, note_citizen
from api.auth import Caller, require_roles
from api.errors import problem_from_error
from api.i18n import localise_reasons, request_locale
from api.metrics import Metrics
from api.problems import Problem, problem_example
from api.validation import CITIZEN_ID_PATTERN, COUNTER_ID_PATTERN, ERROR_RESPONSES, check_ids
from biometric.chip import policy as chip_policy
from biometric.chip.errors import ChipDataError
from biometric.chip.reader import ChipReading, read_chip
from biometric.errors import BiometricError
from biometric.pipeline import CHIP, LIVE, Pipeline, VerifyResult
from biometric.store.models import Role
from biometric.workers import PipelinePool, VerifyFailed

log = logging.getLogger("biometric.api")

_DATA_URL_RE = re.compile(r"^data:[\w/+.-]+;base64,")

router = APIRouter(tags=["verify"])


class ReasonOut(BaseModel):
    code: str
    image: str
    message: str


class FaceOut(BaseModel):
    box: list[float]
    score: float
    landmarks: list[list[float]]


class ImageFacesOut(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]
    subject: int | None = Field(description="index of the chosen face in `faces`")
    reasons: list[ReasonOut]
    quality: dict[str, Any] | None = Field(None, description="capture quality of the subject")


class VerifyFacesOut(BaseModel):
    live: ImageFacesOut
    chip: ImageFacesOut


class LivenessOut(BaseModel):
    score: float
    is_live: bool
    sharpness: int
    threshold: float
    policy: str


class ChipCheckOut(BaseModel):
    name: str
    status: str
    detail: str


class ChipAuthOut(BaseModel):
    status: Literal[
        "verified", "hash_mismatch", "bad_signature", "untrusted_signer", "expired", "not_checked"
    ]
    message: str
    issuer: str | None = Field(description="the Document Signer's issuer (the CSCA), RFC 4514")
    country: str | None
    signer: str | None = Field(description="the Document Signer certificate's subject")
    hash_algorithm: str | None
    checks: list[ChipCheckOut]
    policy: Literal["off", "warn", "block"]


class ChipImageOut(BaseModel):
    """Where the portrait sits in the EF.DG2 that was sent (so a page can show it)."""

    version: str
    image_type: str
    data_type: Literal["jpeg", "jpeg2000"]
    width: int
    height: int
    feature_points: int
    image_offset: int
    image_bytes: int


class VerifyResponse(BaseModel):
    request_id: str
    decision: Literal["match", "no_match", "retake", "refused"]
    score: float | None
    threshold: float
    fmr: float
    operating_point: str = Field(
        description="which operating point made the decision: shipped:<calibration date> or "
        "site:<data fingerprint> (a file from `biometric calibrate`)")
    reasons: list[ReasonOut]
    faces: VerifyFacesOut
    timings_ms: dict[str, float]
    models: dict[str, str]
    liveness: LivenessOut | None = None
    chip_auth: ChipAuthOut | None = Field(
        None, description="passive authentication of the chip (not_checked when only a portrait "
        "image was sent); null under BIOMETRIC_CHIP_AUTH=off")
    chip_image: ChipImageOut | None = None
    citizen_id: str | None = None
    counter_id: str | None = None


class VerifyJsonRequest(BaseModel):
    live: str = Field(description="live capture, base64 (a data: URL prefix is accepted)")
    chip: str | None = Field(None, description="chip portrait image, base64 (or send dg2)")
    dg2: str | None = Field(None, description="EF.DG2 as read from the chip, base64")
    sod: str | None = Field(None, description="EF.SOD as read from the chip, base64")
    dg1: str | None = Field(None, description="EF.DG1 (MRZ), base64: its hash is checked too")
    citizen_id: str | None = Field(None, pattern=CITIZEN_ID_PATTERN)
    counter_id: str | None = Field(None, pattern=COUNTER_ID_PATTERN)


VERIFY_EXAMPLE = {
    "request_id": "6f1c0e7a9b3d4c2e8f0a1b2c3d4e5f60",
    "decision": "match",
    "score": 0.7347,
    "threshold": 0.3312,
    "fmr": 0.001,
    "operating_point": "shipped:2026-11-24",
    "reasons": [],
    "faces": {
        "live": {
            "width": 640,
            "height": 480,
            "faces": [
                {
                    "box": [250.1, 90.4, 380.2, 260.7],
                    "score": 0.9998,
                    "landmarks": [
                        [290.0, 160.2],
                        [345.1, 158.9],
                        [318.3, 192.0],
                        [296.4, 222.5],
                        [341.0, 221.7],
                    ],
                }
            ],
            "subject": 0,
            "reasons": [],
        },
        "chip": {"width": 240, "height": 320, "faces": [], "subject": 0, "reasons": []},
    },
    "timings_ms": {
        "queue": 0.1,
        "decode": 12.3,
        "detect": 95.2,
        "align": 1.1,
        "embed": 40.5,
        "compare": 0.02,
        "total": 149.2,
    },
    "models": {"mobilefacenet": "sha256:…", "mtcnn_pnet": "sha256:…"},
    "chip_auth": {
        "status": "verified",
        "message": "EF.SOD is signed by a trusted Document Signer and matches the chip data",
        "issuer": "CN=CSCA Example,O=Example Ministry,C=VN",
        "country": "VN",
        "signer": "CN=Document Signer 7,O=Example Ministry,C=VN",
        "hash_algorithm": "sha256",
        "checks": [{"name": "signature", "status": "verified",
                    "detail": "EF.SOD signature verified"}],
        "policy": "warn",
    },
    "citizen_id": "012345678901",
    "counter_id": "office-17-desk-3",
}


def _example_jpeg_b64() -> str:
    """A 16x16 grey JPEG, base64: a request made from the documented example decodes and is
    answered (200, ``retake``: no face), where a truncated string would be ``invalid_base64``."""
    ok, jpeg = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


EXAMPLE_JPEG_B64 = _example_jpeg_b64()

VERIFY_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["live"],
                    "properties": {
                        "live": {"type": "string", "format": "binary"},
                        "chip": {"type": "string", "format": "binary",
                                 "description": "chip portrait image; or send dg2 (+ sod)"},
                        "dg2": {"type": "string", "format": "binary",
                                "description": "EF.DG2 as read from the chip"},
                        "sod": {"type": "string", "format": "binary",
                                "description": "EF.SOD: checks the chip's signature"},
                        "dg1": {"type": "string", "format": "binary",
                                "description": "EF.DG1 (MRZ): its hash is checked too"},
                        "citizen_id": {
                            "type": "string",
                            "pattern": CITIZEN_ID_PATTERN,
                            "example": "012345678901",
                        },
                        "counter_id": {
                            "type": "string",
                            "pattern": COUNTER_ID_PATTERN,
                            "example": "office-17-desk-3",
                        },
                    },
                }
            },
            "application/json": {
                "schema": VerifyJsonRequest.model_json_schema(),
                "example": {
                    "live": EXAMPLE_JPEG_B64,
                    "chip": EXAMPLE_JPEG_B64,
                    "citizen_id": "012345678901",
                    "counter_id": "office-17-desk-3",
                },
            },
        },
    }
}

VERIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": VERIFY_EXAMPLE}}},
    **ERROR_RESPONSES,
    413: problem_example(413, "image_too_large", "image declares 100000x100000 pixels"),
    415: problem_example(415, "unsupported_image_type", "not a recognised image format"),
    422: problem_example(422, "dg2_malformed", "dg2 image: tag 7F61 at offset 4: biometric "
                         "information group (bytes 7F618201): Insufficient data"),
    503: problem_example(503, "timeout", "verification took longer than 30 s"),
}


# -- request parsing ----------------------------------------------------------------------------


CHIP_FILES = ("dg2", "sod", "dg1")


@dataclass
class VerifyInput:
    live: bytes
    chip: bytes | None  # the portrait image, or None when the chip files were sent
    citizen_id: str | None
    counter_id: str | None
    dg2: bytes | None = None
    sod: bytes | None = None
    dg1: bytes | None = None

    def check_chip_source(self) -> VerifyInput:
        if (self.chip is None) == (self.dg2 is None):
            raise Problem(422, "missing_image", "send the chip portrait as 'chip' or the chip "
                          "files as 'dg2' (with 'sod'), not both")
        if self.dg2 is None and (self.sod is not None or self.dg1 is not None):
            raise Problem(422, "invalid_part", "'sod' and 'dg1' go with 'dg2'")
        return self


async def _parse_multipart(request: Request) -> VerifyInput:
    async with request.form(max_files=5, max_fields=4) as form:
        parts: dict[str, bytes | None] = {}
        for name in (LIVE, CHIP, *CHIP_FILES):
            value = form.get(name)
            if value is None:
                if name == LIVE:
                    raise Problem(
                        422, "missing_image", f"multipart part {name!r} is required", image=name
                    )
                parts[name] = None
                continue
            if not isinstance(value, UploadFile):
                raise Problem(
                    422, "invalid_part", f"part {name!r} must be a file upload", part=name
                )
            parts[name] = await value.read()
        ids = {}
        for name in ("citizen_id", "counter_id"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise Problem(
                    422, "invalid_part", f"part {name!r} must be a text field", part=name
                )
            ids[name] = value or None
    check_ids(ids["citizen_id"], ids["counter_id"])
    live = parts[LIVE]
    assert live is not None  # required above
    return VerifyInput(live, parts[CHIP], ids["citizen_id"], ids["counter_id"],
                       *(parts[n] for n in CHIP_FILES)).check_chip_source()


def _b64(value: str, name: str) -> bytes:
    value = _DATA_URL_RE.sub("", value.strip(), count=1)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, "invalid_base64", f"{name!r} is not valid base64", image=name) from None


async def _parse_json(request: Request) -> VerifyInput:
    body = await request.body()
    try:
        payload = VerifyJsonRequest.model_validate_json(body)
    except ValidationError as exc:
        raise Problem(
            422,
            "validation_error",
            "request body is not a valid verify request",
            errors=jsonable_encoder(exc.errors(include_url=False, include_input=False)),
        ) from None
    optional = {name: _b64(v, name) if (v := getattr(payload, name)) is not None else None
                for name in (CHIP, *CHIP_FILES)}
    return VerifyInput(_b64(payload.live, LIVE), citizen_id=payload.citizen_id,
                       counter_id=payload.counter_id, **optional).check_chip_source()


@router.post(
    "/v1/verify",
    summary="Verify a live capture against the chip portrait",
    description=(
        "Send `multipart/form-data` (file parts `live`, and `chip` or the chip files `dg2` + "
        "`sod` (+ `dg1`); text parts `citizen_id` (12 digits), `counter_id`) or JSON with "
        "base64. With `dg2`, the portrait is read from EF.DG2 and EF.SOD's signature is "
        "checked (passive authentication, `chip_auth`); under `BIOMETRIC_CHIP_AUTH=block` a "
        "chip that does not verify is `refused`. Answers `match`, `no_match`, `retake` or "
        "`refused` with reasons staff can act on. Needs a `counter` or `admin` key. Every "
        "decision is written to the audit trail (never the photos)."
    ),
    response_model=VerifyResponse,
    responses=VERIFY_RESPONSES,
    openapi_extra=VERIFY_OPENAPI_BODY,
)
async def verify(
    request: Request,
    caller: Annotated[Caller, Depends(require_roles(Role.COUNTER, Role.ADMIN))],
) -> dict[str, Any]:
    rid: str = request.state.request_id
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        data = await _parse_multipart(request)
    elif ctype == "application/json":
        data = await _parse_json(request)
    else:
        raise Problem(415, "unsupported_media_type", "send multipart/form-data or application/json")
    note_citizen(request, data.citizen_id)
    pipeline: Pipeline = request.app.state.pipeline
    settings = request.app.state.settings
    metrics: Metrics = request.app.state.metrics
    queued = time.perf_counter()

    policy = settings.chip_auth
    reading: ChipReading | None = None

    def chip_portrait() -> bytes:
        """The chip's portrait: the ``chip`` image, or the one in DG2, checked against the SOD."""
        nonlocal reading
        if data.dg2 is not None:
            try:
                reading = read_chip(data.dg2, data.sod, request.app.state.trust, data.dg1,
                                    policy)
            except ChipDataError as exc:
                part = "dg2" if exc.code == "dg2_malformed" else "sod"
                problem = problem_from_error(exc, part)
                problem.extra.update(exc.location())  # the tag and byte offset, for tools
                raise problem from None
        portrait = reading.portrait if reading is not None else data.chip
        assert portrait is not None  # check_chip_source: chip or dg2
        return portrait

    def work() -> tuple[VerifyResult, float]:
        started = time.perf_counter()
        portrait = chip_portrait()
        decode_start = time.perf_counter()
        image = LIVE
        try:
            live = pipeline.decode(data.live).rgb
            image = CHIP
            chip = pipeline.decode(portrait).rgb
        except BiometricError as exc:
            raise problem_from_error(exc, image) from None
        decode_ms = (time.perf_counter() - decode_start) * 1000.0
        result = pipeline.verify(live, chip)
        result.timings_ms["decode"] = decode_ms
        result.timings_ms["total"] += decode_ms
        chip_policy.apply(result, reading, policy)
        return result, (started - queued) * 1000.0

    pool: PipelinePool | None = request.app.state.verify_pool
    try:
        with anyio.fail_after(settings.request_timeout_s):
            if pool is None:
                result, queue_ms = await anyio.to_thread.run_sync(
                    work, limiter=request.app.state.limiter, abandon_on_cancel=True
                )
            else:  # on timeout the worker process is stopped and replaced
                portrait = await anyio.to_thread.run_sync(chip_portrait)
                try:
                    result, queue_ms = await pool.verify(data.live, portrait)
                except VerifyFailed as exc:
                    if exc.image is None:
                        raise exc.cause from None
                    raise problem_from_error(exc.cause, exc.image) from None
                chip_policy.apply(result, reading, policy)
    except TimeoutError:
        raise Problem(
            503,
            "timeout",
            f"verification took longer than {settings.request_timeout_s:g} s; try again",
            headers={"Retry-After": "5"},
            seconds=f"{settings.request_timeout_s:g}",
        ) from None
    except Problem as problem:
        await _audit(
            request,
            data,
            "refused",
            reasons=[
                {
                    "code": problem.code,
                    "image": problem.extra.get("image"),
                    "message": problem.detail,
                }
            ],
        )
        raise
    except BiometricError as exc:
        raise problem_from_error(exc, None) from None

    body = result.to_dict()
    timings = {"queue": round(queue_ms, 2), **body["timings_ms"]}
    timings["total"] = round(result.timings_ms["total"], 2)
    timings["decode"] = round(result.timings_ms["decode"], 2)
    for stage, ms in timings.items():
        metrics.stage_seconds.labels(stage).observe(ms / 1000.0)
    metrics.decisions.labels(body["decision"], body["operating_point"]).inc()
    if body["chip_auth"] is not None:
        chip = body["chip_auth"]
        metrics.chip_auth.labels(chip["status"], chip["country"] or "unknown").inc()
    await _audit(
        request,
        data,
        body["decision"],
        score=body["score"],
        threshold=body["threshold"],
        fmr=body["fmr"],
        reasons=body["reasons"],
        # The operating point is recorded with the models: together they made the decision.
        model_versions={**body["models"], "operating_point": body["operating_point"]},
        quality={
            role: body[role]["quality"]["score"]
            for role in (LIVE, CHIP)
            if body[role].get("quality")
        },
        liveness=body["liveness"],
        chip_auth=_audit_chip(body["chip_auth"]),
    )
    locale = request_locale(request)  # the audit above keeps the service's language
    for role in (LIVE, CHIP):
        body[role]["reasons"] = localise_reasons(body[role]["reasons"], locale)
    return {
        "request_id": rid,
        "decision": body["decision"],
        "score": body["score"],
        "threshold": body["threshold"],
        "fmr": body["fmr"],
        "operating_point": body["operating_point"],
        "reasons": localise_reasons(body["reasons"], locale),
        "faces": {LIVE: body[LIVE], CHIP: body[CHIP]},
        "timings_ms": timings,
        "models": body["models"],
        "liveness": body["liveness"],
        "chip_auth": body["chip_auth"],
        "chip_image": reading.dg2.portrait.to_dict() if reading is not None else None,
        "citizen_id": data.citizen_id,
        "counter_id": data.counter_id,
    }


def _audit_chip(chip_auth: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit keeps of the chip check: the result and who signed, not every check."""
    if chip_auth is None:
        return None
    keep = ("status", "issuer", "country", "signer", "hash_algorithm", "policy")
    return {k: chip_auth[k] for k in keep}


async def _audit(request: Request, data: VerifyInput, decision: str, **fields: Any) -> None:
    fields.setdefault("model_versions", request.app.state.pipeline.model_versions)
    await audit(
        request,
        "verify",
        decision,
        citizen_id=data.citizen_id,
        counter_id=data.counter_id,
        **fields,
    )
