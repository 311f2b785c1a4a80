"""Live photo versus chip portrait (ICAO 9303 DG2) accuracy, beside the plain run.

Every image of every set is rendered once as a chip portrait and decoded again through
``biometric.decode.decode_image``:

* head-and-shoulders crop around the detected face with the ISO/IEC 19794-5 token geometry
  (image width = 4 x inter-eye distance, eye line at 0.6 x width from the top, 3:4 aspect),
  borders replicated where the source photo is too tight (Yale B crops);
* downscaled (INTER_AREA) to 240x320, or the harder 120x160, optionally grey;
* encoded as JPEG 2000 (Pillow/OpenJPEG, ``quality_mode="rates"``) with the compression rate
  chosen so the file lands in 10-20 KB (target 15 KB). Where even the best quality is smaller
  than 10 KB (120x160 grey is ~8 KB lossless) the best quality is kept, and the sizes are reported.

Scores are cosine similarities between the *original* (live) embedding of image i and the chip
embedding of image j, i != j, within each set: genuine when i and j share the identity. The pairs
are ordered (i, j) and (j, i) are both counted, so there are about twice as many as in the plain
run; they are not independent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from benchmarks import accuracy, common
from benchmarks.markdown import at_fmr, fnmr_at_1e4, plots, source_line, table
from biometric.decode import decode_image, read_image
from biometric.errors import ImageDecodeError
from biometric.evaluation import EmbeddedSet, IdentitySet, embedding_cache_key
from biometric.pipeline import CHIP

RENDER_VERSION = "chip-render-1"
TARGET_BYTES = 15_000
MIN_BYTES = 10_000
MAX_BYTES = 20_000


@dataclass(frozen=True)
class ChipCondition:
    name: str
    size: tuple[int, int]  # width, height
    grey: bool


CONDITIONS = (
    ChipCondition("chip240", (240, 320), grey=False),
    ChipCondition("chip240_grey", (240, 320), grey=True),
    ChipCondition("chip120_grey", (120, 160), grey=True),
)
QUICK_CONDITIONS = (CONDITIONS[0], CONDITIONS[2])


def portrait_crop(rgb: np.ndarray, landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """ISO/IEC 19794-5 token-like crop: width 4x the inter-eye distance, eyes at 0.6 W."""
    left, right = landmarks[0].astype(np.float64), landmarks[1].astype(np.float64)
    mid = (left + right) / 2.0
    d = max(float(np.linalg.norm(right - left)), 4.0)
    width = 4.0 * d
    height = width * size[1] / size[0]
    x0 = round(mid[0] - width / 2.0)
    y0 = round(mid[1] - 0.6 * width)
    w, h = round(width), round(height)
    img_h, img_w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + w - img_w, y0 + h - img_h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = rgb[y0 : y0 + h, x0 : x0 + w]
    interp = cv2.INTER_AREA if w > size[0] else cv2.INTER_CUBIC
    return cv2.resize(crop, size, interpolation=interp)


def encode_jp2(img: Image.Image, rate: float) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[rate], irreversible=True)
    return buf.getvalue()


def encode_chip(portrait: np.ndarray, grey: bool) -> tuple[bytes, float]:
    """JPEG 2000 bytes in 10-20 KB where reachable; returns (bytes, compression rate)."""
    img = Image.fromarray(portrait)
    if grey:
        img = img.convert("L")
    raw = img.width * img.height * len(img.getbands())
    rate = max(raw / TARGET_BYTES, 1.0)
    data = encode_jp2(img, rate)
    for _ in range(6):
        if MIN_BYTES <= len(data) <= MAX_BYTES:
            break
        if len(data) < MIN_BYTES and rate <= 1.0:
            break  # already the best quality: the image is simply small
        rate = max(rate * len(data) / TARGET_BYTES, 1.0)
        data = encode_jp2(img, rate)
    return data, rate


def _cache_file(cache_dir: Path, pipeline, ident: IdentitySet, conds) -> Path:
    key = embedding_cache_key(pipeline, ident.images, RENDER_VERSION, *conds)
    return cache_dir / f"chip-{ident.name}-{key}.npz"


def render_and_embed(
    pipeline, ident: IdentitySet, conds, cache_dir: Path | None, advance
) -> dict[str, dict[str, np.ndarray]]:
    """For each condition: chip embeddings (NaN rows on failure), byte sizes, rates."""
    cache = _cache_file(cache_dir, pipeline, ident, conds) if cache_dir else None
    if cache is not None and cache.is_file():
        advance(len(ident.images))
        stored = np.load(cache)
        return {
            c.name: {k: stored[f"{c.name}.{k}"] for k in ("embeddings", "bytes", "rate")}
            for c in conds
        }
    dim = pipeline.embedder.spec.embedding_size
    n = len(ident.images)
    out = {
        c.name: {
            "embeddings": np.full((n, dim), np.nan, np.float32),
            "bytes": np.zeros(n, np.int64),
            "rate": np.zeros(n, np.float64),
        }
        for c in conds
    }
    for i, path in enumerate(ident.images):
        try:
            rgb = read_image(path).rgb
        except ImageDecodeError:
            advance()
            continue
        source = pipeline.analyse(rgb, CHIP)
        if source.subject is None:
            advance()
            continue
        for c in conds:
            data, rate = encode_chip(portrait_crop(rgb, source.subject.landmarks, c.size), c.grey)
            out[c.name]["bytes"][i] = len(data)
            out[c.name]["rate"][i] = rate
            analysis = pipeline.template(decode_image(data).rgb, CHIP)
            if analysis.embedding is not None:
                out[c.name]["embeddings"][i] = analysis.embedding
        advance()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{f"{c}.{k}": v for c, d in out.items() for k, v in d.items()})
    return out


def cross_scores(live: EmbeddedSet, chip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ordered (live i, chip j) pairs, i != j, both sides acquired."""
    ok_live = live.acquired
    ok_chip = ~np.isnan(chip[:, 0])
    li, ci = np.flatnonzero(ok_live), np.flatnonzero(ok_chip)
    sims = live.embeddings[li] @ chip[ci].T
    same = live.labels[li][:, None] == live.labels[ci][None, :]
    not_self = li[:, None] != ci[None, :]
    return sims[same & not_self], sims[~same & not_self]


def size_stats(sizes: np.ndarray) -> dict[str, Any]:
    s = sizes[sizes > 0]
    if len(s) == 0:
        return {"count": 0}
    return {
        "count": len(s),
        "median_bytes": float(np.median(s)),
        "min_bytes": int(s.min()),
        "max_bytes": int(s.max()),
        "fraction_in_10_20_kb": float(((s >= MIN_BYTES) & (s <= MAX_BYTES)).mean()),
    }


def condition_figures(
    live_sets: list[EmbeddedSet], chips: dict[str, dict[str, dict]], cond: ChipCondition
) -> tuple[dict, dict]:
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_set = {}
    all_g, all_i, all_ok, all_sizes = [], [], [], []
    for live in live_sets:
        data = chips[live.name][cond.name]
        g, imp = cross_scores(live, data["embeddings"])
        scores[live.name] = (g, imp)
        ok = ~np.isnan(data["embeddings"][:, 0])
        all_g.append(g)
        all_i.append(imp)
        all_ok.append(ok)
        all_sizes.append(data["bytes"])
        per_set[live.name] = {
            "images": len(live.images),
            "chip_failure_to_acquire": float(1.0 - ok.mean()) if len(ok) else 0.0,
            "live_failure_to_acquire": live.failure_to_acquire,
            "jp2_size": size_stats(data["bytes"]),
            **common.error_figures(g, imp),
            "histogram": common.score_histograms(g, imp),
        }
    g, imp = np.concatenate(all_g), np.concatenate(all_i)
    scores["pooled"] = (g, imp)
    ok = np.concatenate(all_ok)
    pooled = {
        "images": len(ok),
        "chip_failure_to_acquire": float(1.0 - ok.mean()) if len(ok) else 0.0,
        "live_failure_to_acquire": float(
            1.0 - np.concatenate([s.acquired for s in live_sets]).mean()
        ),
        "jp2_size": size_stats(np.concatenate(all_sizes)),
        **common.error_figures(g, imp),
        "histogram": common.score_histograms(g, imp),
    }
    return {
        "size": list(cond.size),
        "grey": cond.grey,
        "sets": per_set,
        "pooled": pooled,
    }, scores


def run(quick: bool, out_dir: Path, cache_dir: Path | None = common.EMBED_CACHE) -> dict:
    pipeline = common.make_pipeline(threads=1)
    sets = accuracy.load_sets(quick)
    live_sets = accuracy.embed_all(pipeline, sets, cache_dir)
    plain, plain_scores = accuracy.evaluate(live_sets, "plain")
    conds = QUICK_CONDITIONS if quick else CONDITIONS
    chips: dict[str, dict] = {}
    total = sum(len(s.images) for s in sets)
    with common.progress_bar("rendering + embedding chips", total) as advance:
        for s in sets:
            chips[s.name] = render_and_embed(pipeline, s, conds, cache_dir, advance)
    conditions: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {
        f"plain {k}": v for k, v in plain_scores.items() if k != "pooled"
    }
    for c in conds:
        figures, scores = condition_figures(live_sets, chips, c)
        conditions[c.name] = figures
        curves.update({f"{c.name} {k}": v for k, v in scores.items() if k != "pooled"})
    suffix = "-quick" if quick else ""
    det = common.plot_det(
        curves, "DET: live vs chip portrait (JPEG 2000)", out_dir / f"chip-det{suffix}.png"
    )
    rows = []
    for name, f in [*plain["sets"].items(), ("pooled", plain["pooled"])]:
        rows.append(_row("plain", name, f, f["failure_to_acquire"], None))
    for cname, cf in conditions.items():
        for name, f in [*cf["sets"].items(), ("pooled", cf["pooled"])]:
            rows.append(
                _row(
                    cname, name, f, f["chip_failure_to_acquire"], f["jp2_size"].get("median_bytes")
                )
            )
    common.print_table(
        "Live vs chip portrait",
        [
            "condition",
            "set",
            "FTA",
            "genuine",
            "impostor",
            "TAR@1e-2",
            "TAR@1e-3",
            "FNMR@1e-4",
            "EER",
            "JP2 bytes",
        ],
        rows,
    )
    payload = {
        "settings": {
            "quick": quick,
            "data_dir": str(common.data_dir()),
            "conditions": [{"name": c.name, "size": list(c.size), "grey": c.grey} for c in conds],
            "render": RENDER_VERSION,
            "crop": "ISO/IEC 19794-5 token geometry: W = 4 x inter-eye, eyes at 0.6 W from top",
            "codec": "JPEG 2000 via Pillow/OpenJPEG, irreversible, quality_mode=rates",
            "target_bytes": [MIN_BYTES, MAX_BYTES],
            "pairs": "ordered (live i, chip j), i != j, within each set; pooled = union",
            "onnxruntime_threads": pipeline.settings.threads,
            "quick_images_per_identity": accuracy.QUICK_PER_IDENTITY if quick else None,
        },
        "model_versions": pipeline.model_versions,
        "embedder": pipeline.embedder.spec.name,
        "plain": plain,
        "conditions": conditions,
        "plots": [det.name],
    }
    common.write_result(out_dir, "chip", payload)
    return payload


def _row(cond: str, name: str, f: dict, fta: float, size: float | None) -> list[Any]:
    at = f["at_fmr"]
    p4 = at.get("0.0001", {})
    return [
        cond,
        name,
        fta,
        f["genuine_pairs"],
        f["impostor_pairs"],
        at.get("0.01", {}).get("tar"),
        at.get("0.001", {}).get("tar"),
        p4.get("fnmr") if p4.get("supported") else "unsupported",
        f["eer"],
        size,
    ]


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def section(path: Path, doc: dict) -> list[str]:
    out = ["## Live photo vs chip portrait (ICAO 9303 DG2)", "", source_line(path, doc), ""]
    s = doc.get("settings", {})
    out.append(
        f"Every image rendered as a chip portrait ({s.get('crop', '')}; {s.get('codec', '')}, "
        f"target {s.get('target_bytes')} bytes) and decoded again with "
        "`biometric.decode.decode_image`; scores between the original (live) embedding of image i "
        "and the chip embedding of image j ≠ i (ordered pairs). FTA here = no usable chip "
        "(source face not found or chip face not found). "
        "Plain = the accuracy run on the same images. The ordered pairs are correlated (each "
        "image appears in many), so FNMR at 1e-4 rests on fewer independent trials than the "
        "impostor count suggests."
    )
    out.append("")
    rows = []
    plain = doc["plain"]
    for name, fig in [*plain["sets"].items(), ("pooled", plain["pooled"])]:
        rows.append(
            [
                "plain",
                name,
                fig["failure_to_acquire"],
                fig["genuine_pairs"],
                fig["impostor_pairs"],
                at_fmr(fig, "0.01", "tar"),
                at_fmr(fig, "0.001", "tar"),
                fnmr_at_1e4(fig),
                fig["eer"],
                None,
            ]
        )
    for cname, cond in doc["conditions"].items():
        for name, fig in [*cond["sets"].items(), ("pooled", cond["pooled"])]:
            rows.append(
                [
                    cname,
                    name,
                    fig["chip_failure_to_acquire"],
                    fig["genuine_pairs"],
                    fig["impostor_pairs"],
                    at_fmr(fig, "0.01", "tar"),
                    at_fmr(fig, "0.001", "tar"),
                    fnmr_at_1e4(fig),
                    fig["eer"],
                    fig["jp2_size"].get("median_bytes"),
                ]
            )
    out += table(
        [
            "condition",
            "set",
            "FTA",
            "genuine",
            "impostor",
            "TAR@FMR1e-2",
            "TAR@FMR1e-3",
            "FNMR@FMR1e-4",
            "EER",
            "median JP2 bytes",
        ],
        rows,
    )
    sizes = []
    for cname, cond in doc["conditions"].items():
        z = cond["pooled"]["jp2_size"]
        sizes.append(
            [
                cname,
                "x".join(map(str, cond["size"])),
                cond["grey"],
                z.get("median_bytes"),
                z.get("min_bytes"),
                z.get("max_bytes"),
                z.get("fraction_in_10_20_kb"),
            ]
        )
    out += table(["condition", "size", "grey", "median bytes", "min", "max", "in 10-20 KB"], sizes)
    out += plots(doc)
    return out
