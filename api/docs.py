"""``/docs`` (Swagger UI) and ``/redoc`` served from this host: counters have no internet, so
nothing may come from a CDN. The JavaScript and CSS are the files the ``fastapi-offline``
package ships (PyPI, MIT; Swagger UI 5 under Apache-2.0, Redoc under MIT), pinned in
pyproject.toml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"
REDOC_JS_URL = "/docs/redoc.js"
# Redoc's footer loads its logo from Redocly's CDN; served here with the local favicon instead,
# so /redoc makes no request off this host.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_js() -> bytes:
    js = (ASSETS_DIR / "redoc.standalone.js").read_bytes()
    assert REDOC_CDN_LOGO in js, "fastapi-offline's Redoc changed: check what it loads"
    return js.replace(REDOC_CDN_LOGO, f"{ASSETS_URL}/favicon.png".encode())


def install(app: FastAPI) -> None:
    """Add the two documentation pages; the app must be made with ``docs_url=None`` and
    ``redoc_url=None`` (FastAPI's own pages load from a CDN)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get(REDOC_JS_URL, include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_js(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            redoc_js_url=REDOC_JS_URL,
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
