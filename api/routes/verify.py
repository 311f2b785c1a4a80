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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

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
from api.i18n import request_locale
from api.metrics import Metrics
from api.problems import Problem, problem_example
from api.validation import CITIZEN_ID_PATTERN, COUNTER_ID_PATTERN, ERROR_RESPONSES, check_ids
from biometric.chip.errors import ChipDataError
from biometric.errors import BiometricError
from biometric.pipeline import CHIP, LIVE
from biometric.store import chip_handles
from biometric.store.models import Role
from biometric.verification import (
    ChipFiles,
    ImageRejected,
    InvalidRequest,
    PreparedChip,
    Verifier,
    VerifyOutcome,
    VerifyRequest,
)
from biometric.views import ChipAuthView, DecisionView, ImageFacesView, VerifyView
from biometric.workers import PipelinePool

log = logging.getLogger("biometric.api")

_DATA_URL_RE = re.compile(r"^data:[\w/+.-]+;base64,")

router = APIRouter(tags=["verify"])


class VerifyFacesOut(BaseModel):
    live: ImageFacesView
    chip: ImageFacesView


class VerifyResponse(DecisionView):
    """Built from the :class:`~biometric.verification.VerifyOutcome` (``from_attributes``)."""

    request_id: str
    faces: VerifyFacesOut
    citizen_id: str | None = None
    counter_id: str | None = None


class ChipJsonRequest(BaseModel):
    chip: str | None = Field(None, description="chip portrait image, base64 (or send dg2)")
    dg2: str | None = Field(None, description="EF.DG2 as read from the chip, base64")
    sod: str | None = Field(None, description="EF.SOD as read from the chip, base64")
    dg1: str | None = Field(None, description="EF.DG1 (MRZ), base64: its hash is checked too")
    citizen_id: str | None = Field(None, pattern=CITIZEN_ID_PATTERN)
    counter_id: str | None = Field(None, pattern=COUNTER_ID_PATTERN)


class VerifyJsonRequest(ChipJsonRequest):
    live: str = Field(description="live capture, base64 (a data: URL prefix is accepted)")
    chip_handle: str | None = Field(
        None, max_length=100, description="a prepared chip (POST /v1/chip), in place of the "
        "chip parts; used once")


class ChipResponse(BaseModel):
    chip_handle: str = Field(description="send as `chip_handle` to POST /v1/verify (once, with "
                             "the same API key, within expires_in_s)")
    expires_in_s: int
    chip_auth: ChipAuthView | None
    chip: ImageFacesView = Field(description="the chip portrait's face (its reasons say at once "
                                 "when it cannot be used)")


VERIFY_EXAMPLE = {
    "request_id": "6f1c0e7a9b3d4c2e8f0a1b2c3d4e5f60",
    "decision": "match",
    "score": 0.7347,
    "display_score": 71,
    "chip_trust": "verified",
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

CHIP_FILES = ("dg2", "sod", "dg1")
CHIP_PARTS = (CHIP, *CHIP_FILES)
HANDLE = "chip_handle"

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
                        HANDLE: {"type": "string", "maxLength": 100,
                                 "description": "a prepared chip (POST /v1/chip) in place of "
                                 "the chip parts; used once"},
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

# Refusals of the verify and chip routes (they parse and decode the same parts).
REFUSALS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    413: problem_example(413, "image_too_large", "image declares 100000x100000 pixels"),
    415: problem_example(415, "unsupported_image_type", "not a recognised image format"),
    422: problem_example(422, "dg2_malformed", "dg2 image: tag 7F61 at offset 4: biometric "
                         "information group (bytes 7F618201): Insufficient data"),
    503: problem_example(503, "timeout", "verification took longer than 30 s"),
}
VERIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": VERIFY_EXAMPLE}}},
    **REFUSALS,
}


# -- request parsing ----------------------------------------------------------------------------




@dataclass
class Parts:
    """A request's parts: the images (None when absent), the chip handle and the ids."""

    images: dict[str, bytes | None]
    chip_handle: str | None = None
    citizen_id: str | None = None
    counter_id: str | None = None

    def chip_files(self) -> ChipFiles | None:
        images = self.images
        if images["dg2"] is None and (images["sod"] is not None or images["dg1"] is not None):
            raise Problem(422, "invalid_part", "'sod' and 'dg1' go with 'dg2'")
        return None if images["dg2"] is None else ChipFiles(images["dg2"], images["sod"],
                                                             images["dg1"])

    def chip_given(self) -> bool:
        return any(self.images.get(name) is not None for name in CHIP_PARTS)


async def _parse(request: Request, images: tuple[str, ...], texts: tuple[str, ...],
                 json_model: type[ChipJsonRequest]) -> Parts:
    """The parts of a multipart or JSON (base64) request; ``live`` is required when named."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        parts = await _parse_multipart(request, images, texts)
    elif ctype == "application/json":
        parts = await _parse_json(request, images, texts, json_model)
    else:
        raise Problem(415, "unsupported_media_type", "send multipart/form-data or application/json")
    check_ids(parts.citizen_id, parts.counter_id)
    note_citizen(request, parts.citizen_id)
    return parts


async def _parse_multipart(request: Request, images: tuple[str, ...],
                           texts: tuple[str, ...]) -> Parts:
    async with request.form(max_files=len(images), max_fields=len(texts)) as form:
        found: dict[str, bytes | None] = {}
        for name in images:
            value = form.get(name)
            if value is None:
                if name == LIVE:
                    raise Problem(
                        422, "missing_image", f"multipart part {name!r} is required", image=name
                    )
                found[name] = None
                continue
            if not isinstance(value, UploadFile):
                raise Problem(
                    422, "invalid_part", f"part {name!r} must be a file upload", part=name
                )
            found[name] = await value.read()
        text: dict[str, str | None] = {}
        for name in texts:
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise Problem(
                    422, "invalid_part", f"part {name!r} must be a text field", part=name
                )
            text[name] = value or None
    return Parts(found, **text)


def _b64(value: str, name: str) -> bytes:
    value = _DATA_URL_RE.sub("", value.strip(), count=1)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, "invalid_base64", f"{name!r} is not valid base64", image=name) from None


async def _parse_json(request: Request, images: tuple[str, ...], texts: tuple[str, ...],
                      model: type[ChipJsonRequest]) -> Parts:
    body = await request.body()
    try:
        payload = model.model_validate_json(body)
    except ValidationError as exc:
        raise Problem(
            422,
            "validation_error",
            "request body is not a valid request",
            errors=jsonable_encoder(exc.errors(include_url=False, include_input=False)),
        ) from None
    found = {name: _b64(v, name) if (v := getattr(payload, name)) is not None else None
             for name in images}
    return Parts(found, **{name: getattr(payload, name) for name in texts})


def _problem(exc: ImageRejected) -> Problem:
    """A refused input as a problem document naming the image (and, in a chip file, the tag
    and byte offset, for tools)."""
    problem = problem_from_error(exc.cause, exc.image)
    if isinstance(exc.cause, ChipDataError):
        problem.extra.update(exc.cause.location())
    return problem


@router.post(
    "/v1/chip",
    summary="Prepare the chip portrait before the capture",
    description=(
        "Send the chip as for `/v1/verify` (`chip`, or `dg2` + `sod` (+ `dg1`); text parts "
        "`citizen_id`, `counter_id`) as soon as the card is read: the portrait is read, "
        "authenticated, analysed and embedded now, and the answer's `chip_handle` stands for "
        "it in one `/v1/verify` within `expires_in_s`, with the same API key, whichever "
        "server process answers. The handle holds the templates, never the photo, sealed "
        "with a key only the handle carries; it is erased when used or expired. Needs a "
        "`counter` or `admin` key; audited."
    ),
    response_model=ChipResponse,
    responses={**REFUSALS,
               422: problem_example(422, "dg2_malformed", "dg2 image: tag 7F61 at offset 4")},
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            name: prop for name, prop in VERIFY_OPENAPI_BODY["requestBody"]["content"][
                "multipart/form-data"]["schema"]["properties"].items() if name != LIVE}}},
        "application/json": {"schema": ChipJsonRequest.model_json_schema(),
                             "example": {"chip": EXAMPLE_JPEG_B64}},
    }}},
)
async def prepare_chip(
    request: Request,
    caller: Annotated[Caller, Depends(require_roles(Role.COUNTER, Role.ADMIN))],
) -> ChipResponse:
    parts = await _parse(request, CHIP_PARTS, ("citizen_id", "counter_id"), ChipJsonRequest)
    files = parts.chip_files()
    if (parts.images[CHIP] is None) == (files is None):
        raise Problem(422, "missing_image", "send the chip portrait as 'chip' or the chip files "
                      "as 'dg2' (with 'sod'), not both")
    verifier: Verifier = request.app.state.verifier
    settings = request.app.state.settings
    data = VerifyRequest(b"", parts.images[CHIP], files, parts.citizen_id, parts.counter_id)
    pool: PipelinePool | None = request.app.state.verify_pool
    async with _refusals(request, data, "chip_prepare"):
        chip = await anyio.to_thread.run_sync(verifier.read_chip, data)
        assert chip is not None
        if pool is None:
            prepared = await anyio.to_thread.run_sync(
                verifier.prepare, chip, limiter=request.app.state.limiter,
                abandon_on_cancel=True)
        else:
            prepared, _ = await pool.prepare(chip)
    ttl = settings.chip_handle_ttl_s
    handle = await anyio.to_thread.run_sync(_put_handle, request, prepared, caller.key_name, ttl)
    record = ChipAuthView.model_validate(prepared.chip_auth).model_dump(mode="json") \
        if prepared.chip_auth is not None else None
    await _audit(request, data, "prepared", action="chip_prepare",
                 reasons=[{"code": r.code, "image": r.image} for r in prepared.analysis.reasons],
                 chip_auth=_audit_chip(record))
    return ChipResponse.model_validate(
        {"chip_handle": handle, "expires_in_s": ttl, "chip_auth": prepared.chip_auth,
         "chip": prepared.analysis}, from_attributes=True,
        context={"locale": request_locale(request)})


def _put_handle(request: Request, prepared: PreparedChip, key_name: str, ttl_s: int) -> str:
    with request.app.state.sessions() as session:
        return chip_handles.put(session, prepared, key_name, ttl_s)


def _take_handle(request: Request, handle: str, key_name: str) -> PreparedChip:
    with request.app.state.sessions() as session:
        return chip_handles.take(session, handle, key_name)


def _timeout(seconds: float) -> Problem:
    return Problem(503, "timeout", f"verification took longer than {seconds:g} s; try again",
                   headers={"Retry-After": "5"}, seconds=f"{seconds:g}")


@router.post(
    "/v1/verify",
    summary="Verify a live capture against the chip portrait",
    description=(
        "Send `multipart/form-data` (file parts `live`, and `chip` or the chip files `dg2` + "
        "`sod` (+ `dg1`), or text part `chip_handle` from `POST /v1/chip`; text parts "
        "`citizen_id` (12 digits), `counter_id`) or JSON with base64. With `dg2`, the portrait "
        "is read from EF.DG2 and EF.SOD's signature is checked (passive authentication, "
        "`chip_auth`): a chip that fails is `chip_untrusted`, never `match`; under "
        "`BIOMETRIC_CHIP_AUTH=block` one that could not be checked is `refused`. With "
        "`chip_handle`, only the live capture is processed (the chip was prepared before), and "
        "the handle is erased. Answers `match`, `no_match`, `retake` (live capture), "
        "`manual_check` (no usable face on the chip), `chip_untrusted` or `refused`, with "
        "reasons staff can act on. Needs a `counter` or `admin` key. Every "
        "decision is written to the audit trail (never the photos)."
    ),
    response_model=VerifyResponse,
    responses=VERIFY_RESPONSES,
    openapi_extra=VERIFY_OPENAPI_BODY,
)
async def verify(
    request: Request,
    caller: Annotated[Caller, Depends(require_roles(Role.COUNTER, Role.ADMIN))],
) -> VerifyResponse:
    parts = await _parse(request, (LIVE, *CHIP_PARTS), (HANDLE, "citizen_id", "counter_id"),
                         VerifyJsonRequest)
    prepared = None
    if parts.chip_handle is not None:
        if parts.chip_given():
            raise Problem(422, "invalid_part", "send 'chip_handle' or the chip parts, not both")
        try:
            prepared = await anyio.to_thread.run_sync(
                _take_handle, request, parts.chip_handle, caller.key_name)
        except BiometricError as exc:
            raise problem_from_error(exc, None) from None
    live = parts.images[LIVE]
    assert live is not None  # required by both parsers
    try:
        data = VerifyRequest(live, parts.images[CHIP], parts.chip_files(), parts.citizen_id,
                             parts.counter_id, prepared)
    except InvalidRequest as exc:
        raise Problem(422, exc.code, exc.message) from None
    verifier: Verifier = request.app.state.verifier
    queued = time.perf_counter()

    def work() -> tuple[VerifyOutcome, float]:
        started = time.perf_counter()
        return verifier.verify(data), (started - queued) * 1000.0

    pool: PipelinePool | None = request.app.state.verify_pool
    async with _refusals(request, data, "verify"):
        if pool is None:
            outcome, queue_ms = await anyio.to_thread.run_sync(
                work, limiter=request.app.state.limiter, abandon_on_cancel=True
            )
        else:  # the chip files are read here; on timeout the worker process is replaced
            chip = prepared or await anyio.to_thread.run_sync(verifier.read_chip, data)
            assert chip is not None  # VerifyRequest: a portrait, the files or prepared
            outcome, queue_ms = await pool.verify(data.live, chip)
    return await _respond(request, data, outcome, queue_ms)


@asynccontextmanager
async def _refusals(request: Request, data: VerifyRequest, action: str) -> AsyncIterator[None]:
    """The work of a verify or chip call within the request deadline; a timeout, a rejected
    image (audited, naming the image) or another library error becomes its problem document."""
    timeout_s = request.app.state.settings.request_timeout_s
    try:
        with anyio.fail_after(timeout_s):
            yield
    except TimeoutError:
        raise _timeout(timeout_s) from None
    except ImageRejected as exc:
        if exc.image is None:
            raise problem_from_error(exc.cause, None) from None
        problem = _problem(exc)
        await _audit(request, data, "refused", action=action, reasons=[
            {"code": problem.code, "image": exc.image, "message": problem.detail}])
        raise problem from None
    except BiometricError as exc:
        raise problem_from_error(exc, None) from None


async def _respond(request: Request, data: VerifyRequest, outcome: VerifyOutcome,
                   queue_ms: float) -> VerifyResponse:
    """Metrics, the audit record (in the service's language), then the answer in the caller's."""
    metrics: Metrics = request.app.state.metrics
    answer = VerifyResponse.model_validate(
        {**{name: getattr(outcome, name) for name in DecisionView.model_fields},
         "request_id": request.state.request_id, "faces": outcome.faces,
         "timings_ms": {"queue": queue_ms, **outcome.timings_ms},
         "citizen_id": data.citizen_id, "counter_id": data.counter_id},
        from_attributes=True, context={"locale": request_locale(request)})
    for stage, ms in answer.timings_ms.items():
        metrics.stage_seconds.labels(stage).observe(ms / 1000.0)
    metrics.decisions.labels(answer.decision, answer.operating_point).inc()
    if (chip := answer.chip_auth) is not None:
        metrics.chip_auth.labels(chip.status, chip.country or "unknown").inc()
    record = VerifyView.model_validate(outcome).model_dump(mode="json")
    await _audit(
        request,
        data,
        record["decision"],
        score=record["score"],
        threshold=record["threshold"],
        fmr=record["fmr"],
        reasons=record["reasons"],
        # The operating point is recorded with the models: together they made the decision.
        model_versions={**record["models"], "operating_point": record["operating_point"]},
        quality={role: record[role]["quality"]["score"] for role in (LIVE, CHIP)
                 if record[role]["quality"]},
        liveness=record["liveness"],
        chip_auth=_audit_chip(record["chip_auth"]),
    )
    return answer


def _audit_chip(chip_auth: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit keeps of the chip check: the result and who signed, not every check."""
    if chip_auth is None:
        return None
    keep = ("status", "issuer", "country", "signer", "hash_algorithm", "policy")
    return {k: chip_auth[k] for k in keep}


async def _audit(request: Request, data: VerifyRequest, decision: str,
                 action: str = "verify", **fields: Any) -> None:
    fields.setdefault("model_versions", request.app.state.pipeline.model_versions)
    await audit(
        request,
        action,
        decision,
        citizen_id=data.citizen_id,
        counter_id=data.counter_id,
        **fields,
    )
