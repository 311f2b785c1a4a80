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
from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from api.auth import Caller, require_roles
from api.errors import problem_from_error
from api.metrics import Metrics
from api.problems import Problem, problem_example
from api.validation import CITIZEN_ID_PATTERN, COUNTER_ID_PATTERN, ERROR_RESPONSES, check_ids
from biometric.errors import BiometricError
from biometric.pipeline import CHIP, LIVE, Pipeline, VerifyResult
from biometric.store import audit as audit_store
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


class VerifyResponse(BaseModel):
    request_id: str
    decision: Literal["match", "no_match", "retake"]
    score: float | None
    threshold: float
    fmr: float
    reasons: list[ReasonOut]
    faces: VerifyFacesOut
    timings_ms: dict[str, float]
    models: dict[str, str]
    liveness: LivenessOut | None = None
    citizen_id: str | None = None
    counter_id: str | None = None


class VerifyJsonRequest(BaseModel):
    live: str = Field(description="live capture, base64 (a data: URL prefix is accepted)")
    chip: str = Field(description="chip portrait (ICAO DG2 image), base64")
    citizen_id: str | None = Field(None, pattern=CITIZEN_ID_PATTERN)
    counter_id: str | None = Field(None, pattern=COUNTER_ID_PATTERN)


VERIFY_EXAMPLE = {
    "request_id": "6f1c0e7a9b3d4c2e8f0a1b2c3d4e5f60",
    "decision": "match",
    "score": 0.7347,
    "threshold": 0.3312,
    "fmr": 0.001,
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
    "citizen_id": "012345678901",
    "counter_id": "office-17-desk-3",
}

VERIFY_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["live", "chip"],
                    "properties": {
                        "live": {"type": "string", "format": "binary"},
                        "chip": {"type": "string", "format": "binary"},
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
                    "live": "/9j/4AAQSkZJRgABAQAAAQABAAD…",
                    "chip": "/9j/4AAQSkZJRgABAQAAAQABAAD…",
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
    422: problem_example(422, "image_decode_error", "live image: truncated or corrupt"),
    503: problem_example(503, "timeout", "verification took longer than 30 s"),
}


# -- request parsing ----------------------------------------------------------------------------


@dataclass
class VerifyInput:
    live: bytes
    chip: bytes
    citizen_id: str | None
    counter_id: str | None


async def _parse_multipart(request: Request) -> VerifyInput:
    async with request.form(max_files=2, max_fields=4) as form:
        parts: dict[str, bytes] = {}
        for name in (LIVE, CHIP):
            value = form.get(name)
            if value is None:
                raise Problem(422, "missing_image", f"multipart part {name!r} is required")
            if not isinstance(value, UploadFile):
                raise Problem(422, "invalid_part", f"part {name!r} must be a file upload")
            parts[name] = await value.read()
        ids = {}
        for name in ("citizen_id", "counter_id"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise Problem(422, "invalid_part", f"part {name!r} must be a text field")
            ids[name] = value or None
    check_ids(ids["citizen_id"], ids["counter_id"])
    return VerifyInput(parts[LIVE], parts[CHIP], ids["citizen_id"], ids["counter_id"])


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
    return VerifyInput(
        _b64(payload.live, LIVE), _b64(payload.chip, CHIP), payload.citizen_id, payload.counter_id
    )


@router.post(
    "/v1/verify",
    summary="Verify a live capture against the chip portrait",
    description=(
        "Send `multipart/form-data` (file parts `live`, `chip`; text parts `citizen_id` "
        "(12 digits), `counter_id`) or JSON with base64 images. Answers `match`, "
        "`no_match` or `retake` with reasons staff can act on. Needs a `counter` or "
        "`admin` key. Every decision is written to the audit trail (never the photos)."
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
    pipeline: Pipeline = request.app.state.pipeline
    settings = request.app.state.settings
    metrics: Metrics = request.app.state.metrics
    queued = time.perf_counter()

    def work() -> tuple[VerifyResult, float]:
        started = time.perf_counter()
        image = LIVE
        try:
            live = pipeline.decode(data.live).rgb
            image = CHIP
            chip = pipeline.decode(data.chip).rgb
        except BiometricError as exc:
            raise problem_from_error(exc, image) from None
        decode_ms = (time.perf_counter() - started) * 1000.0
        result = pipeline.verify(live, chip)
        result.timings_ms["decode"] = decode_ms
        result.timings_ms["total"] += decode_ms
        return result, (started - queued) * 1000.0

    pool: PipelinePool | None = request.app.state.verify_pool
    try:
        with anyio.fail_after(settings.request_timeout_s):
            if pool is None:
                result, queue_ms = await anyio.to_thread.run_sync(
                    work, limiter=request.app.state.limiter, abandon_on_cancel=True
                )
            else:  # on timeout the worker process is stopped and replaced
                try:
                    result, queue_ms = await pool.verify(data.live, data.chip)
                except VerifyFailed as exc:
                    if exc.image is None:
                        raise exc.cause from None
                    raise problem_from_error(exc.cause, exc.image) from None
    except TimeoutError:
        raise Problem(
            503,
            "timeout",
            f"verification took longer than {settings.request_timeout_s:g} s; try again",
            headers={"Retry-After": "5"},
        ) from None
    except Problem as problem:
        await _audit(
            request,
            caller,
            data,
            decision="refused",
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
    metrics.decisions.labels(body["decision"]).inc()
    await _audit(
        request,
        caller,
        data,
        decision=body["decision"],
        score=body["score"],
        threshold=body["threshold"],
        fmr=body["fmr"],
        reasons=body["reasons"],
        model_versions=body["models"],
        quality={
            role: body[role]["quality"]["score"]
            for role in (LIVE, CHIP)
            if body[role].get("quality")
        },
        liveness=body["liveness"],
    )
    return {
        "request_id": rid,
        "decision": body["decision"],
        "score": body["score"],
        "threshold": body["threshold"],
        "fmr": body["fmr"],
        "reasons": body["reasons"],
        "faces": {LIVE: body[LIVE], CHIP: body[CHIP]},
        "timings_ms": timings,
        "models": body["models"],
        "liveness": body["liveness"],
        "citizen_id": data.citizen_id,
        "counter_id": data.counter_id,
    }


async def _audit(request: Request, caller: Caller, data: VerifyInput, **fields: Any) -> None:
    sessions: sessionmaker[Session] = request.app.state.sessions
    fields.setdefault("model_versions", request.app.state.pipeline.model_versions)

    def write() -> None:
        with sessions() as s:
            audit_store.record(
                s,
                request_id=request.state.request_id,
                key_name=caller.key_name,
                counter_id=data.counter_id,
                citizen_id=data.citizen_id,
                action="verify",
                **fields,
            )

    try:
        await anyio.to_thread.run_sync(write)
    except Exception:
        log.exception("audit write failed (request %s)", request.state.request_id)
        raise Problem(
            503, "audit_unavailable", "the decision could not be recorded; try again"
        ) from None
