"""The audit trail: ``GET /v1/audit`` for admins (newest first, cursor paging)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from api.auditing import audit
from api.auth import Caller, require_roles
from api.validation import (
    CITIZEN_ID_PATTERN,
    COUNTER_ID_PATTERN,
    DB_ID_MAX,
    ERROR_RESPONSES,
    QueryTime,
)
from biometric.store import audit as audit_store
from biometric.store.models import Role

router = APIRouter(tags=["audit"])


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
    chip_auth: dict[str, Any] | None = None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


@router.get(
    "/v1/audit",
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
    decision: Literal["match", "no_match", "retake", "manual_check", "chip_untrusted",
                      "refused"] | None = None,
    since: Annotated[QueryTime | None, Query(description="inclusive, ISO 8601, 1970-9998")] = None,
    until: Annotated[QueryTime | None, Query(description="exclusive, ISO 8601, 1970-9998")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=DB_ID_MAX)] = None,
) -> dict[str, Any]:
    q = audit_store.AuditQuery(citizen_id, counter_id, decision, since, until, limit, cursor)
    sessions: sessionmaker[Session] = request.app.state.sessions

    def read() -> list[dict[str, Any]]:
        with sessions() as s:
            return [e.to_dict() for e in audit_store.query(s, q)]

    items = await anyio.to_thread.run_sync(read)
    # Recorded after the read, so a page never shows its own access.
    filters = {"counter_id": counter_id, "decision": decision, "cursor": cursor}
    filters |= {"since": since and since.isoformat(), "until": until and until.isoformat()}
    await audit(
        request,
        "read_audit",
        "read",
        citizen_id=citizen_id,
        reasons=[{k: v for k, v in filters.items() if v is not None} | {"returned": len(items)}],
    )
    next_cursor = items[-1]["id"] if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}
