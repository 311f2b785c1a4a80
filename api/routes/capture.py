"""``POST /v1/capture-check``: guided capture for the counter page.

The page posts a small preview frame (the raw JPEG/PNG as the body) a few times a second while
the camera runs. The answer is the face boxes, the live quality and one instruction in the
caller's language. It runs detection and quality only: no embedding, no comparison, nothing
stored, and no audit record (a frame is not a decision; the capture that follows is verified
and audited by ``/v1/verify``).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.auth import Caller, require_roles
from api.errors import problem_from_error
from api.i18n import request_locale
from api.problems import Problem, problem_example
from api.validation import ERROR_RESPONSES, UPLOAD_RESPONSES
from biometric.errors import BiometricError
from biometric.guidance import CaptureCheck, check_capture
from biometric.i18n import translate
from biometric.pipeline import Pipeline
from biometric.store.models import Role
from biometric.views import QualityView, ReasonView

router = APIRouter(tags=["verify"])

# A preview frame is small (the page sends <= 640 px wide, ~30-60 kB); anything far bigger is
# a mistake, and refusing it early keeps a busy counter from loading the shared thread pool.
MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_FRAME_PIXELS = 1280 * 1280


class CaptureFace(BaseModel):
    box: list[float]
    score: float


class CaptureCheckResponse(BaseModel):
    instruction: str = Field(description="language-neutral code, e.g. move_closer or good")
    message: str = Field(description="the instruction in the caller's language")
    ready: bool = Field(description="the frame passes the live quality bounds")
    width: int
    height: int
    faces: list[CaptureFace]
    subject: int | None
    reasons: list[ReasonView]
    quality: QualityView | None
    timings_ms: dict[str, float]


@router.post(
    "/v1/capture-check",
    summary="Check a camera preview frame and say what to change (guided capture)",
    description=(
        "Body: one small camera frame as `image/jpeg` or `image/png` (send <= 640 px wide). "
        "`full_width`: the width of the photo that will be taken, so the face-size bound "
        "applies to it. Detection and quality only; nothing is stored or audited. Needs a "
        "`counter` or `admin` key."
    ),
    response_model=CaptureCheckResponse,
    responses={
        **ERROR_RESPONSES,
        **UPLOAD_RESPONSES,
        413: problem_example(413, "frame_too_large", "a preview frame is at most 2 MB"),
    },
)
async def capture_check(
    request: Request,
    _caller: Annotated[Caller, Depends(require_roles(Role.COUNTER, Role.ADMIN))],
    full_width: Annotated[int | None, Query(gt=0, le=10_000)] = None,
) -> dict[str, Any]:
    data = await request.body()
    if len(data) > MAX_FRAME_BYTES:
        raise Problem(413, "frame_too_large", f"a preview frame is at most {MAX_FRAME_BYTES} bytes")
    if not data:
        raise Problem(
            422, "missing_image", "send the camera frame as the request body", image="live"
        )
    pipeline: Pipeline = request.app.state.pipeline

    def work() -> CaptureCheck:
        try:
            rgb = pipeline.decode(data).rgb
        except BiometricError as exc:
            raise problem_from_error(exc, "live") from None
        if rgb.shape[0] * rgb.shape[1] > MAX_FRAME_PIXELS:
            raise Problem(
                413, "frame_too_large", "a preview frame is at most 1280x1280 pixels; send less"
            )
        scale = max(1.0, (full_width or rgb.shape[1]) / rgb.shape[1])
        return check_capture(pipeline, rgb, scale)

    check = await anyio.to_thread.run_sync(work, limiter=request.app.state.limiter)
    locale = request_locale(request)
    a = check.analysis
    return {
        "instruction": check.instruction.value,
        "message": translate(f"guide.{check.instruction.value}", locale),
        "ready": check.ready,
        "width": a.width,
        "height": a.height,
        "faces": [
            {"box": [round(v, 1) for v in f.box], "score": round(f.score, 4)} for f in a.faces
        ],
        "subject": a.faces.index(a.subject) if a.subject is not None else None,
        "reasons": [ReasonView.model_validate(r, context={"locale": locale}) for r in a.reasons],
        "quality": QualityView.model_validate(a.quality) if a.quality is not None else None,
        "timings_ms": {k: round(v, 2) for k, v in check.timings_ms.items()},
    }
