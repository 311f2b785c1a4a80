"""Screening reports: JSON and CSV for machines, one self-contained HTML page for people.

The HTML page (a Jinja2 template with autoescaping, ``templates/report.html.j2``, its texts
from the message catalogues and its numbers and dates formatted by Babel for the locale)
embeds small face thumbnails (data URIs) read from the source photos at report
time, so it can be opened offline and mailed within the benefit unit; the store itself keeps no
photos (only small face thumbnails, where ``BIOMETRIC_STORE_FACE_THUMBNAILS`` opts in). The page
inlines the staff pages' style sheet (:mod:`biometric.gallery.style`), so both look alike.
"""

from __future__ import annotations

import base64
import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from babel.dates import format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from biometric import i18n
from biometric.decide import OperatingPoint, ScoreScale
from biometric.decode import read_image
from biometric.errors import BiometricError
from biometric.gallery.screening import ScreeningResult
from biometric.gallery.style import CSS
from biometric.gallery.thumbnails import THUMB_PX, thumbnail_jpeg
from biometric.pipeline import Pipeline

HTML_MAX_PAIRS = 300


def _thumbnail(path: str, pipeline: Pipeline | None) -> str:
    """A face crop (or the whole photo when no face is found) as a JPEG data URI."""
    try:
        rgb = read_image(path).rgb
    except BiometricError:
        return ""
    box = None
    if pipeline is not None:
        faces = pipeline.detect(rgb)
        if faces:
            box = faces[0].box
    try:
        jpeg = thumbnail_jpeg(rgb, box, THUMB_PX, quality=85)
    except ValueError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


TEMPLATES = Environment(
    loader=PackageLoader("biometric.gallery", "templates"),
    autoescape=select_autoescape(["html", "j2"], default_for_string=True),
    trim_blocks=True,
)


def _number(value: float, locale: str, digits: int = 0) -> str:
    """A number as the locale writes it (Vietnamese: 1.234,5), by Babel."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, pattern, locale=locale)


def _scale(result: ScreeningResult, pipeline: Pipeline | None) -> ScoreScale | None:
    """The staff score scale of the pipeline's embedder, the duplicate threshold at 50."""
    if pipeline is None:
        return None
    entry = pipeline.manifest.get(pipeline.embedder.spec.name)
    return ScoreScale(tuple(OperatingPoint(t.threshold, t.fmr) for t in entry.thresholds),
                      result.fmr)


def write_report(
    result: ScreeningResult, out_dir: Path, pipeline: Pipeline | None = None,
    locale: str | None = None,
) -> dict[str, Path]:
    """Write the JSON, CSV and HTML reports; the HTML page in ``locale`` (default: the
    service's ``BIOMETRIC_LOCALE``, Vietnamese)."""
    locale = locale or i18n.default_locale()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    paths = {
        "json": out_dir / "screening.json",
        "pairs_csv": out_dir / "pairs.csv",
        "clusters_csv": out_dir / "clusters.csv",
        "html": out_dir / "report.html",
    }
    paths["json"].write_text(
        json.dumps(
            {
                "summary": summary,
                "pairs": result.pairs,
                "clusters": result.clusters,
                "failures": result.failures,
            },
            indent=2,
        )
        + "\n"
    )
    with paths["pairs_csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["citizen_a", "citizen_b", "score"])
        for p in result.pairs:
            w.writerow([p["citizen_a"], p["citizen_b"], p["score"]])
    with paths["clusters_csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster", "citizen_id"])
        for i, cluster in enumerate(result.clusters, 1):
            for cid in cluster:
                w.writerow([i, cid])

    thumbs: dict[str, str] = {}

    def thumb(cid: str) -> str:
        if cid not in thumbs:
            path = result.paths.get(cid)
            thumbs[cid] = _thumbnail(path, pipeline) if path else ""
        return thumbs[cid]

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    scale = _scale(result, pipeline)
    pairs = []
    for p in result.pairs[:HTML_MAX_PAIRS]:
        display = scale.display(p["score"]) if scale is not None else None
        pairs.append({
            "a": p["citizen_a"], "b": p["citizen_b"],
            "thumb_a": thumb(p["citizen_a"]), "thumb_b": thumb(p["citizen_b"]),
            "shown": _number(display, locale) if display is not None
            else _number(p["score"], locale, 3),
            "raw": _number(p["score"], locale, 3),
        })
    rows = [
        (t("report.gallery_size"), _number(summary["gallery_size"], locale)),
        (t("report.enrolled_now"), _number(summary["enrolled_now"], locale)),
        (t("report.skipped"), _number(summary["skipped_already_enrolled"], locale)),
        (t("report.refused"), _number(summary["failures"], locale)),
        (t("report.cases_opened"), _number(summary["cases_opened"], locale)),
    ]
    total = _number(len(result.pairs), locale)
    pairs_title = (t("report.pairs_first", n=total, shown=_number(HTML_MAX_PAIRS, locale))
                   if len(result.pairs) > HTML_MAX_PAIRS else t("report.pairs", n=total))
    note = t("report.note", threshold=_number(result.threshold, locale, 4),
             fmr=format_decimal(result.fmr, locale=locale),
             n=_number(summary["gallery_size"], locale),
             expected=_number(summary["expected_false_pairs"], locale, 1))
    page = TEMPLATES.get_template("report.html.j2").render(
        locale=locale,
        t=t,
        css=Markup(CSS),  # the project's own style sheet, not data
        when=format_datetime(datetime.now(UTC), "short", tzinfo=UTC, locale=locale) + " UTC",
        rows=rows,
        note=note,
        n_clusters=_number(len(result.clusters), locale),
        clusters=result.clusters,
        pairs_title=pairs_title,
        pairs=pairs,
    )
    paths["html"].write_text(page, encoding="utf-8")
    return paths
