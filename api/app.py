"""The counter verification HTTP service: ``create_app(settings)``.

Run it with ``biometric serve`` or ``uvicorn api.app:create_app --factory``. Pipeline calls
run in a bounded thread pool (``thread_pool_size``), never on the event loop; database calls
run in anyio's default worker threads.

Note: ``/docs`` (Swagger UI) and ``/redoc`` load their JavaScript and CSS from a CDN, so they
do not render at a counter without internet; ``/openapi.json`` always works.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Caller, require_roles
from api.capture_routes import router as capture_router
from api.gallery_routes import router as gallery_router
from api.i18n import localise_reasons, request_locale
from api.metrics import Metrics
from api.problems import (
    PROBLEM_BASE,
    PROBLEM_MEDIA_TYPE,
    Problem,
    from_problem,
    problem_example,
    problem_response,
)
from api.settings import Settings
from api.ui.routes import install as install_ui
from biometric import config
from biometric.decode import DecodeLimits
from biometric.errors import (
    BiometricError,
    ImageDecodeError,
    ImageTooLarge,
    ModelError,
    UnsupportedImageType,
)
from biometric.gallery.service import (
    CaseNotFound,
    ClaimantNotFound,
    GalleryError,
    InvalidCitizenId,
    open_gallery,
)
from biometric.pipeline import CHIP, LIVE, Pipeline, PipelineConfig, VerifyResult
from biometric.store import audit as audit_store
from biometric.store.db import make_engine, migrate, ping, session_factory
from biometric.store.models import Role

log = logging.getLogger("biometric.api")

CITIZEN_ID_PATTERN = r"^\d{12}$"
COUNTER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DATA_URL_RE = re.compile(r"^data:[\w/+.-]+;base64,")


# -- request context: request id, body size limit, latency metrics -----------------------------


class RequestContextMiddleware:
    """Pure ASGI (nothing buffered): assigns the request id, refuses bodies over the limit from
    Content-Length before reading and by counting streamed bytes, and times every request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                message["headers"] = [*raw, (b"x-request-id", rid.encode())]
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body_bytes
            ):
                request = Request(scope)
                code = "body_too_large" if declared.isdigit() else "bad_content_length"
                detail = (
                    f"request body is {declared} bytes; the limit is {self.max_body_bytes}"
                    if declared.isdigit()
                    else "Content-Length is not a number"
                )
                self.metrics.errors.labels(code).inc()
                response = problem_response(
                    request,
                    413 if declared.isdigit() else 400,
                    code,
                    detail,
                    headers={"Connection": "close"},
                    limit=self.max_body_bytes,
                )
                await response(scope, receive, send_wrapper)
                return

            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise Problem(
                            413,
                            "body_too_large",
                            f"request body exceeds the limit of {self.max_body_bytes} bytes",
                            headers={"Connection": "close"},
                            limit=self.max_body_bytes,
                        )
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(scope["method"], endpoint, str(status)).observe(
                time.perf_counter() - start
            )


# -- response models (for validation of output and the OpenAPI document) -----------------------


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


class AuditEventOut(BaseModel):
    id: int
    time: datetime
    request_id: str
    key_name: str | None
    counter_id: str | None
    citizen_id: str | None
    action: str
    decision: str
    score: float | None
    threshold: float | None
    fmr: float | None
    reasons: list[dict[str, Any]]
    model_versions: dict[str, str]
    quality: dict[str, float] | None = None
    liveness: dict[str, Any] | None = None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


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

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_example(401, "unauthorized", "missing, unknown or revoked X-API-Key"),
    403: problem_example(403, "forbidden", "role 'reviewer' may not call this endpoint"),
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


def _check_ids(citizen_id: str | None, counter_id: str | None) -> None:
    if citizen_id is not None and not re.fullmatch(CITIZEN_ID_PATTERN, citizen_id):
        raise Problem(422, "invalid_citizen_id", "citizen_id must be exactly 12 digits")
    if counter_id is not None and not re.fullmatch(COUNTER_ID_PATTERN, counter_id):
        raise Problem(
            422, "invalid_counter_id", "counter_id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
        )


async def _parse_multipart(request: Request) -> VerifyInput:
    async with request.form(max_files=2, max_fields=4) as form:
        parts: dict[str, bytes] = {}
        for name in (LIVE, CHIP):
            value = form.get(name)
            if value is None:
                raise Problem(
                    422, "missing_image", f"multipart part {name!r} is required", image=name
                )
            if not isinstance(value, UploadFile):
                raise Problem(
                    422, "invalid_part", f"part {name!r} must be a file upload", part=name
                )
            parts[name] = await value.read()
        ids = {}
        for name in ("citizen_id", "counter_id"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise Problem(422, "invalid_part", f"part {name!r} must be a text field", part=name)
            ids[name] = value or None
    _check_ids(ids["citizen_id"], ids["counter_id"])
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


# The most specific class in an error's MRO decides its status.
_STATUS_BY_ERROR: dict[type[BiometricError], int] = {
    ImageTooLarge: 413,
    UnsupportedImageType: 415,
    ImageDecodeError: 422,
    ModelError: 503,
    InvalidCitizenId: 422,
    ClaimantNotFound: 404,
    CaseNotFound: 404,
    GalleryError: 409,
}


def _decode_problem(exc: BiometricError, image: str | None) -> Problem:
    status = next((_STATUS_BY_ERROR[t] for t in type(exc).__mro__ if t in _STATUS_BY_ERROR), 500)
    where = f"{image} image: " if image else ""
    extra = {"image": image} if image else {}
    return Problem(status, exc.code, where + exc.message, **extra)


# -- the app ------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    limits = DecodeLimits(max_bytes=settings.max_body_bytes, max_pixels=settings.max_pixels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine: Engine = make_engine(settings.database_url)
        if settings.migrate_on_start:
            await anyio.to_thread.run_sync(migrate, engine)

        def load() -> Pipeline:
            pipeline = Pipeline(
                settings.models_dir,
                PipelineConfig(
                    fmr=settings.fmr,
                    limits=limits,
                    threads=settings.onnx_threads,
                    liveness=settings.liveness,
                ),
                settings.embedder,
            )
            pipeline.warm_up()
            _ = pipeline.operating_point  # fail at start-up, not on the first request
            return pipeline

        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.pipeline = await anyio.to_thread.run_sync(load)
        app.state.limiter = anyio.CapacityLimiter(settings.thread_pool_size)
        app.state.gallery = await anyio.to_thread.run_sync(
            lambda: open_gallery(
                engine,
                app.state.pipeline,
                settings.index_dir or config.index_dir(),
                settings.duplicate_fmr,
                settings.duplicate_policy,
            )
        )
        log.info("biometric API ready: %s", app.state.pipeline.model_versions)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(app.state.gallery.save_index)
            engine.dispose()

    app = FastAPI(
        title="biometric counter verification",
        version="1",
        description=(
            "Compares the live capture at a counter with the ID card chip portrait. "
            "Errors are RFC 9457 problem documents. Note: /docs loads Swagger UI from a CDN "
            "and does not render offline; /openapi.json is always served."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics
    )
    _install_error_handlers(app, metrics)
    app.include_router(gallery_router)
    app.include_router(capture_router)
    install_ui(app)  # /ui/counter and /ui/review: staff pages, served locally

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: models loaded and database reachable",
        responses={503: problem_example(503, "not_ready", "database unreachable")},
    )
    async def readyz(request: Request) -> dict[str, Any]:
        if getattr(request.app.state, "pipeline", None) is None:
            raise Problem(503, "not_ready", "models are not loaded")
        try:
            await anyio.to_thread.run_sync(ping, request.app.state.engine)
        except Exception as exc:
            raise Problem(503, "not_ready", f"database unreachable: {type(exc).__name__}") from None
        return {"status": "ready", "models": request.app.state.pipeline.model_versions}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/verify",
        tags=["verify"],
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
            raise Problem(
                415, "unsupported_media_type", "send multipart/form-data or application/json"
            )
        pipeline: Pipeline = request.app.state.pipeline
        queued = time.perf_counter()

        def work() -> tuple[VerifyResult, float]:
            started = time.perf_counter()
            image = LIVE
            try:
                live = pipeline.decode(data.live).rgb
                image = CHIP
                chip = pipeline.decode(data.chip).rgb
            except BiometricError as exc:
                raise _decode_problem(exc, image) from None
            decode_ms = (time.perf_counter() - started) * 1000.0
            result = pipeline.verify(live, chip)
            result.timings_ms["decode"] = decode_ms
            result.timings_ms["total"] += decode_ms
            return result, (started - queued) * 1000.0

        try:
            with anyio.fail_after(settings.request_timeout_s):
                result, queue_ms = await anyio.to_thread.run_sync(
                    work, limiter=request.app.state.limiter, abandon_on_cancel=True
                )
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
            raise _decode_problem(exc, None) from None

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
        locale = request_locale(request)  # the audit keeps the service's language
        for role in (LIVE, CHIP):
            body[role]["reasons"] = localise_reasons(body[role]["reasons"], locale)
        return {
            "request_id": rid,
            "decision": body["decision"],
            "score": body["score"],
            "threshold": body["threshold"],
            "fmr": body["fmr"],
            "reasons": localise_reasons(body["reasons"], locale),
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

    @app.get(
        "/v1/audit",
        tags=["audit"],
        summary="Read the audit trail (newest first)",
        description="Needs an `admin` key. Page with `cursor` = the previous page's `next_cursor`.",
        response_model=AuditPage,
        responses=ERROR_RESPONSES,
    )
    async def read_audit(
        request: Request,
        _caller: Annotated[Caller, Depends(require_roles(Role.ADMIN))],
        citizen_id: Annotated[str | None, Query(pattern=CITIZEN_ID_PATTERN)] = None,
        counter_id: Annotated[str | None, Query(pattern=COUNTER_ID_PATTERN)] = None,
        decision: Literal["match", "no_match", "retake", "refused"] | None = None,
        since: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
        until: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        q = audit_store.AuditQuery(citizen_id, counter_id, decision, since, until, limit, cursor)
        sessions: sessionmaker[Session] = request.app.state.sessions

        def read() -> list[dict[str, Any]]:
            with sessions() as s:
                return [e.to_dict() for e in audit_store.query(s, q)]

        items = await anyio.to_thread.run_sync(read)
        next_cursor = items[-1]["id"] if len(items) == limit else None
        return {"items": items, "next_cursor": next_cursor}

    return app


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        metrics.errors.labels(exc.code).inc()
        return from_problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        metrics.errors.labels(code).inc()
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(request, exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("validation_error").inc()
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return problem_response(
            request,
            422,
            "validation_error",
            "the request is not valid",
            errors=jsonable_encoder(errors),
        )

    @app.exception_handler(BiometricError)
    async def on_biometric(request: Request, exc: BiometricError) -> JSONResponse:
        problem = _decode_problem(exc, None)
        metrics.errors.labels(problem.code).inc()
        return from_problem(request, problem)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        metrics.errors.labels("internal_error").inc()
        log.error(
            "unhandled error (request %s)", getattr(request.state, "request_id", None), exc_info=exc
        )
        return problem_response(
            request,
            500,
            "internal_error",
            "unexpected error; quote the request_id when reporting it",
        )


__all__ = ["PROBLEM_BASE", "PROBLEM_MEDIA_TYPE", "Settings", "create_app"]
