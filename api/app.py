"""The counter verification HTTP service: ``create_app(settings)``.

Run it with ``biometric serve`` or ``uvicorn api.app:create_app --factory``. This module only
assembles the app: start-up and shutdown (models, database, gallery index), middleware, error
handlers and the routers of ``api.routes`` (one per resource) and ``api.ui``. Verifications run
in worker processes (``verify_workers``, one per core: ``biometric.workers``); other pipeline
calls run in a bounded thread pool (``thread_pool_size``); never on the event loop. Database
calls run in anyio's default worker threads.

``/docs`` (Swagger UI) and ``/redoc`` are served with their assets from this host (see
:mod:`api.docs`), so they work at a counter without internet.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import Engine

from api import redaction
from api.auditing import audit_aggregate
from api.auth import FailedAuthLimiter, aggregate_row
from api.docs import install as install_docs
from api.errors import install_error_handlers
from api.metrics import Metrics
from api.middleware import AuthGate, RequestContextMiddleware
from api.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from api.routes import audit, capture, gallery, ops, verify
from api.settings import Settings, trust_store_warning
from api.ui.routes import install as install_ui
from api.ui.routes import session_router
from biometric import config
from biometric.chip.errors import TrustStoreError
from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.trust import TrustStore
from biometric.decode import DecodeLimits
from biometric.gallery.service import Gallery, IndexBackend, open_gallery
from biometric.operating_point import load_operating_point
from biometric.pipeline import Pipeline, PipelineConfig
from biometric.procs import die_with_parent
from biometric.store.audit import Notary, store_name
from biometric.store.db import make_engine, migrate, session_factory
from biometric.verification import Verifier
from biometric.workers import PipelinePool, PoolConfig

log = logging.getLogger("biometric.api")


async def _refresh_index(gallery: Gallery, interval_s: float) -> None:
    """Catch the gallery's index up with the store now and then, between requests: a worker
    maps a rewritten shared index file (after an erasure) even when idle."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await anyio.to_thread.run_sync(gallery.sync)
        except Exception:  # the next request retries and reports; keep the loop alive
            log.exception("index refresh failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        # A worker of `serve --workers N`: SIGTERM (a graceful stop, which saves the index)
        # when the supervisor dies, so no orphan keeps the port.
        die_with_parent(parent.pid)
    redaction.install()
    metrics = Metrics()
    limits = DecodeLimits(max_bytes=settings.max_body_bytes, max_pixels=settings.max_pixels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine: Engine = make_engine(settings.database_url)
        if settings.migrate_on_start:
            await anyio.to_thread.run_sync(migrate, engine)

        site = (
            load_operating_point(settings.operating_point)
            if settings.operating_point is not None
            else None
        )
        pipeline_settings = PipelineConfig(
            fmr=settings.fmr,
            operating_point=site,
            limits=limits,
            threads=settings.onnx_threads,
            liveness=settings.liveness,
            liveness_model=settings.liveness_model,
        )

        def load() -> Pipeline:
            embedder = settings.embedder or (site.embedder if site is not None else None)
            pipeline = Pipeline(settings.models_dir, pipeline_settings, embedder)
            pipeline.warm_up()
            _ = pipeline.operating_point  # fail at start-up, not on the first request
            return pipeline

        if settings.chip_auth is ChipAuthPolicy.BLOCK and settings.csca_dir is None:
            raise TrustStoreError("BIOMETRIC_CHIP_AUTH=block needs a trust store: set "
                                  "BIOMETRIC_CSCA_DIR (every chip would be refused)")
        app.state.trust = (
            await anyio.to_thread.run_sync(TrustStore.load, settings.csca_dir)
            if settings.csca_dir is not None and settings.chip_auth is not ChipAuthPolicy.OFF
            else None
        )
        warning = trust_store_warning(settings)
        if warning:
            log.warning("!!! %s !!!", warning)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        notary = Notary.open(
            settings.audit_key_file, settings.audit_checkpoints, store_name(engine)
        )
        with app.state.sessions() as s:
            notary.anchor_head(s)  # rows written before this start are anchored from now on
        app.state.notary = notary
        app.state.pipeline = await anyio.to_thread.run_sync(load)
        app.state.verifier = Verifier(app.state.pipeline, settings.chip_auth, app.state.trust)
        app.state.limiter = anyio.CapacityLimiter(settings.thread_pool_size)
        app.state.verify_pool = None
        if settings.verify_workers:
            pool = PipelinePool(
                settings.verify_workers,
                PoolConfig(settings.models_dir, pipeline_settings, app.state.pipeline.option,
                           settings.chip_auth),
            )
            await pool.start()
            app.state.verify_pool = pool
            log.info("verify workers: %d, RSS %s bytes", pool.size, pool.memory_bytes())
        app.state.gallery = await anyio.to_thread.run_sync(
            lambda: open_gallery(
                engine,
                app.state.pipeline,
                settings.index_dir or config.index_dir(),
                settings.duplicate_fmr,
                settings.duplicate_policy,
                backend=IndexBackend.parse(settings.index),
            )
        )
        log.info(
            "biometric API ready: %s, operating point %s",
            app.state.pipeline.model_versions,
            app.state.pipeline.operating_point.id,
        )
        refresher = asyncio.create_task(
            _refresh_index(app.state.gallery, settings.index_refresh_s)
        )
        try:
            yield
        finally:
            refresher.cancel()
            if app.state.verify_pool is not None:
                await app.state.verify_pool.close()
            await anyio.to_thread.run_sync(app.state.gallery.close)
            for aggregate in app.state.auth_limiter.drain(everything=True):
                await audit_aggregate(app, aggregate_row(aggregate))
            notary.close()
            engine.dispose()

    app = FastAPI(
        title="biometric counter verification",
        version="1",
        description=(
            "Compares the live capture at a counter with the ID card chip portrait, and screens "
            "enrolments for duplicates. Every /v1 call needs an `X-API-Key`; errors are RFC 9457 "
            "problem documents (`application/problem+json`)."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    limiter = FailedAuthLimiter(settings.auth_failure_limit, settings.auth_failure_window_s)
    app.state.auth_limiter = limiter
    # Added first, so it runs inside the request context (the request id is set).
    resources = (ops, verify, capture, audit, gallery)
    # Every /v1 route, the pages' sign-in checks included: the gate authenticates them all.
    routers = [resource.router for resource in resources] + [session_router]
    api_routes = [route for router in routers for route in router.routes]
    app.add_middleware(AuthGate, routes=api_routes, limiter=limiter, metrics=metrics)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics
    )
    install_error_handlers(app, metrics)
    for resource in resources:
        app.include_router(resource.router)
    install_ui(app)  # /ui/counter and /ui/review: staff pages, served locally
    install_docs(app)
    return app


__all__ = ["PROBLEM_BASE", "PROBLEM_MEDIA_TYPE", "Settings", "create_app"]
