"""Commands of the distributed path: ``enrol-bulk`` and ``load-templates`` (registered on the
main CLI); ``screen --address`` is in :mod:`biometric.gallery.cli`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from biometric import console
from biometric.distributed.runtime import RayTarget

Address = Annotated[
    str | None,
    typer.Option(
        help="Ray: 'auto' (this machine's cluster), 'ray://host:10001', or 'local' to start "
        "Ray embedded on this machine (the default)."
    ),
]


def target_of(address: str | None) -> RayTarget:
    return RayTarget(None if address in (None, "", "local") else address)


class RateColumn(ProgressColumn):
    """Items per second since the start: results arrive a block at a time, so rich's speed over
    its last few updates would jump between bursts."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        return Text(f"{task.completed / elapsed:.1f}/s" if elapsed > 0 else "-- /s")


@contextmanager
def rate_bar(description: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A progress bar with rate and ETA: yields ``(set_total, advance)``."""
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console.err) as bar:
        task = bar.add_task(description, total=None)
        yield (lambda n: bar.update(task, total=n)), (lambda n: bar.advance(task, n))


def enrol_bulk(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet with citizen_id,photo.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet template shards.")],
    address: Address = None,
    workers: Annotated[int, typer.Option(help="Actors in the pool (one model copy each).")] = 2,
    batch_size: Annotated[int, typer.Option(help="Photos per batch.")] = 16,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder (default: the manifest's).")
    ] = None,
) -> None:
    """Embed a national list of photos on Ray into Parquet shards (resumable, idempotent)."""
    from biometric.distributed.enrol_job import EnrolJobConfig, run_enrol_job
    from biometric.distributed.source import read_source

    def run() -> dict:
        rows = read_source(source)
        cfg = EnrolJobConfig(
            out, workers=workers, batch_size=batch_size, embedder=embedder,
            target=target_of(address),
        )
        with rate_bar("embedding") as (set_total, advance):
            result = run_enrol_job(rows, cfg, on_start=set_total, advance=advance)
        return result.to_dict()

    console.out.print_json(json.dumps(console.guard(run)))


def load_templates(
    shards: Annotated[Path, typer.Argument(help="Folder written by enrol-bulk.")],
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL [env BIOMETRIC_DATABASE_URL].")
    ] = None,
) -> None:
    """Load enrol-bulk shards into the store (skips citizen ids already enrolled)."""
    import pyarrow.parquet as pq

    from biometric.distributed.enrol_job import JOB_FILE
    from biometric.distributed.load import load_shards, shard_files
    from biometric.gallery.service import IndexBackend, open_gallery
    from biometric.pipeline import Pipeline
    from biometric.store.db import make_engine, migrate

    def run() -> dict:
        files = shard_files(shards)
        job = json.loads((shards / JOB_FILE).read_text())
        engine = make_engine(db)
        migrate(engine)
        pipeline = Pipeline(embedder=job["model"])  # the store takes the shards' model
        gallery = open_gallery(engine, pipeline, backend=IndexBackend("store"))
        rows = sum(pq.read_metadata(f).num_rows for f in files)
        with rate_bar("loading") as (set_total, advance):
            set_total(rows)
            result = load_shards(gallery, shards, advance=advance)
        return result.to_dict()

    console.out.print_json(json.dumps(console.guard(run)))


def register(app: typer.Typer) -> None:
    app.command("enrol-bulk")(enrol_bulk)
    app.command("load-templates")(load_templates)
