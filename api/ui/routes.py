"""The staff pages, served by the app itself (no CDN, works offline): ``/ui/counter`` and
``/ui/review`` are plain HTML files that call the JSON API from the browser with the API key the
user signs in with (kept in ``sessionStorage``). Static files are under ``api/ui/static``; the
style sheet is :mod:`biometric.gallery.style`, shared with the HTML screening report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.auditing import audit
from api.auth import Caller, require_roles
from api.validation import ERROR_RESPONSES
from biometric import i18n
from biometric.gallery.style import CSS
from biometric.store.models import Role

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The pages load nothing from elsewhere; the camera needs a secure context (https or localhost).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/ui", include_in_schema=False)
# Under /v1 so that a refused sign-in is audited like every other refused API call.
session_router = APIRouter(prefix="/v1/session", tags=["session"], responses=ERROR_RESPONSES)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=SECURITY_HEADERS)


@router.get("")
@router.get("/")
async def ui_index() -> RedirectResponse:
    return RedirectResponse("/ui/counter")


@router.get("/counter")
async def counter_page() -> FileResponse:
    return _page("counter.html")


@router.get("/review")
async def review_page() -> FileResponse:
    return _page("review.html")


async def _signed_in(request: Request, caller: Caller, page: str) -> dict[str, str]:
    await audit(request, "sign_in", "accepted", reasons=[{"page": page}])
    return {"name": caller.key_name, "role": caller.role, "page": page}


# Sign-in checks: the key is tried once when staff sign in, so a wrong key (401) or a key of
# the wrong role (403) is refused on the sign-in form, not at the first verification.
@session_router.get("/counter", summary="Check a key at sign-in on the counter page")
async def counter_session(
    request: Request, caller: Annotated[Caller, Depends(require_roles(Role.COUNTER, Role.ADMIN))]
) -> dict[str, str]:
    return await _signed_in(request, caller, "counter")


@session_router.get("/review", summary="Check a key at sign-in on the review page")
async def review_session(
    request: Request, caller: Annotated[Caller, Depends(require_roles(Role.REVIEWER, Role.ADMIN))]
) -> dict[str, str]:
    return await _signed_in(request, caller, "review")


# What the pages translate: their own texts and the codes they show.
PAGE_PREFIXES = ("ui.", "reason.", "decision.", "guide.", "image.")


@router.get("/i18n")
async def page_messages(request: Request, locale: str | None = None) -> JSONResponse:
    """The pages' texts in ``locale`` (vi or en; default: the service's BIOMETRIC_LOCALE).
    Not secret, so no key: the sign-in form needs them before anyone has signed in."""
    default = getattr(request.app.state.settings, "locale", None) or i18n.default_locale()
    chosen = locale if locale in i18n.LOCALES else default
    return JSONResponse(
        {
            "locale": chosen,
            "default": default,
            "available": list(i18n.LOCALES),
            "messages": i18n.messages(chosen, PAGE_PREFIXES),
        },
        headers={"Cache-Control": "no-cache", "Content-Language": chosen},
    )


@router.get("/static/style.css")
async def style_css() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Add the pages and their static files (scripts) to the app."""
    app.include_router(router)
    app.include_router(session_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
