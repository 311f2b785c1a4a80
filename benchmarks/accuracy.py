"""Accuracy on every identity set of the data folder, and the differential report.

Every image goes once through the shipped acquisition, both embedders and both roles' quality
bounds (``biometric.evaluation.acquire_sets``, cached per model version under
``var/cache/embeddings``). At most ``CAP`` photos per person, as ``biometric evaluate`` does.

The *differential report* gives, for every set and every option (each embedder and their
fusion), at that option's shipped operating point (each pair at its capture condition's
threshold): FTA, retakes per role, FNMR and FMR, the ratio of the measured to the claimed FMR,
TAR at FMR 1e-3 and 1e-4, on lfw_dev the official View-1 accuracy at the shipped and at the best
threshold, and what site calibration achieves (``biometric.calibrate.site_check``: the shipped
rule fitted on half of the set's people, checked on the other half, both ways round: mean and
worst FMR ratio, FNMR). The worst set (highest FMR ratio) heads it.
Rates are on acquired images (ISO/IEC 19795-1); FTA is reported on its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from biometric.assessment import source_figures
from biometric.calibrate import EMBEDDERS, OPTIONS, SITE_HALVES, option_scores, site_check
from biometric.evaluation import (
    AcquiredSet,
    EmbeddedSet,
    IdentitySet,
    acquire_sets,
    discover_sets,
    lfw_pairs_set,
    pair_scores,
)
from biometric.manifest import option_embedders
from biometric.pipeline import CHIP, LIVE

CAP = 10  # photos per person, as `biometric evaluate --cap` (lfw_dev: 3.4M impostor pairs)
QUICK_PER_IDENTITY = 3
QUICK_IDENTITIES = 20  # quick: the first 20 people with two or more photos, 3 photos each
QUICK_VIEW1_PAIRS = 20  # quick: the first 20 same and 20 different View-1 pairs


def subset(ident: IdentitySet, per_identity: int, identities: int | None = None) -> IdentitySet:
    counts: dict[str, int] = {}
    for label in ident.labels:
        counts[label] = counts.get(label, 0) + 1
    people = [p for p in dict.fromkeys(ident.labels) if counts[p] >= 2][:identities]
    chosen = set(people)
    images, labels, seen = [], [], {}
    for img, label in zip(ident.images, ident.labels, strict=True):
        if label in chosen and seen.get(label, 0) < per_identity:
            seen[label] = seen.get(label, 0) + 1
            images.append(img)
            labels.append(label)
    return IdentitySet(ident.name, images, labels)


def load_sets(quick: bool, data_dir: Path | None = None) -> list[IdentitySet]:
    sets = discover_sets(data_dir or common.data_dir(), CAP)
    if quick:
        sets = [subset(s, QUICK_PER_IDENTITY, QUICK_IDENTITIES) for s in sets]
    return sets


def view1_set(quick: bool, data_dir: Path | None = None) -> IdentitySet | None:
    view1 = lfw_pairs_set((data_dir or common.data_dir()) / "lfw_dev")
    if view1 is None or not quick:
        return view1
    same = np.flatnonzero(view1.pairs[:, 2] == 1)[:QUICK_VIEW1_PAIRS]
    diff = np.flatnonzero(view1.pairs[:, 2] == 0)[:QUICK_VIEW1_PAIRS]
    pairs = view1.pairs[np.concatenate([same, diff])]
    used = np.unique(pairs[:, :2])
    remap = {int(old): new for new, old in enumerate(used)}
    images = [view1.images[i] for i in used]
    pairs = np.column_stack(
        [[remap[int(i)] for i in pairs[:, 0]], [remap[int(i)] for i in pairs[:, 1]], pairs[:, 2]]
    )
    return IdentitySet(view1.name, images, [str(p) for p in images], pairs.astype(np.int64))


def acquire_all(pipeline, sets: list[IdentitySet], cache_dir: Path | None) -> list[AcquiredSet]:
    total = sum(len(s.images) for s in sets)
    with common.progress_bar("acquiring + embedding (every embedder)", total) as advance:
        return acquire_sets(sets, EMBEDDERS, pipeline, cache_dir=cache_dir, progress=advance)


def embed_all(pipeline, sets: list[IdentitySet], cache_dir: Path | None) -> list[EmbeddedSet]:
    """The sets embedded by ``pipeline``'s embedder (for the chip and peer benchmarks)."""
    return [a.embedded(pipeline.embedder.spec.name) for a in acquire_all(pipeline, sets, cache_dir)]


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


DIFF_COLUMNS = [
    "option",
    "set",
    "images",
    "FTA",
    "retake live",
    "retake chip",
    "genuine",
    "impostor",
    "FNMR@thr",
    "FMR@thr",
    "FMR/claim",
    "TAR@1e-3",
    "TAR@1e-4",
    "View-1 acc@thr",
    "View-1 best acc",
    "site FMR/claim",
    "site worst",
    "site FNMR",
]


def differential(
    acquired: list[AcquiredSet], view1: AcquiredSet | None, manifest
) -> dict[str, Any]:
    """Every option on every set at its shipped threshold (see the module docstring)."""
    fmr = manifest.default_fmr
    per_option: dict[str, Any] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    rows = []
    for option in OPTIONS:
        if len(option_embedders(option)) > 1 and manifest.fusion(option) is None:
            continue
        point = manifest.threshold_for(option, fmr).operating_point()
        scores = option_scores(acquired, option, manifest.fusion(option))
        halves = option_scores(acquired, option, manifest.fusion(option), SITE_HALVES)
        sets = []
        for a in acquired:
            fig = source_figures(a, scores[a.ident.name], point, CHIP)
            fig["site"] = site_check(halves[a.ident.name], fmr)
            fig["retake_rate_live"] = a.retake_rate(LIVE)
            fig["retake_rate_chip"] = a.retake_rate(CHIP)
            if view1 is not None and a.ident.name == "lfw_dev":
                v_scores = option_scores([view1], option, manifest.fusion(option))
                fig["view1"] = source_figures(view1, v_scores[view1.ident.name], point, CHIP)
            sets.append(fig)
            rows.append(_diff_row(option, fig))
        rated = [(s["fmr_ratio"], s["name"]) for s in sets if s["fmr_ratio"] is not None]
        worst = max(rated) if rated else (None, None)
        per_option[option] = {
            "threshold": point.threshold,
            "condition_thresholds": dict(point.by_condition),
            "fmr_claimed": fmr,
            "sets": sets,
            "worst_set": worst[1],
            "worst_ratio": worst[0],
        }
        curves[option] = {a.ident.name: (scores[a.ident.name].genuine,
                                         scores[a.ident.name].impostor) for a in acquired}
    default = manifest.default_embedder
    return {
        "default": default,
        "worst_set": per_option[default]["worst_set"],
        "worst_ratio": per_option[default]["worst_ratio"],
        "options": per_option,
        "columns": DIFF_COLUMNS,
        "rows": rows,
        "default_choice": manifest.default_choice,
    }, curves


def _diff_row(option: str, f: dict[str, Any]) -> list[Any]:
    v1 = f.get("view1") or {}
    site = f.get("site") or {}
    return [
        option,
        f["name"],
        f["images"],
        f["fta"],
        f["retake_rate_live"],
        f["retake_rate_chip"],
        f["genuine"],
        f["impostor"],
        f["fnmr_at_threshold"],
        f["fmr_at_threshold"],
        f["fmr_ratio"],
        f["tar_at_fmr"]["1e-3"],
        f["tar_at_fmr"]["1e-4"],
        v1.get("accuracy_at_threshold"),
        v1.get("best_accuracy"),
        _site(site, "fmr_ratio"),
        _site(site, "worst_ratio"),
        site.get("fnmr"),
    ]


def _site(site: dict[str, Any], key: str) -> Any:
    """A site-calibration ratio, marked when a half held fewer than 10/FMR impostor pairs."""
    if not site:
        return None
    return site[key] if site["supported"] else f"{site[key]:.3g} (<10/FMR)"


def plot_det_per_set(curves: dict[str, dict[str, tuple]], path: Path) -> Path:
    """One DET plot: a colour per set, a line style per option."""
    plt = common._pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    styles = ["-", "--", ":"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    floor = 1e-6
    for o, (option, per_set) in enumerate(curves.items()):
        for k, (name, (genuine, impostor)) in enumerate(per_set.items()):
            if len(genuine) == 0 or len(impostor) == 0:
                continue
            fmr, fnmr = common.det_points(genuine, impostor)
            ax.plot(np.maximum(fmr, floor), np.maximum(fnmr, floor), styles[o % 3],
                    color=colours[k % len(colours)], drawstyle="steps-post",
                    label=f"{option} / {name} (G={len(genuine)}, I={len(impostor)})")
    return common.finish_det(
        plt, fig, ax, "DET per set: colour = set, line = option", path, (floor, 1e-4),
        legend_size=6,
    )


def run(quick: bool, out_dir: Path, cache_dir: Path | None = common.EMBED_CACHE) -> dict:
    pipeline = common.make_pipeline(threads=1)
    sets = load_sets(quick)
    view1 = view1_set(quick)
    acquired = acquire_all(pipeline, sets + ([view1] if view1 else []), cache_dir)
    view1_acq = acquired.pop() if view1 else None
    name = pipeline.embedder.spec.name
    embedded = [a.embedded(name) for a in acquired]
    figures, scores = evaluate(embedded, "plain")
    diff, curves = differential(acquired, view1_acq, pipeline.manifest)
    suffix = "-quick" if quick else ""
    det = plot_det_per_set(curves, out_dir / f"accuracy-det-per-set{suffix}.png")
    hist = common.plot_histograms(
        scores, f"Score distributions ({name})", out_dir / f"accuracy-hist{suffix}.png"
    )
    payload = {
        "settings": {
            "quick": quick,
            "data_dir": str(common.data_dir()),
            "embedding_cache": str(cache_dir) if cache_dir else None,
            "cap_photos_per_person": CAP,
            "quick_subset": (
                f"{QUICK_IDENTITIES} people x {QUICK_PER_IDENTITY} photos per set, "
                f"{QUICK_VIEW1_PAIRS}+{QUICK_VIEW1_PAIRS} View-1 pairs"
                if quick else None
            ),
            "acquisition": "the shipped rules for every image (biometric.acquire)",
            "score": "cosine similarity of unit-length templates (fusion: z-score sum)",
            "pairs": "all unordered pairs within each set; pooled = union of the per-set pairs",
            "support_rule": f"FMR f supported when impostor pairs >= {common.SUPPORT_FACTOR}/f",
            "ratio_rule": "FMR/claim reported where a set has >= 1/claim impostor pairs",
            "onnxruntime_threads": pipeline.settings.threads,
            "pipeline": pipeline_settings(pipeline),
        },
        "model_versions": pipeline.model_versions,
        "embedder": name,
        "differential": diff,
        **figures,
        "plots": [det.name, hist.name],
    }
    common.console.print(
        f"[bold]worst set for the default ({diff['default']}): {diff['worst_set']}, "
        f"FMR {common.fmt(diff['worst_ratio'])}x the claim[/bold]"
    )
    common.print_table("Differential report (shipped thresholds)", DIFF_COLUMNS, diff["rows"])
    common.print_table(f"Accuracy ({name} alone)", TABLE_COLUMNS, summary_rows(figures, ""))
    common.write_result(out_dir, "accuracy", payload)
    return payload
