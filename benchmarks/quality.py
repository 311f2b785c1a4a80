"""Capture quality and liveness on the shared sets.

- Quality: the distribution of each measure and of the 0-100 score per set (every image as a
  chip portrait, the lenient role), and whether low quality predicts failed genuine matches:
  the Spearman correlation between a genuine pair's score and the lower quality of its two
  images, and the genuine score by quality quartile.
- Liveness (ISO/IEC 30107-3): BPCER on the real photos (bona fide), APCER on attack-like images
  synthesised from them (print-like halftone on paper, screen-like moire with glare, a photo of a
  photo with its border). Synthetic attacks are a weak proxy for real ones: these figures say how
  the model reacts to such renderings, not how it resists a determined attacker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import common
from biometric.decode import read_image
from biometric.evaluation import discover_sets
from biometric.liveness import LivenessDetector
from biometric.pipeline import CHIP

QUALITY_FIELDS = (
    "score",
    "inter_eye_px",
    "sharpness",
    "brightness",
    "contrast",
    "yaw_deg",
    "pitch_deg",
    "roll_deg",
)


def _print_attack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    dots = 127.5 + 127.5 * np.sin(xx * 0.9) * np.sin(yy * 0.9)  # halftone screen
    ink = np.where(grey > dots, 1.0, 0.55)[..., None]
    paper = 235 + rng.normal(0, 6, rgb.shape)
    out = cv2.GaussianBlur(rgb.astype(np.float32) * ink * 0.5 + paper * 0.5, (0, 0), 1.2)
    return np.clip(out, 0, 255).astype(np.uint8)


def _screen_attack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    moire = 1.0 + 0.12 * np.sin((xx * 0.31 + yy * 0.07) * np.pi)[..., None]
    glare = (
        np.exp(
            -(
                ((xx - rgb.shape[1] * 0.7) ** 2 + (yy - rgb.shape[0] * 0.3) ** 2)
                / (2 * (0.25 * rgb.shape[1]) ** 2)
            )
        )[..., None]
        * 90
    )
    out = rgb.astype(np.float32) * moire * np.array([0.92, 1.0, 1.08]) + glare
    return np.clip(out, 0, 255).astype(np.uint8)


def _photo_of_photo(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * 0.7), int(h * 0.7)), interpolation=cv2.INTER_AREA)
    pad_y, pad_x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    framed = cv2.copyMakeBorder(
        small,
        pad_y,
        h - small.shape[0] - pad_y,
        pad_x,
        w - small.shape[1] - pad_x,
        cv2.BORDER_CONSTANT,
        value=(240, 238, 230),
    )
    background = rng.integers(40, 90, size=3).tolist()
    canvas = cv2.copyMakeBorder(framed, 30, 30, 30, 30, cv2.BORDER_CONSTANT, value=background)
    tilt = cv2.getRotationMatrix2D((canvas.shape[1] / 2, canvas.shape[0] / 2), 4, 1.0)
    return cv2.warpAffine(
        canvas, tilt, (canvas.shape[1], canvas.shape[0]), borderMode=cv2.BORDER_REPLICATE
    )


ATTACKS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "print_halftone": _print_attack,
    "screen_moire_glare": _screen_attack,
    "photo_of_photo": _photo_of_photo,
}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def run(quick: bool, out_dir: Path) -> dict[str, Any]:
    pipeline = common.make_pipeline(threads=1)
    entry = pipeline.manifest.by_role("liveness")
    liveness = LivenessDetector(pipeline.models_dir / entry.file, entry.facts)
    rng = np.random.default_rng(0)
    step = 12 if quick else 3  # every n-th image for liveness (it costs ~150 ms per face)
    sets_out: dict[str, Any] = {}
    bona_fide: list[bool] = []
    attacks: dict[str, list[bool]] = {k: [] for k in ATTACKS}
    for ident in discover_sets(common.data_dir()):
        images = ident.images[::4] if quick else ident.images
        labels = np.asarray(ident.labels[::4] if quick else ident.labels)
        quality = np.full((len(images), len(QUALITY_FIELDS)), np.nan)
        embeddings: list[np.ndarray | None] = []
        with common.progress_bar(f"quality + liveness: {ident.name}", len(images)) as advance:
            for i, path in enumerate(images):
                rgb = read_image(path).rgb
                analysis = pipeline.template(rgb, CHIP)
                embeddings.append(analysis.embedding)
                if analysis.quality is not None:
                    q = analysis.quality
                    quality[i] = [getattr(q, f) for f in QUALITY_FIELDS]
                if analysis.subject is not None and i % step == 0:
                    bona_fide.append(liveness.score(rgb, analysis.subject.box).is_live)
                    for name, make in ATTACKS.items():
                        fake = make(rgb, rng)
                        faces = pipeline.detect(fake)
                        # An attack no face is found in never reaches the liveness check: it
                        # is refused as "no face", which counts as detected here.
                        attacks[name].append(
                            bool(faces) and liveness.score(fake, faces[0].box).is_live
                        )
                advance(1)
        ok = ~np.isnan(quality[:, 0])
        genuine_q, genuine_s = [], []
        for a in range(len(images)):
            for b in range(a + 1, len(images)):
                if labels[a] == labels[b] and ok[a] and ok[b]:
                    genuine_q.append(min(quality[a, 0], quality[b, 0]))
                    genuine_s.append(float(embeddings[a] @ embeddings[b]))
        gq, gs = np.asarray(genuine_q), np.asarray(genuine_s)
        quartiles = np.quantile(gq, [0.25, 0.5, 0.75]) if len(gq) else []
        bins = np.digitize(gq, quartiles) if len(gq) else np.array([])
        sets_out[ident.name] = {
            "images": len(images),
            "measured": int(ok.sum()),
            "distribution": {
                f: {str(p): float(np.nanpercentile(quality[:, j], p)) for p in (5, 25, 50, 75, 95)}
                for j, f in enumerate(QUALITY_FIELDS)
            },
            "genuine_pairs": len(gq),
            "spearman_min_quality_vs_genuine_score": _spearman(gq, gs),
            "genuine_score_by_quality_quartile": [
                float(gs[bins == k].mean()) if (bins == k).any() else None for k in range(4)
            ],
        }

    def rate(flags: list[bool]) -> dict[str, Any]:
        return {
            "samples": len(flags),
            "accepted_as_live": int(sum(flags)),
            "rate": float(np.mean(flags)) if flags else None,
        }

    live_fig = {
        "bpcer": {**rate([not x for x in bona_fide]), "note": "bona fide classified as attack"},
        "apcer": {name: rate(flags) for name, flags in attacks.items()},
        "threshold": liveness.threshold,
        "note": "attacks are synthetic renderings of the real photos: a weak proxy",
    }
    payload = {
        "settings": {"quick": quick, "role": "chip", "liveness_every_nth_image": step},
        "model_versions": pipeline.model_versions,
        "sets": sets_out,
        "liveness": live_fig,
    }
    rows = [
        [
            name,
            s["measured"],
            s["distribution"]["score"]["5"],
            s["distribution"]["score"]["50"],
            s["spearman_min_quality_vs_genuine_score"],
            *s["genuine_score_by_quality_quartile"],
        ]
        for name, s in sets_out.items()
    ]
    common.print_table(
        "Quality",
        [
            "set",
            "images",
            "score p5",
            "score p50",
            "spearman(q, s)",
            "s|Q1",
            "s|Q2",
            "s|Q3",
            "s|Q4",
        ],
        rows,
    )
    lrows = [["bona fide (BPCER)", live_fig["bpcer"]["samples"], live_fig["bpcer"]["rate"]]]
    lrows += [[f"{k} (APCER)", v["samples"], v["rate"]] for k, v in live_fig["apcer"].items()]
    common.print_table("Liveness", ["presentation", "samples", "error rate"], lrows)
    common.write_result(out_dir, "quality", payload)
    return payload
