"""Bulk enrolment as a Ray Data job: photos in, Parquet template shards out.

The source rows are split into shards by a stable hash of the citizen id. Ray Data streams them
through ``map_batches`` on a pool of actors (:class:`EnrolActor`), each loading the ONNX models
once; the driver collects each shard's rows and writes ``part-NNNNN.parquet`` atomically
(temporary file, then rename) once all of them are in. Hence:

- resumable: a restarted job skips shards whose file exists;
- idempotent: a citizen id belongs to one shard, and a shard is written once, so a second run
  writes nothing and no id appears twice;
- fault tolerant: Ray Data restarts a dead actor and retries its batch (its defaults,
  ``max_restarts=-1`` and ``max_task_retries=-1``); the driver keeps one row per citizen id,
  so a retried batch cannot duplicate one;
- nothing silently dropped: a photo that yields no template is a row with ``status`` failed and
  its reason, counted in ``_summary.json``.

``_job.json`` pins the shard count, the source fingerprint and the model, so a resumed job cannot
mix in a different list or model.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biometric import config
from biometric.distributed.runtime import RayTarget, connect
from biometric.distributed.source import SourceError, SourceRow, fingerprint, read_photo, shard_of
from biometric.errors import BiometricError
from biometric.manifest import Manifest, load_manifest, option_embedders
from biometric.pipeline import CHIP, Pipeline

JOB_FILE = "_job.json"
SUMMARY_FILE = "_summary.json"
OK, FAILED = "ok", "failed"
PROCESSING_ERROR = "processing_error"
# Rows per shard file: ~10k templates is ~5 MB of Parquet and ~5 CPU-minutes of work at 30 ms
# a photo, so a crash loses little and a 100M run makes ~10k files (not millions).
ROWS_PER_SHARD = 10_000
# Rows per Ray Data run: the driver keeps a wave's rows and results (~0.5 GB at 500k); each wave
# starts the actor pool again (one model load per actor, seconds against hours of work).
ROWS_PER_WAVE = 500_000


def shard_path(out_dir: Path, shard: int) -> Path:
    return out_dir / f"part-{shard:05d}.parquet"


def template_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("citizen_id", pa.string()),
            ("photo", pa.string()),
            ("status", pa.string()),
            ("template", pa.list_(pa.float32(), dim)),  # null when status is failed
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("quality", pa.float32()),
            ("reasons", pa.list_(pa.string())),  # failure reason, or quality warnings
            ("detail", pa.string()),
            ("cpu_ms", pa.float32()),  # detect + embed CPU time of this photo, for cost models
        ]
    )


def model_identity(manifest: Manifest, embedder: str | None) -> tuple[str, str, int]:
    """(model name, version, dimension) of the embedder, as the store records them (see
    ``open_gallery``); read from the manifest, so nothing about the embedder is fixed here."""
    if embedder is not None and len(option_embedders(embedder)) > 1:
        raise SourceError("bulk enrolment stores one model's templates; name one embedder")
    spec = manifest.embedder_spec(embedder)
    return spec.name, manifest.get(spec.name).sha256[:12], spec.embedding_size


class EnrolActor:
    """One per worker: loads the models once, then turns batches of rows into templates."""

    def __init__(self, models_dir: str | None, embedder: str | None) -> None:
        self.pipeline = Pipeline(Path(models_dir) if models_dir else None, embedder=embedder)
        self.pipeline.warm_up()
        self.model, self.version, self.dim = model_identity(self.pipeline.manifest, embedder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["citizen_id"])
        status = np.full(n, OK, dtype=object)
        templates = np.full((n, self.dim), np.nan, dtype=np.float32)
        quality = np.full(n, np.nan, dtype=np.float32)
        reasons = np.empty(n, dtype=object)
        detail = np.full(n, "", dtype=object)
        cpu_ms = np.zeros(n, dtype=np.float32)
        analysed = []
        for i, ref in enumerate(batch["photo"]):
            started = time.thread_time()
            try:
                analysis = self.pipeline.analyse(read_photo(str(ref)).rgb, CHIP)
            except BiometricError as exc:
                status[i], reasons[i], detail[i] = FAILED, [exc.code], exc.message
            except Exception as exc:
                # One odd photo must not fail a national run (cv2/onnxruntime errors on inputs
                # nobody foresaw): a counted failure with the error's text, to investigate.
                status[i], reasons[i] = FAILED, [PROCESSING_ERROR]
                detail[i] = f"{type(exc).__name__}: {exc}"
            else:
                if analysis.subject is None:
                    status[i], reasons[i], detail[i] = FAILED, ["no_face"], "no face found"
                else:
                    reasons[i] = [r.code for r in analysis.reasons]
                    quality[i] = analysis.quality.score if analysis.quality else np.nan
                    analysed.append((i, analysis))
            cpu_ms[i] = (time.thread_time() - started) * 1000.0
        started = time.thread_time()
        self.pipeline.embed([a for _, a in analysed])
        share = (time.thread_time() - started) * 1000.0 / max(1, len(analysed))
        for i, analysis in analysed:
            templates[i] = analysis.embedding
            cpu_ms[i] += share
        return {
            "citizen_id": batch["citizen_id"],
            "photo": batch["photo"],
            "shard": batch["shard"],
            "status": status,
            "template": templates,
            "model": np.full(n, self.model, dtype=object),
            "model_version": np.full(n, self.version, dtype=object),
            "quality": quality,
            "reasons": reasons,
            "detail": detail,
            "cpu_ms": cpu_ms,
        }


@dataclass(frozen=True)
class EnrolJobConfig:
    out_dir: Path
    workers: int = 2  # actors in the pool (one model copy each)
    batch_size: int = 16  # photos per map_batches call
    rows_per_shard: int = ROWS_PER_SHARD
    embedder: str | None = None  # None: the manifest's default embedder
    models_dir: Path | None = None
    target: RayTarget = field(default_factory=RayTarget)


@dataclass
class EnrolJobResult:
    out_dir: str
    rows: int
    shards: int
    shards_written: int
    shards_skipped: int
    enrolled: int
    failed: int
    failures_by_reason: dict[str, int]
    model: str
    model_version: str
    wall_s: float
    worker_cpu_s: float  # detect + embed CPU spent by the workers on this run's photos

    def to_dict(self) -> dict:
        return asdict(self)


def _plan(cfg: EnrolJobConfig, rows: list[SourceRow], model: tuple[str, str, int]) -> int:
    """Create or check ``_job.json``; returns the shard count."""
    name, version, dim = model
    job = {
        "source_fingerprint": fingerprint(rows),
        "rows": len(rows),
        "shards": max(1, math.ceil(len(rows) / cfg.rows_per_shard)),
        "model": name,
        "model_version": version,
        "dim": dim,
    }
    path = cfg.out_dir / JOB_FILE
    if path.is_file():
        earlier = json.loads(path.read_text())
        for key in ("source_fingerprint", "model", "model_version"):
            if earlier.get(key) != job[key]:
                raise SourceError(
                    f"{cfg.out_dir} holds a job with a different {key.replace('_', ' ')} "
                    f"({earlier.get(key)} != {job[key]}); use a new --out folder"
                )
        return int(earlier["shards"])
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(job, indent=2))
    os.replace(tmp, path)
    return int(job["shards"])


def _write_shard(out_dir: Path, shard: int, rows: dict[str, dict], schema: pa.Schema) -> None:
    ordered = [rows[cid] for cid in sorted(rows)]
    columns = {name: [r[name] for r in ordered] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    final = shard_path(out_dir, shard)
    tmp = final.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:  # on disk before it counts as finished
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def _row_of(batch: dict[str, np.ndarray], i: int) -> dict:
    ok = batch["status"][i] == OK
    q = float(batch["quality"][i])
    return {
        "citizen_id": str(batch["citizen_id"][i]),
        "photo": str(batch["photo"][i]),
        "status": str(batch["status"][i]),
        "template": batch["template"][i].tolist() if ok else None,
        "model": str(batch["model"][i]),
        "model_version": str(batch["model_version"][i]),
        "quality": None if math.isnan(q) else q,
        "reasons": [str(r) for r in batch["reasons"][i]],
        "detail": str(batch["detail"][i]) or None,
        "cpu_ms": float(batch["cpu_ms"][i]),
    }


def summarise(out_dir: Path) -> dict:
    """Counts over every finished shard (this run's and earlier runs')."""
    enrolled = failed = 0
    reasons: Counter[str] = Counter()
    for path in sorted(out_dir.glob("part-*.parquet")):
        t = pq.read_table(path, columns=["status", "reasons"])
        for status, why in zip(t["status"].to_pylist(), t["reasons"].to_pylist(), strict=True):
            if status == OK:
                enrolled += 1
            else:
                failed += 1
                reasons.update(why[:1] or ["unknown"])
    return {"enrolled": enrolled, "failed": failed, "failures_by_reason": dict(reasons)}


def run_enrol_job(
    rows: list[SourceRow],
    cfg: EnrolJobConfig,
    *,
    on_start: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> EnrolJobResult:
    """Run (or resume) the job; ``on_start(photos to do)`` then ``advance(n)`` report progress."""

    started = time.perf_counter()
    manifest = load_manifest(cfg.models_dir or config.models_dir())
    model = model_identity(manifest, cfg.embedder)
    n_shards = _plan(cfg, rows, model)
    by_shard: dict[int, list[SourceRow]] = {}
    for row in rows:
        by_shard.setdefault(shard_of(row.citizen_id, n_shards), []).append(row)
    todo = sorted(s for s in by_shard if not shard_path(cfg.out_dir, s).is_file())
    if on_start:
        on_start(sum(len(by_shard[s]) for s in todo))
    cpu_ms = 0.0
    if todo:
        connect(cfg.target)
    for wave in _waves(todo, by_shard):
        pending = [r for s in wave for r in by_shard[s]]
        cpu_ms += _stream(cfg, pending, n_shards, by_shard, wave, model[2], advance)
    summary = summarise(cfg.out_dir)
    (cfg.out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return EnrolJobResult(
        out_dir=str(cfg.out_dir),
        rows=len(rows),
        shards=len(by_shard),
        shards_written=len(todo),
        shards_skipped=len(by_shard) - len(todo),
        model=model[0],
        model_version=model[1],
        wall_s=round(time.perf_counter() - started, 3),
        worker_cpu_s=round(cpu_ms / 1000.0, 3),
        **summary,
    )


def _waves(todo: list[int], by_shard: dict[int, list[SourceRow]]) -> list[list[int]]:
    """Shards grouped into Ray Data runs of at most ``ROWS_PER_WAVE`` rows, so the driver holds
    one wave's blocks and results at a time (the source list itself it holds whole: about
    200 B a row, 20 GB for 100M; split a national list by region beyond that)."""
    waves: list[list[int]] = [[]]
    rows = 0
    for shard in todo:
        if waves[-1] and rows + len(by_shard[shard]) > ROWS_PER_WAVE:
            waves.append([])
            rows = 0
        waves[-1].append(shard)
        rows += len(by_shard[shard])
    return [w for w in waves if w]


def _stream(
    cfg: EnrolJobConfig,
    pending: list[SourceRow],
    n_shards: int,
    by_shard: dict[int, list[SourceRow]],
    todo: list[int],
    dim: int,
    advance: Callable[[int], None] | None,
) -> float:
    """Push the pending rows through the actor pool and write each shard once it is complete."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # shards complete one after another
    ctx.enable_progress_bars = False  # the caller's bar shows rate and ETA
    # Blocks of a few batches: enough to keep every actor busy, few enough for the driver; small
    # jobs split evenly (a batch larger than a block would merge blocks into one task).
    block = max(1, min(4 * cfg.batch_size, math.ceil(len(pending) / cfg.workers)))
    tables = [
        pa.table(
            {
                "citizen_id": [r.citizen_id for r in pending[i : i + block]],
                "photo": [r.photo for r in pending[i : i + block]],
                "shard": [shard_of(r.citizen_id, n_shards) for r in pending[i : i + block]],
            }
        )
        for i in range(0, len(pending), block)
    ]
    ds = ray.data.from_arrow(tables).map_batches(
        EnrolActor,
        fn_constructor_kwargs={
            "models_dir": str(cfg.models_dir) if cfg.models_dir else None,
            "embedder": cfg.embedder,
        },
        batch_size=min(cfg.batch_size, block),
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.workers),
        num_cpus=1,
        # Ray Data's own defaults for actor pools restart a dead actor and retry its batch
        # (max_restarts=-1, max_task_retries=-1); tests/test_distributed.py kills one mid-job.
    )
    schema = template_schema(dim)
    expected = {s: {r.citizen_id for r in by_shard[s]} for s in todo}
    collected: dict[int, dict[str, dict]] = {s: {} for s in todo}
    cpu_ms = 0.0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for i in range(len(batch["citizen_id"])):
            row = _row_of(batch, i)
            shard = int(batch["shard"][i])
            if shard not in collected or row["citizen_id"] in collected[shard]:
                continue  # a retried batch delivers a row again: keep one
            collected[shard][row["citizen_id"]] = row
            cpu_ms += row["cpu_ms"]
            if advance:
                advance(1)
            if len(collected[shard]) == len(expected[shard]):
                _write_shard(cfg.out_dir, shard, collected.pop(shard), schema)
    missing = {s: len(expected[s]) - len(rows) for s, rows in collected.items()}
    if missing:
        raise BiometricError(f"the job ended with shards incomplete: {missing}")
    return cpu_ms
