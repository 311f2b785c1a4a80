"""Accuracy on every identity set of the data folder: all genuine and all impostor pairs.

Every image goes through the pipeline as a chip-like portrait (``biometric.evaluation.embed_set``,
embeddings cached per model version under ``var/cache/embeddings``); pairs are formed within each
set, then pooled. FNMR at fixed FMR is computed on acquired images (ISO/IEC 19795-1); the images
where no usable face was found are reported separately as failure-to-acquire (FTA).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from biometric.evaluation import EmbeddedSet, IdentitySet, discover_sets, embed_set, pair_scores
from biometric.pipeline import FrontEnd

QUICK_PER_IDENTITY = 3  # 20 yale identities x 3 = 60 images


def subset(ident: IdentitySet, per_identity: int) -> IdentitySet:
    images, labels, seen = [], [], {}
    for img, label in zip(ident.images, ident.labels, strict=True):
        if seen.get(label, 0) < per_identity:
            seen[label] = seen.get(label, 0) + 1
            images.append(img)
            labels.append(label)
    return IdentitySet(ident.name, images, labels)


def load_sets(quick: bool, data_dir: Path | None = None) -> list[IdentitySet]:
    sets = discover_sets(data_dir or common.data_dir())
    if quick:
        sets = [subset(s, QUICK_PER_IDENTITY) for s in sets]
    return sets


def embed_all(pipeline, sets: list[IdentitySet], cache_dir: Path | None) -> list[EmbeddedSet]:
    total = sum(len(s.images) for s in sets)
    out = []
    with common.progress_bar("embedding (live/original)", total) as advance:
        for s in sets:
            done = [0]

            def step(n: int = 1, done: list[int] = done) -> None:
                done[0] += n
                advance(n)

            out.append(embed_set(pipeline, s, cache_dir, progress=step))
            advance(len(s.images) - done[0])  # a cache hit reports no progress
    return out


def genuine_pairs_total(labels: np.ndarray) -> int:
    _, counts = np.unique(labels, return_counts=True)
    return int(sum(c * (c - 1) // 2 for c in counts))


def pipeline_settings(pipeline) -> dict[str, Any]:
    try:
        return dataclasses.asdict(pipeline.settings)
    except TypeError:  # pragma: no cover - a non-dataclass field
        return {"repr": repr(pipeline.settings)}


def set_figures(e: EmbeddedSet, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    acquired = e.acquired
    figures = {
        "images": len(e.images),
        "identities": len(set(e.labels.tolist())),
        "acquired": int(acquired.sum()),
        "failure_to_acquire": e.failure_to_acquire,
        "failed_images": [str(p.name) for p, ok in zip(e.images, acquired, strict=True) if not ok],
        "genuine_pairs_all_images": genuine_pairs_total(e.labels),
        **common.error_figures(genuine, impostor),
        "histogram": common.score_histograms(genuine, impostor),
    }
    if figures["genuine_pairs_all_images"]:
        # Genuine pairs lost because one side was not acquired, added to the FNMR at 1e-3:
        # what a counter would see if every failure to acquire ended as a non-match.
        lost = 1.0 - len(genuine) / figures["genuine_pairs_all_images"]
        at = figures["at_fmr"].get("0.001", {})
        if "fnmr" in at:
            figures["fnmr_incl_fta_at_1e-3"] = lost + (1.0 - lost) * at["fnmr"]
    return figures


def evaluate(embedded: list[EmbeddedSet], label: str) -> tuple[dict, dict]:
    """Per-set and pooled figures; returns (figures, {name: (genuine, impostor)})."""
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_set = {}
    for e in embedded:
        ps = pair_scores([e])
        scores[e.name] = (ps.genuine, ps.impostor)
        per_set[e.name] = set_figures(e, ps.genuine, ps.impostor)
    pooled_scores = pair_scores(embedded)
    scores["pooled"] = (pooled_scores.genuine, pooled_scores.impostor)
    labels = np.concatenate([e.labels for e in embedded])
    acquired = np.concatenate([e.acquired for e in embedded])
    pooled = {
        "images": len(labels),
        "identities": len(set(labels.tolist())),
        "acquired": int(acquired.sum()),
        "failure_to_acquire": float(1.0 - acquired.mean()) if len(labels) else 0.0,
        "genuine_pairs_all_images": sum(genuine_pairs_total(e.labels) for e in embedded),
        **common.error_figures(*scores["pooled"]),
        "histogram": common.score_histograms(*scores["pooled"]),
    }
    return {"condition": label, "sets": per_set, "pooled": pooled}, scores


def summary_rows(figures: dict, condition: str) -> list[list[Any]]:
    rows = []
    for name, f in [*figures["sets"].items(), ("pooled", figures["pooled"])]:
        p3 = f["at_fmr"].get("0.001", {})
        p4 = f["at_fmr"].get("0.0001", {})
        rows.append(
            [
                name if not condition else f"{condition}: {name}",
                f["images"],
                f["failure_to_acquire"],
                f["genuine_pairs"],
                f["impostor_pairs"],
                f["at_fmr"].get("0.01", {}).get("fnmr"),
                p3.get("fnmr"),
                p3.get("tar"),
                (p4.get("fnmr") if p4.get("supported") else "unsupported"),
                f["eer"],
            ]
        )
    return rows


TABLE_COLUMNS = [
    "set",
    "images",
    "FTA",
    "genuine",
    "impostor",
    "FNMR@1e-2",
    "FNMR@1e-3",
    "TAR@1e-3",
    "FNMR@1e-4",
    "EER",
]


SINGLE_EMBEDDERS = ("mobilefacenet", "dlib_resnet")
OPTION_COLUMNS = [
    "option",
    "set",
    "FTA",
    "genuine",
    "impostor",
    "TAR@1e-2",
    "TAR@1e-3",
    "TAR@1e-4",
    "EER",
]


def fusion_scores(per_model: dict[str, list[EmbeddedSet]], fusion) -> dict[str, tuple]:
    """Fused genuine/impostor scores per set and pooled, on images every model acquired."""
    names = fusion.embedders
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pooled: list[list[np.ndarray]] = [[], []]
    for i, first in enumerate(per_model[names[0]]):
        keep = np.logical_and.reduce([per_model[n][i].acquired for n in names])
        parts = [
            pair_scores(
                [
                    dataclasses.replace(
                        per_model[n][i],
                        embeddings=np.where(keep[:, None], per_model[n][i].embeddings, np.nan),
                    )
                ]
            )
            for n in names
        ]
        genuine = fusion.fuse([p.genuine for p in parts])
        impostor = fusion.fuse([p.impostor for p in parts])
        out[first.name] = (genuine, impostor)
        pooled[0].append(genuine)
        pooled[1].append(impostor)
    out["pooled"] = (np.concatenate(pooled[0]), np.concatenate(pooled[1]))
    return out


def option_rows(option: str, scores: dict[str, tuple], fta: dict[str, float]) -> list[list]:
    rows = []
    for name, (genuine, impostor) in scores.items():
        f = common.error_figures(genuine, impostor)
        tar = {
            k: (v.get("tar") if v.get("supported", True) else "unsupported")
            for k, v in f["at_fmr"].items()
        }
        rows.append(
            [
                option,
                name,
                fta.get(name),
                f["genuine_pairs"],
                f["impostor_pairs"],
                tar.get("0.01"),
                tar.get("0.001"),
                tar.get("0.0001"),
                f["eer"],
            ]
        )
    return rows


def compare_options(
    sets: list[IdentitySet],
    cache_dir: Path | None,
    default: str,
    default_embedded: list[EmbeddedSet],
) -> tuple[list[list], dict]:
    """MobileFaceNet, dlib ResNet and their fusion on the same images (issue: choose the
    default by measurement)."""
    per_model = {default: default_embedded}
    pipelines = {}
    for name in SINGLE_EMBEDDERS:
        if name not in per_model:
            pipelines[name] = common.make_pipeline(threads=1, embedder=name)
            per_model[name] = embed_all(pipelines[name], sets, cache_dir)
    rows, curves = [], {}
    for name in SINGLE_EMBEDDERS:
        rows += _rows_for(name, per_model[name])
        curves[name] = tuple(vars(pair_scores(per_model[name])).values())
    fusion = (pipelines.get(SINGLE_EMBEDDERS[0]) or common.make_pipeline()).manifest.fusion
    if fusion is not None:
        fused = fusion_scores(per_model, fusion)
        keep = [
            np.logical_and.reduce([per_model[n][i].acquired for n in fusion.embedders])
            for i in range(len(sets))
        ]
        fta = {s.name: float(1 - k.mean()) for s, k in zip(sets, keep, strict=True)}
        fta["pooled"] = float(1 - np.concatenate(keep).mean())
        rows += option_rows("fusion", fused, fta)
        curves["fusion"] = fused["pooled"]
    return rows, curves


def _rows_for(label: str, embedded: list[EmbeddedSet]) -> list[list]:
    fta = {e.name: e.failure_to_acquire for e in embedded}
    fta["pooled"] = float(1 - np.concatenate([e.acquired for e in embedded]).mean())
    scores = {e.name: tuple(vars(pair_scores([e])).values()) for e in embedded}
    scores["pooled"] = tuple(vars(pair_scores(embedded)).values())
    return option_rows(label, scores, fta)


def compare_front_ends(
    sets: list[IdentitySet], cache_dir: Path | None, pipeline, default_embedded: list[EmbeddedSet]
) -> list[list]:
    """The default embedder behind each front end (MTCNN; BlazeFace + O-Net with MTCNN as the
    fallback) on the same images: the fast front end is the default only if no set loses."""
    rows = []
    for fe in FrontEnd:
        if fe is pipeline.settings.front_end:
            embedded = default_embedded
        else:
            other = common.make_pipeline(threads=1, front_end=fe)
            embedded = embed_all(other, sets, cache_dir)
        rows += _rows_for(f"{pipeline.embedder.spec.name}, front end {fe.value}", embedded)
    return rows


def run(quick: bool, out_dir: Path, cache_dir: Path | None = common.EMBED_CACHE) -> dict:
    pipeline = common.make_pipeline(threads=1)
    sets = load_sets(quick)
    embedded = embed_all(pipeline, sets, cache_dir)
    figures, scores = evaluate(embedded, "plain")
    option_table, option_curves = compare_options(
        sets, cache_dir, pipeline.embedder.spec.name, embedded
    )
    option_table += compare_front_ends(sets, cache_dir, pipeline, embedded)
    suffix = "-quick" if quick else ""
    det = common.plot_det(
        scores,
        "DET: plain images (all pairs within each set)",
        out_dir / f"accuracy-det{suffix}.png",
    )
    hist = common.plot_histograms(
        scores, "Score distributions", out_dir / f"accuracy-hist{suffix}.png"
    )
    options_det = common.plot_det(
        option_curves,
        "DET: embedders and fusion (pooled)",
        out_dir / f"accuracy-options-det{suffix}.png",
    )
    payload = {
        "settings": {
            "quick": quick,
            "data_dir": str(common.data_dir()),
            "embedding_cache": str(cache_dir) if cache_dir else None,
            "quick_images_per_identity": QUICK_PER_IDENTITY if quick else None,
            "role": "chip (lenient size bounds, padded detection) for every image",
            "score": "cosine similarity of unit-length templates",
            "pairs": "all unordered pairs within each set; pooled = union of the per-set pairs",
            "support_rule": f"FMR f supported when impostor pairs >= {common.SUPPORT_FACTOR}/f",
            "onnxruntime_threads": pipeline.settings.threads,
            "pipeline": pipeline_settings(pipeline),
        },
        "model_versions": pipeline.model_versions,
        "embedder": pipeline.embedder.spec.name,
        **figures,
        "options": {
            "columns": OPTION_COLUMNS,
            "rows": option_table,
            "note": "fusion parameters (impostor mean/std per model) were fitted on these "
            "same photos: its figures are in-sample",
        },
        "plots": [det.name, hist.name, options_det.name],
    }
    common.print_table("Accuracy (plain images)", TABLE_COLUMNS, summary_rows(figures, ""))
    common.print_table("Embedders and fusion", OPTION_COLUMNS, option_table)
    common.write_result(out_dir, "accuracy", payload)
    return payload
