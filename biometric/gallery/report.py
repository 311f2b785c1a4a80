"""Screening reports: JSON and CSV for machines, one self-contained HTML page for people.

The HTML page embeds small face thumbnails (data URIs) read from the source photos at report
time, so it can be opened offline and mailed within the benefit unit; the store itself keeps no
photos.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from biometric.decode import read_image
from biometric.errors import BiometricError
from biometric.gallery.screening import ScreeningResult
from biometric.pipeline import Pipeline

HTML_MAX_PAIRS = 300
THUMB_PX = 160


def _thumbnail(path: str, pipeline: Pipeline | None) -> str:
    """A face crop (or the whole photo when no face is found) as a JPEG data URI."""
    try:
        rgb = read_image(path).rgb
    except BiometricError:
        return ""
    crop = rgb
    if pipeline is not None:
        faces = pipeline.detect(rgb)
        if faces:
            x1, y1, x2, y2 = faces[0].box
            m = 0.35 * max(x2 - x1, y2 - y1)
            h, w = rgb.shape[:2]
            crop = rgb[
                max(0, int(y1 - m)) : min(h, int(y2 + m)), max(0, int(x1 - m)) : min(w, int(x2 + m))
            ]
    scale = THUMB_PX / max(crop.shape[:2])
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 85],
    )
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Duplicate screening report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}}
header{{background:#1d3557;color:#fff;padding:1rem 1.5rem}}
main{{padding:1rem 1.5rem;max-width:1100px}}
table.summary td{{padding:.2rem .8rem .2rem 0}}
.pair{{display:flex;gap:1rem;align-items:center;background:#fff;border-radius:8px;
padding:.8rem;margin:.6rem 0;box-shadow:0 1px 3px #0002}}
.pair figure{{margin:0;text-align:center}}
.pair img{{width:{px}px;height:{px}px;object-fit:cover;border-radius:6px;background:#ddd}}
.score{{font-size:1.4rem;font-weight:700;min-width:7rem;text-align:center}}
.note{{color:#555;font-size:.9rem}}
</style></head><body>
<header><h1>Duplicate screening report</h1><div>{when}</div></header>
<main>
<table class="summary">{summary}</table>
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
            px=THUMB_PX,
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
