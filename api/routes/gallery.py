"""Gallery endpoints: enrol with screening, 1:N search, erasure, the duplicate review queue.

Thin: validate, authenticate, run the library call in the pipeline thread pool, audit, shape.
Enrolment and search need a ``reviewer`` or ``admin`` key, erasure an ``admin`` key. With
``BIOMETRIC_STORE_FACE_THUMBNAILS`` on, enrolment keeps a small face crop per template, served to
reviewers by ``GET /v1/claimants/{citizen_id}/face``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auditing import audit, audit_fields, committed, note_citizen
from api.auth import Caller, require_roles
from api.problems import Problem, problem_example
from api.validation import CITIZEN_ID_PATTERN, DB_ID_MAX, ERROR_RESPONSES, UPLOAD_RESPONSES
from biometric.decide import OperatingPoint, ScoreScale
from biometric.gallery.service import DuplicatePolicy, EnrolResult, Gallery
from biometric.gallery.thumbnails import thumbnail_jpeg
from biometric.pipeline import CHIP, LIVE, Pipeline
from biometric.store import audit as audit_store
from biometric.store.models import Role
from biometric.views import ReasonView

STAFF = require_roles(Role.REVIEWER, Role.ADMIN)
ADMIN = require_roles(Role.ADMIN)

router = APIRouter(prefix="/v1", tags=["gallery"], responses=ERROR_RESPONSES)


DISPLAY_SCORE = Field(description="the score on the 0-100 scale staff see (the duplicate "
                      "threshold = 50), the same scale as verification; `score` is the raw one")


class CandidateOut(BaseModel):
    citizen_id: str
    score: float
    display_score: int | None = DISPLAY_SCORE
    template_id: int


class EnrolOut(BaseModel):
    citizen_id: str
    status: Literal["active", "held"]
    template_id: int
    replaced_templates: int
    duplicate_threshold: float
    duplicate_fmr: float
    candidates: list[CandidateOut] = Field(description="claimants above the duplicate threshold")
    case_ids: list[int]
    quality: float | None


class SearchOut(BaseModel):
    candidates: list[CandidateOut]
    duplicate_threshold: float


class CaseOut(BaseModel):
    id: int
    citizen_id: str
    candidate_citizen_id: str
    score: float
    display_score: int | None = DISPLAY_SCORE
    faces_stored: list[str] = Field(
        [], description="which of the two claimants have a face thumbnail to show")
    threshold: float
    origin: str
    status: str
    created_at: str
    claimant_enrolled_at: str
    candidate_enrolled_at: str
    decided_at: str | None
    reviewer: str | None
    note: str | None


class CasePage(BaseModel):
    items: list[CaseOut]
    total: int
    limit: int
    offset: int


class CaseDecision(BaseModel):
    decision: Literal["confirmed", "dismissed"]
    note: str | None = Field(None, max_length=2000)


CASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: problem_example(404, "case_not_found", "no duplicate case 17"),
    409: problem_example(409, "case_already_decided", "case 17 was already dismissed"),
}


def _shown(request: Request, item: Any) -> dict[str, Any]:
    """A candidate or case as a dict with its score on the staff scale
    (:class:`biometric.decide.ScoreScale` over the gallery embedder's calibrated points, the
    duplicate threshold's FMR at 50)."""
    pipeline: Pipeline = request.app.state.pipeline
    gallery: Gallery = request.app.state.gallery
    thresholds = pipeline.manifest.get(gallery.model).thresholds
    scale = ScoreScale(tuple(OperatingPoint(t.threshold, t.fmr) for t in thresholds),
                       gallery.duplicate_fmr)
    out = item.to_dict()
    return {**out, "display_score": scale.display(out["score"])}


async def _in_pool(request: Request, fn: Any) -> Any:
    return await anyio.to_thread.run_sync(fn, limiter=request.app.state.limiter)


def _template(pipeline: Pipeline, rgb: Any, role: str):
    analysis = pipeline.template(rgb, role)
    if analysis.reasons:
        raise Problem(
            422,
            "poor_capture",
            "; ".join(r.text() for r in analysis.reasons),
            reasons=[ReasonView.model_validate(r).model_dump() for r in analysis.reasons],
        )
    return analysis


@router.post(
    "/claimants",
    status_code=201,
    response_model=EnrolOut,
    summary="Enrol a claimant, screening against everyone enrolled",
    responses={
        **UPLOAD_RESPONSES,
        409: problem_example(409, "enrolment_conflict", "enrolled by a concurrent request"),
    },
)
async def enrol(
    request: Request,
    caller: Annotated[Caller, Depends(STAFF)],
    citizen_id: Annotated[str, Form(pattern=CITIZEN_ID_PATTERN)],
    photo: Annotated[UploadFile, File(description="portrait (chip DG2 or live capture)")],
    display_name: Annotated[str | None, Form(max_length=200)] = None,
    source: Annotated[Literal["chip", "live"], Form()] = "chip",
    policy: Annotated[DuplicatePolicy | None, Form()] = None,
) -> dict[str, Any]:
    note_citizen(request, citizen_id)
    pipeline: Pipeline = request.app.state.pipeline
    gallery: Gallery = request.app.state.gallery
    data = await photo.read()

    keep_face = request.app.state.settings.store_face_thumbnails
    recorded = []

    def audit_row(s: Session, result: EnrolResult) -> None:
        best = result.candidates[0].score if result.candidates else None
        row = audit_fields(
            request,
            "enrol",
            result.status,
            citizen_id=citizen_id,
            score=best,
            threshold=gallery.duplicate_threshold,
            fmr=gallery.duplicate_fmr,
            reasons=[c.to_dict() for c in result.candidates],
            model_versions=pipeline.model_versions,
        )
        recorded.append(audit_store.append(s, **row))

    def work():
        rgb = pipeline.decode(data).rgb
        analysis = _template(pipeline, rgb, CHIP if source == "chip" else LIVE)
        quality = analysis.quality.score if analysis.quality else None
        thumbnail = None
        if keep_face and analysis.subject is not None:
            thumbnail = thumbnail_jpeg(rgb, analysis.subject.box)
        result = gallery.enrol(
            citizen_id,
            analysis.embedding,
            source=source,
            quality=quality,
            display_name=display_name,
            policy=policy,
            thumbnail=thumbnail,
            record=audit_row,  # committed with the enrolment, or neither is
        )
        return result, quality

    result, quality = await _in_pool(request, work)
    committed(request, recorded)
    # This worker's live FMR gauges, current without a scrape (serve --workers N: one series
    # per worker process, each counting its own enrolments).
    request.app.state.metrics.observe_gallery_fmr(gallery.fmr_monitor.snapshot())
    return {
        "citizen_id": result.citizen_id,
        "status": result.status,
        "template_id": result.template_id,
        "replaced_templates": result.replaced_templates,
        "duplicate_threshold": gallery.duplicate_threshold,
        "duplicate_fmr": gallery.duplicate_fmr,
        "candidates": [_shown(request, c) for c in result.candidates],
        "case_ids": result.case_ids,
        "quality": quality,
    }


@router.post(
    "/search",
    response_model=SearchOut,
    summary="1:N search for a photo",
    responses=UPLOAD_RESPONSES,
)
async def search(
    request: Request,
    caller: Annotated[Caller, Depends(STAFF)],
    photo: Annotated[UploadFile, File()],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    pipeline: Pipeline = request.app.state.pipeline
    gallery: Gallery = request.app.state.gallery
    data = await photo.read()

    def work():
        return gallery.search(_template(pipeline, pipeline.decode(data).rgb, CHIP).embedding, k)

    candidates = await _in_pool(request, work)
    await audit(
        request,
        "search",
        "searched",
        score=candidates[0].score if candidates else None,
        reasons=[c.to_dict() for c in candidates],
    )
    return {
        "candidates": [_shown(request, c) for c in candidates],
        "duplicate_threshold": gallery.duplicate_threshold,
    }


@router.delete(
    "/claimants/{citizen_id}",
    summary="Erase a claimant (right to erasure)",
    responses={404: problem_example(404, "claimant_not_found", "no claimant 012345678901")},
)
async def erase(
    request: Request,
    caller: Annotated[Caller, Depends(ADMIN)],
    citizen_id: Annotated[str, Path(pattern=CITIZEN_ID_PATTERN)],
) -> dict[str, Any]:
    gallery: Gallery = request.app.state.gallery
    recorded = []

    def audit_row(s: Session) -> None:
        row = audit_fields(request, "erase", "erased", citizen_id=citizen_id)
        recorded.append(audit_store.append(s, **row))

    removed = await _in_pool(request, lambda: gallery.erase(citizen_id, record=audit_row))
    committed(request, recorded)
    return {"citizen_id": citizen_id, "templates_removed": removed}


@router.get(
    "/claimants/{citizen_id}/face",
    summary="The claimant's stored face thumbnail (JPEG)",
    description=(
        "Only stored when the deployment opts in (`BIOMETRIC_STORE_FACE_THUMBNAILS`); otherwise, "
        "or for a claimant enrolled before, a 404 `face_not_stored` problem. Needs a `reviewer` "
        "or `admin` key."
    ),
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "a JPEG face crop, at most 160 px"},
        404: problem_example(404, "face_not_stored", "no face thumbnail is stored"),
    },
)
async def claimant_face(
    request: Request,
    _caller: Annotated[Caller, Depends(STAFF)],
    citizen_id: Annotated[str, Path(pattern=CITIZEN_ID_PATTERN)],
) -> Response:
    gallery: Gallery = request.app.state.gallery
    jpeg = await anyio.to_thread.run_sync(lambda: gallery.face_thumbnail(citizen_id))
    if jpeg is None:
        raise Problem(
            404, "face_not_stored", f"no face thumbnail is stored for claimant {citizen_id}"
        )
    await audit(request, "read_face", "read", citizen_id=citizen_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get(
    "/gallery/fmr-estimate",
    summary="Live false-match-rate estimate among enrolled claimants",
    description=(
        "Pairs of different enrolled claimants are impostor pairs of the people and cameras in "
        "service: counted from every enrolment's 1:N search since the service started, at the "
        "gallery's threshold, with a 95 % interval. `exceeds` is true when the interval lies "
        "above 2x the claim. Enrolment-vs-enrolment scores, not live-vs-chip (README). Needs "
        "a `reviewer` or `admin` key."
    ),
)
async def fmr_estimate(
    request: Request, _caller: Annotated[Caller, Depends(STAFF)]
) -> dict[str, Any]:
    gallery: Gallery = request.app.state.gallery
    return gallery.fmr_monitor.snapshot().to_dict()


@router.get("/cases", response_model=CasePage, summary="The duplicate review queue")
async def list_cases(
    request: Request,
    _caller: Annotated[Caller, Depends(STAFF)],
    status: Literal["open", "confirmed", "dismissed", "all"] = "open",
    citizen_id: Annotated[str | None, Query(pattern=CITIZEN_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_ID_MAX)] = 0,
) -> dict[str, Any]:
    gallery: Gallery = request.app.state.gallery

    def work():
        cases, total = gallery.list_cases(None if status == "all" else status, limit, offset,
                                          citizen_id)
        ids = [i for c in cases for i in (c.citizen_id, c.candidate_citizen_id)]
        return cases, total, gallery.faces_stored(ids)

    cases, total, faces = await anyio.to_thread.run_sync(work)
    await audit(
        request,
        "list_cases",
        "read",
        citizen_id=citizen_id,
        reasons=[{"status": status, "offset": offset, "returned": len(cases)}],
    )
    items = [{**_shown(request, c), "faces_stored": sorted(
        {c.citizen_id, c.candidate_citizen_id} & faces)} for c in cases]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/cases/{case_id}/decision",
    response_model=CaseOut,
    summary="Confirm or dismiss a duplicate case",
    description="Final: a decided case answers 409 until an `admin` reopens it.",
    responses=CASE_RESPONSES,
)
async def decide_case(
    request: Request,
    caller: Annotated[Caller, Depends(STAFF)],
    case_id: Annotated[int, Path(ge=1, le=DB_ID_MAX)],
    body: CaseDecision,
) -> dict[str, Any]:
    gallery: Gallery = request.app.state.gallery
    view = await anyio.to_thread.run_sync(
        lambda: gallery.decide_case(case_id, body.decision, caller.key_name, body.note)
    )
    await audit(
        request,
        "case_decision",
        body.decision,
        citizen_id=view.citizen_id,
        score=view.score,
        reasons=[{"case_id": case_id, "note": body.note}],
    )
    return _shown(request, view)


class CaseReopen(BaseModel):
    reason: str | None = Field(None, max_length=2000)


@router.post(
    "/cases/{case_id}/reopen",
    response_model=CaseOut,
    summary="Reopen a decided case (admin)",
    description="A case decision is final: only an `admin` key can put it back in the queue.",
    responses=CASE_RESPONSES,
)
async def reopen_case(
    request: Request,
    _caller: Annotated[Caller, Depends(ADMIN)],
    case_id: Annotated[int, Path(ge=1, le=DB_ID_MAX)],
    body: CaseReopen,
) -> dict[str, Any]:
    gallery: Gallery = request.app.state.gallery
    view = await anyio.to_thread.run_sync(lambda: gallery.reopen_case(case_id, body.reason))
    await audit(
        request,
        "case_reopen",
        "reopened",
        citizen_id=view.citizen_id,
        reasons=[{"case_id": case_id, "note": body.reason}],
    )
    return _shown(request, view)
