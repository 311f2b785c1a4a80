"""Writing the audit trail from the API: every access to personal data, every decision and
every refusal, by key. Never photos, templates or secrets (an API key is recorded by name).

Routes call :func:`audit` for what they did; the error handlers call :func:`audit_refusal` for
every refused ``/v1`` request a route did not audit itself (401/403/404/409/413/422...).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import anyio.to_thread
from fastapi import Request

from api.problems import Problem
from biometric.gallery.service import CITIZEN_ID
from biometric.store import audit as audit_store

log = logging.getLogger("biometric.api")


def note_citizen(request: Request, citizen_id: str | None) -> None:
    """Remember whose data this request is about, for the refusal audit if it fails later."""
    request.state.citizen_id = citizen_id


def audit_fields(
    request: Request, action: str, decision: str, **fields: Any
) -> dict[str, Any]:
    """One row's fields: the service's request id, the client's own id apart, the key by name."""
    return {
        "request_id": request.state.request_id,
        "client_request_id": getattr(request.state, "client_request_id", None),
        "key_name": getattr(request.state, "key_name", None),
        "action": action,
        "decision": decision,
        **fields,
    }


async def audit(
    request: Request,
    action: str,
    decision: str,
    *,
    citizen_id: str | None = None,
    counter_id: str | None = None,
    required: bool = True,
    **fields: Any,
) -> None:
    """Append one row. ``required``: a failure is a 503 (the access must not happen unrecorded);
    otherwise (refusals) it is logged and the original answer stands."""
    row = audit_fields(
        request, action, decision, citizen_id=citizen_id, counter_id=counter_id, **fields
    )

    def write() -> None:
        with request.app.state.sessions() as s:
            audit_store.record(s, getattr(request.app.state, "notary", None), **row)

    try:
        await anyio.to_thread.run_sync(write)
    except Exception:
        log.exception("audit write failed (request %s)", request.state.request_id)
        if required:
            raise Problem(
                503, "audit_unavailable", "the request could not be recorded; try again"
            ) from None
        return
    request.state.audited = True


def committed(request: Request, recorded: list[audit_store.Appended]) -> None:
    """After a route's own transaction committed its audit row: sign the new head."""
    notary = getattr(request.app.state, "notary", None)
    for appended in recorded:
        if notary is not None:
            notary.sign(appended.length, appended.head, appended.last_id)
        request.state.audited = True


async def audit_aggregate(app: Any, row: dict[str, Any]) -> None:
    """One aggregated refusal row (rate-limited failures), outside any request."""

    def write() -> None:
        with app.state.sessions() as s:
            audit_store.record(
                s, getattr(app.state, "notary", None), request_id=uuid.uuid4().hex, **row
            )

    try:
        await anyio.to_thread.run_sync(write)
    except Exception:
        log.exception("aggregated audit write failed")


_AUDITED_PATH = re.compile(r"^/v1/")


async def audit_refusal(request: Request, status: int, code: str) -> None:
    """Record a refused ``/v1`` request: the route (its template, never the raw path), the
    status and problem code, the key by name and the citizen id when it is a valid one."""
    if (
        not _AUDITED_PATH.match(request.url.path)
        or getattr(request.state, "audited", False)
        or code == "audit_unavailable"
    ):
        return
    route = request.scope.get("route")
    citizen = getattr(request.state, "citizen_id", None) or request.path_params.get("citizen_id")
    if citizen is not None and not CITIZEN_ID.fullmatch(str(citizen)):
        citizen = None
    case_id = str(request.path_params.get("case_id", ""))
    reason: dict[str, Any] = {
        "code": code,
        "status": status,
        "method": request.method,
        "route": getattr(route, "path", None),
    }
    if case_id.isascii() and case_id.isdigit() and len(case_id) <= 10:
        reason["case_id"] = int(case_id)
    await audit(
        request,
        # Refused before routing (an oversized body), or no such route.
        getattr(route, "name", None) or "http_request",
        "refused",
        citizen_id=citizen,
        required=False,
        reasons=[reason],
    )
