"""Gallery commands: enrol, search, erase, bulk screen, review cases. Registered on the main CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from biometric import config
from biometric.console import err, fail, guard, out, progress_bar
from biometric.decode import read_image
from biometric.gallery.service import DuplicatePolicy, Gallery, IndexBackend, open_gallery
from biometric.pipeline import CHIP, LIVE, Pipeline

cases_app = typer.Typer(help="Review queue of likely duplicates.", no_args_is_help=True)

Db = Annotated[str | None, typer.Option("--db", help="Database URL [env BIOMETRIC_DATABASE_URL].")]
Fmr = Annotated[float | None, typer.Option(help="Duplicate threshold's FMR (calibrated).")]


def _open(
    db: str | None, fmr: float | None = None, policy: DuplicatePolicy = DuplicatePolicy.FLAG
) -> tuple[Pipeline, Gallery]:
    from biometric.store.db import make_engine, migrate

    engine = make_engine(db)
    migrate(engine)
    pipeline = Pipeline()
    pipeline.warm_up()
    with progress_bar("loading index", None) as advance:

        def step(_phase: str, done: int, total: int) -> None:
            advance(0, total=total or None)

        gallery = open_gallery(engine, pipeline, config.index_dir(), fmr, policy, step)
    n = gallery.template_count()
    err.print(
        f"gallery: {n} template{'' if n == 1 else 's'}, change {gallery.change_number}, "
        f"duplicate threshold {gallery.duplicate_threshold:.4f} (FMR {gallery.duplicate_fmr:g})"
    )
    return pipeline, gallery


def enrol(
    citizen_id: Annotated[str, typer.Argument(help="12-digit personal identification number.")],
    photo: Annotated[Path, typer.Argument(help="Portrait to enrol.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    source: Annotated[str, typer.Option(help="chip or live.")] = "chip",
    policy: Annotated[
        DuplicatePolicy, typer.Option(help="On a likely duplicate.")
    ] = DuplicatePolicy.FLAG,
    db: Db = None,
    fmr: Fmr = None,
) -> None:
    """Enrol a claimant, screening the photo against everyone already enrolled."""

    def run() -> dict:
        pipeline, gallery = _open(db, fmr, policy)
        analysis = pipeline.template(read_image(photo).rgb, CHIP if source == "chip" else LIVE)
        if analysis.embedding is None:
            fail("no_usable_face", f"{photo}: " + "; ".join(r.text() for r in analysis.reasons))
        r = gallery.enrol(
            citizen_id,
            analysis.embedding,
            source=source,
            display_name=name,
            quality=analysis.quality.score if analysis.quality else None,
        )
        gallery.save_index()
        return {
            "citizen_id": r.citizen_id,
            "status": r.status,
            "template_id": r.template_id,
            "replaced_templates": r.replaced_templates,
            "case_ids": r.case_ids,
            "candidates": [c.to_dict() for c in r.candidates],
        }

    out.print_json(json.dumps(guard(run)))


def search(
    photo: Annotated[Path, typer.Argument(help="Photo to search for.")],
    k: Annotated[int, typer.Option("-k", help="Candidates to return.")] = 10,
    db: Db = None,
) -> None:
    """1:N search: the k most similar enrolled claimants."""

    def run() -> list[dict]:
        pipeline, gallery = _open(db)
        analysis = pipeline.template(read_image(photo).rgb, CHIP)
        if analysis.embedding is None:
            fail("no_usable_face", f"{photo}: no usable face")
        return [c.to_dict() for c in gallery.search(analysis.embedding, k)]

    out.print_json(json.dumps({"candidates": guard(run)}))


def erase(
    citizen_id: Annotated[str, typer.Argument(help="Claimant to erase (right to erasure).")],
    db: Db = None,
) -> None:
    """Delete a claimant's templates and cases from the store and the index."""

    def run() -> int:
        _, gallery = _open(db)
        removed = gallery.erase(citizen_id)
        gallery.save_index()
        return removed

    out.print(f"erased {citizen_id}: {guard(run)} template(s) removed")


def screen(
    source: Annotated[
        Path, typer.Argument(help="Folder of <citizen id>.<ext> photos, or CSV id,path.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path(
        "screening-report"
    ),
    k: Annotated[int, typer.Option("-k", help="Neighbours per template in the self-join.")] = 10,
    db: Db = None,
    fmr: Fmr = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Run on Ray: 'local' (embedded), 'auto' or 'ray://host:10001'. Without it, "
            "everything runs in this process."
        ),
    ] = None,
    shards: Annotated[int, typer.Option(help="With --address: index shards.")] = 4,
    workers: Annotated[int, typer.Option(help="With --address: enrolment actors.")] = 2,
) -> None:
    """Bulk duplicate screening: enrol everything (resumable), self-join, cluster, report."""
    from biometric.gallery.report import write_report
    from biometric.gallery.screening import screen as run_screen

    def run() -> dict:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if address:
            return _screen_on_ray(source, out_dir, k, db, fmr, address, shards, workers)
        pipeline, gallery = _open(db, fmr)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("embedding and enrolling", total=None)
            result = run_screen(
                gallery,
                pipeline,
                source,
                k=k,
                on_enrol_start=lambda n: bar.update(task, total=n),
                progress=lambda n: bar.advance(task, n),
            )
        paths = write_report(result, out_dir, pipeline)
        return {"summary": result.summary(), "files": {k: str(v) for k, v in paths.items()}}

    report = guard(run)
    table = Table("", "")
    for key in (
        "gallery_size",
        "enrolled_now",
        "skipped_already_enrolled",
        "failures",
        "pairs",
        "clusters",
        "cases_opened",
        "threshold",
        "expected_false_pairs",
    ):
        table.add_row(key, str(report["summary"][key]))
    out.print(table)
    out.print(f"report: {report['files']['html']}")


def _screen_on_ray(
    source: Path,
    out_dir: Path,
    k: int,
    db: str | None,
    fmr: float | None,
    address: str,
    shards: int,
    workers: int,
) -> dict:
    from biometric.distributed.cli import rate_bar, target_of
    from biometric.distributed.screening import DistributedScreening, screen_distributed
    from biometric.gallery.report import write_report
    from biometric.store.db import make_engine, migrate

    engine = make_engine(db)
    migrate(engine)
    pipeline = Pipeline()
    gallery = open_gallery(engine, pipeline, fmr=fmr, backend=IndexBackend("store"))
    settings = DistributedScreening(target_of(address), shards=shards, workers=workers)
    with rate_bar("embedding on Ray") as (set_total, advance):
        result, job = screen_distributed(
            gallery, engine, source, out_dir, settings, k=k,
            on_enrol_start=set_total, advance=advance,
        )
    err.print(f"enrol job: {job.shards_written} shards written, {job.shards_skipped} skipped")
    paths = write_report(result, out_dir, pipeline)
    return {"summary": result.summary(), "files": {k: str(v) for k, v in paths.items()}}


@cases_app.command("list")
def cases_list(
    status: Annotated[str, typer.Option(help="open, confirmed, dismissed or all.")] = "open",
    limit: Annotated[int, typer.Option()] = 50,
    offset: Annotated[int, typer.Option()] = 0,
    db: Db = None,
) -> None:
    """List duplicate cases, highest score first."""

    def run():
        _, gallery = _open(db)
        return gallery.list_cases(None if status == "all" else status, limit, offset)

    cases, total = guard(run)
    table = Table("case", "citizen", "looks like", "score", "origin", "status", "reviewer")
    for c in cases:
        table.add_row(
            str(c.id),
            c.citizen_id,
            c.candidate_citizen_id,
            f"{c.score:.3f}",
            c.origin,
            c.status,
            c.reviewer or "",
        )
    out.print(table)
    out.print(f"{len(cases)} of {total}")


@cases_app.command("decide")
def cases_decide(
    case_id: Annotated[int, typer.Argument()],
    decision: Annotated[str, typer.Argument(help="confirmed or dismissed.")],
    reviewer: Annotated[str, typer.Option(help="Who decides.")],
    note: Annotated[str | None, typer.Option()] = None,
    db: Db = None,
) -> None:
    """Confirm or dismiss a duplicate case."""

    def run():
        _, gallery = _open(db)
        return gallery.decide_case(case_id, decision, reviewer, note)

    out.print_json(json.dumps(guard(run).to_dict()))


def register(app: typer.Typer) -> None:
    for fn in (enrol, search, erase, screen):
        app.command()(fn)
    app.add_typer(cases_app, name="cases")
