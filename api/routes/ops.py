"""Operations endpoints: liveness, readiness, Prometheus metrics. No key needed."""

from __future__ import annotations

import os
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from api.problems import Problem, problem_example
from biometric.store.db import ping

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
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


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics_endpoint(request: Request) -> Response:
    metrics = request.app.state.metrics
    gallery = getattr(request.app.state, "gallery", None)
    if gallery is not None:
        metrics.observe_gallery_fmr(gallery.fmr_monitor.snapshot())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # serve --workers N: every worker's values, from the shared directory (api.server).
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
