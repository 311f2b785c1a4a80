"""Every error becomes an RFC 9457 problem document: library errors map to statuses here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auditing import audit_refusal
from api.metrics import Metrics
from api.problems import Problem, from_problem, problem_response
from biometric.chip.errors import ChipDataError
from biometric.errors import (
    BiometricError,
    ImageDecodeError,
    ImageTooLarge,
    ModelError,
    UnsupportedImageType,
)
from biometric.gallery.service import CaseNotFound, ClaimantNotFound, GalleryError, InvalidCitizenId
from biometric.verification import PreparedChipUnusable

log = logging.getLogger("biometric.api")

# The most specific class in an error's MRO decides its status.
_STATUS_BY_ERROR: dict[type[BiometricError], int] = {
    ImageTooLarge: 413,
    UnsupportedImageType: 415,
    ImageDecodeError: 422,
    ChipDataError: 422,
    ModelError: 503,
    InvalidCitizenId: 422,
    ClaimantNotFound: 404,
    CaseNotFound: 404,
    GalleryError: 409,
    PreparedChipUnusable: 422,
}


def problem_from_error(exc: BiometricError, image: str | None) -> Problem:
    status = next((_STATUS_BY_ERROR[t] for t in type(exc).__mro__ if t in _STATUS_BY_ERROR), 500)
    where = f"{image} image: " if image else ""
    extra = {"image": image} if image else {}
    return Problem(status, exc.code, where + exc.message, **extra)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        metrics.errors.labels(exc.code).inc()
        await audit_refusal(request, exc.status, exc.code)
        return from_problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if getattr(request.state, "body_too_large", False):
            limit = request.app.state.settings.max_body_bytes
            too_large = Problem(
                413,
                "body_too_large",
                f"request body exceeds the limit of {limit} bytes",
                headers={"Connection": "close"},
            )
            return await on_problem(request, too_large)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        metrics.errors.labels(code).inc()
        await audit_refusal(request, exc.status_code, code)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(request, exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("validation_error").inc()
        await audit_refusal(request, 422, "validation_error")
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
        problem = problem_from_error(exc, None)
        metrics.errors.labels(problem.code).inc()
        await audit_refusal(request, problem.status, problem.code)
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
