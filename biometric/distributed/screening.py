"""Bulk duplicate screening on Ray: enrol with the Ray Data job, load the templates into the
store, self-join over the sharded index, and conclude exactly as the single-process screening
(same pairs, clusters, cases and report)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from biometric.distributed.enrol_job import EnrolJobConfig, EnrolJobResult, run_enrol_job
from biometric.distributed.load import load_shards
from biometric.distributed.runtime import RayTarget, connect
from biometric.distributed.shards import ShardedIndex, engine_url
from biometric.distributed.source import SourceRow
from biometric.gallery.screening import ScreeningResult, conclude, list_source
from biometric.gallery.service import Gallery

TEMPLATES_SUBDIR = "templates"


@dataclass(frozen=True)
class DistributedScreening:
    target: RayTarget = field(default_factory=RayTarget)
    shards: int = 4
    workers: int = 2
    kind: str | None = None  # None: each shard's IndexSpec.for_size default for its size
    batch_size: int = 16


def screen_distributed(
    gallery: Gallery,
    engine: Engine,
    source: Path,
    out_dir: Path,
    settings: DistributedScreening,
    *,
    k: int = 10,
    on_enrol_start: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[ScreeningResult, EnrolJobResult]:
    items = list_source(source)
    rows = [SourceRow(i.citizen_id, str(i.path)) for i in items]
    job = run_enrol_job(
        rows,
        EnrolJobConfig(
            out_dir / TEMPLATES_SUBDIR,
            workers=settings.workers,
            batch_size=settings.batch_size,
            embedder=gallery.model,
            target=settings.target,
        ),
        on_start=on_enrol_start,
        advance=advance,
    )
    loaded = load_shards(gallery, out_dir / TEMPLATES_SUBDIR)
    connect(settings.target)
    index = ShardedIndex(
        engine_url(engine), gallery.model, gallery.dim, settings.shards, settings.kind
    )
    try:
        pairs = index.self_join(k, gallery.duplicate_threshold, progress)
    finally:
        index.shutdown()
    result = conclude(
        gallery,
        items,
        pairs,
        enrolled_now=loaded.loaded,
        skipped=loaded.skipped_already_enrolled,
        failures=loaded.failures,
    )
    return result, job
