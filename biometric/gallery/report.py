"""Screening reports: JSON and CSV for machines, one self-contained HTML page for people.

The HTML page embeds small face thumbnails (data URIs) read from the source photos at report
time, so it can be opened offline and mailed within the benefit unit; the store itself keeps no
photos (only small face thumbnails, where ``BIOMETRIC_STORE_FACE_THUMBNAILS`` opts in). The page
inlines the staff pages' style sheet (:mod:`biometric.gallery.style`), so both look alike.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from datetime import UTC, datetime
from pathlib import Path

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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Duplicate screening report</title>
<style>
{css}
</style></head><body>
<header class="bar"><h1>Duplicate screening report</h1><div>{when}</div></header>
<main>
<div class="card"><table class="summary">{summary}</table></div>
<p class="note">A pair is listed when its similarity is at or above the duplicate threshold
{threshold:.4f}, calibrated for a false-match rate of {fmr:g} per comparison. Over a gallery of
{n} claimants that rate alone predicts about {expected:.1f} false pairs: every pair needs a
person's review.</p>
<h2>Clusters ({n_clusters})</h2>
<ul>{clusters}</ul>
<h2>Pairs ({n_pairs}{shown})</h2>
{pairs}
</main></body></html>
"""


def write_report(
    result: ScreeningResult, out_dir: Path, pipeline: Pipeline | None = None
) -> dict[str, Path]:
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

    shown = result.pairs[:HTML_MAX_PAIRS]
    pair_html = "\n".join(
        f'<div class="pair" data-a="{html.escape(p["citizen_a"])}" '
        f'data-b="{html.escape(p["citizen_b"])}">'
        f'<figure><img alt="claimant {html.escape(p["citizen_a"])}" src="{thumb(p["citizen_a"])}">'
        f"<figcaption>{html.escape(p['citizen_a'])}</figcaption></figure>"
        f'<div class="score">{p["score"]:.3f}</div>'
        f'<figure><img alt="claimant {html.escape(p["citizen_b"])}" src="{thumb(p["citizen_b"])}">'
        f"<figcaption>{html.escape(p['citizen_b'])}</figcaption></figure></div>"
        for p in shown
    )
    rows = [
        ("gallery size", summary["gallery_size"]),
        ("enrolled in this run", summary["enrolled_now"]),
        ("already enrolled (skipped)", summary["skipped_already_enrolled"]),
        ("photos refused", summary["failures"]),
        ("review cases opened", summary["cases_opened"]),
    ]
    paths["html"].write_text(
        PAGE.format(
            css=CSS,
            when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            summary="".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in rows),
            threshold=result.threshold,
            fmr=result.fmr,
            n=summary["gallery_size"],
            expected=summary["expected_false_pairs"],
            n_clusters=len(result.clusters),
            clusters="".join(
                f"<li>{', '.join(html.escape(c) for c in cl)}</li>" for cl in result.clusters
            ),
            n_pairs=len(result.pairs),
            shown=f", first {HTML_MAX_PAIRS} shown" if len(result.pairs) > HTML_MAX_PAIRS else "",
            pairs=pair_html or "<p>No pair above the threshold.</p>",
        )
    )
    return paths
