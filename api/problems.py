"""RFC 9457 problem documents for every error the service returns. Title and detail are in
the caller's language (``Accept-Language``, else ``BIOMETRIC_LOCALE``); ``type`` keeps the
language-neutral code."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.i18n import localise_reasons, problem_texts, request_locale

PROBLEM_BASE = "https://biometric.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    rid = request_id_of(request)
    locale = request_locale(request)
    if isinstance(extra.get("reasons"), list):  # retake reasons (e.g. poor_capture)
        extra = {**extra, "reasons": localise_reasons(extra["reasons"], locale)}
        detail = "; ".join(r["message"] for r in extra["reasons"]) or detail
    local_title, detail = problem_texts(locale, status, code, detail, extra)
    body = {
        "type": PROBLEM_BASE + code,
        "title": local_title or title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": rid,
        **extra,
    }
    all_headers = {**(headers or {}), "Content-Language": locale}
    if rid:
        all_headers["X-Request-ID"] = rid
    return JSONResponse(
        body, status_code=status, headers=all_headers, media_type=PROBLEM_MEDIA_TYPE
    )


def from_problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(
        request, exc.status, exc.code, exc.detail, exc.title, exc.headers, **exc.extra
    )


PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
}


def problem_example(status: int, code: str, detail: str) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": PROBLEM_SCHEMA,
                "example": {
                    "type": PROBLEM_BASE + code,
                    "title": HTTPStatus(status).phrase,
                    "status": status,
                    "detail": detail,
                    "instance": "/v1/verify",
                    "request_id": "6f1c0e7a9b3d4c2e8f0a1b2c3d4e5f60",
                },
            }
        },
    }
