"""Shared helpers: machine description, result files, error-rate figures, plots, progress."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from biometric import config
from biometric.rates import (
    SUPPORT_FACTOR,
    det_points,
    equal_error_rate,
    rate_at_or_above,
    threshold_at_fmr,
)

console = Console()
if not console.is_terminal:
    console = Console(width=150)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
EMBED_CACHE = REPO_ROOT / "var" / "cache" / "embeddings"
FMRS = (1e-2, 1e-3, 1e-4)


# -- machine and files ------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import onnxruntime

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "numpy": np.__version__,
    }


def today() -> str:
    return _dt.date.today().isoformat()


def result_path(out_dir: Path, name: str, quick: bool = False) -> Path:
    """``<name>-<date>.json``; quick runs get ``-quick`` so they never replace a full result."""
    return out_dir / f"{name}-{today()}{'-quick' if quick else ''}.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return None if not np.isfinite(v) else v
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def write_result(out_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "date": today(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **payload,
    }
    quick = bool(payload.get("settings", {}).get("quick", False))
    path = result_path(out_dir, name, quick)
    path.write_text(json.dumps(_jsonable(doc), indent=2) + "\n")
    console.print(f"[green]wrote[/green] {path}")
    return path


def data_dir() -> Path:
    return config.data_dir()


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar; yields ``advance(n=1)``."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c != columns[0] else "left")
    for row in rows:
        table.add_row(*[fmt(v) for v in row])
    console.print(table)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


# A latency figure is only a figure of the decision it claims to time: a run in which more than
# this share of answers were retakes measured the refusal path (the first API benchmark: 157 of
# 157 requests were retakes) and must not be reported.
MAX_RETAKE_SHARE = 0.05


def check_decisions(outcomes: dict[str, int], what: str) -> dict[str, Any]:
    """Counts of match / no_match / retake / other among ``outcomes``; raises when retakes (or
    errors) exceed MAX_RETAKE_SHARE, or when matches or non-matches are missing."""
    total = sum(outcomes.values())
    match, no_match = outcomes.get("match", 0), outcomes.get("no_match", 0)
    other = total - match - no_match
    if not total or other / total > MAX_RETAKE_SHARE:
        raise RuntimeError(
            f"{what}: {other} of {total} answers were not match/no_match decisions ({outcomes}); "
            f"the benchmark would time refusals, not decisions"
        )
    if not match or not no_match:
        raise RuntimeError(f"{what}: expected both matches and non-matches, got {outcomes}")
    return {"total": total, "match": match, "no_match": no_match, "not_decided": other}


def make_pipeline(threads: int = 1, embedder: str | None = None, front_end=None):
    """A warmed-up pipeline with the default settings, or the given front end."""
    from biometric.pipeline import Pipeline, PipelineConfig

    settings = PipelineConfig(threads=threads)
    if front_end is not None:
        settings = dataclasses.replace(settings, front_end=front_end)
    pipeline = Pipeline(settings=settings, embedder=embedder)
    pipeline.warm_up()
    return pipeline


# -- error rates -----------------------------------------------------------------------------


def error_figures(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    """FNMR/TAR at fixed FMRs (with the impostor count behind each), EER, counts."""
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)
    out: dict[str, Any] = {"genuine_pairs": len(genuine), "impostor_pairs": len(impostor)}
    points = {}
    for fmr in FMRS:
        needed = round(SUPPORT_FACTOR / fmr)
        if len(impostor) == 0 or len(genuine) == 0:
            points[f"{fmr:g}"] = {"fmr": fmr, "supported": False, "impostor_pairs": len(impostor)}
            continue
        thr = threshold_at_fmr(impostor, fmr)
        tar = rate_at_or_above(genuine, thr)
        points[f"{fmr:g}"] = {
            "fmr": fmr,
            "threshold": thr,
            "fnmr": 1.0 - tar,
            "tar": tar,
            "measured_fmr": rate_at_or_above(impostor, thr),
            "impostor_pairs": len(impostor),
            "impostor_pairs_needed": needed,
            "supported": len(impostor) >= needed,
        }
    out["at_fmr"] = points
    eer, eer_thr = equal_error_rate(genuine, impostor)
    out["eer"] = eer
    out["eer_threshold"] = eer_thr
    if len(genuine):
        out["genuine_mean"] = float(genuine.mean())
    if len(impostor):
        out["impostor_mean"] = float(impostor.mean())
        out["impostor_max"] = float(impostor.max())
    return out


def histogram(scores: np.ndarray, bins: np.ndarray) -> list[int]:
    counts, _ = np.histogram(np.clip(scores, bins[0], bins[-1]), bins=bins)
    return counts.tolist()


HIST_BINS = np.linspace(-0.5, 1.0, 61)


def score_histograms(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    return {
        "bin_edges": [round(float(b), 4) for b in HIST_BINS],
        "genuine": histogram(genuine, HIST_BINS),
        "impostor": histogram(impostor, HIST_BINS),
    }


# -- plots -----------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    """DET curve, log-log: one line per named (genuine, impostor) score set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    floor = 1e-5
    for name, (genuine, impostor) in curves.items():
        if len(genuine) == 0 or len(impostor) == 0:
            continue
        fmr, fnmr = det_points(genuine, impostor)
        ax.plot(
            np.maximum(fmr, floor),
            np.maximum(fnmr, floor),
            label=f"{name} (G={len(genuine)}, I={len(impostor)})",
            drawstyle="steps-post",
        )
    return finish_det(plt, fig, ax, title, path, (floor, floor * 10), legend_size=8)


def finish_det(plt, fig, ax, title: str, path: Path, floors: tuple[float, float],
               legend_size: int) -> Path:
    """Log-log DET axes with the reported FMRs marked; saves and closes the figure."""
    for fmr in FMRS:
        ax.axvline(fmr, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floors[0], 1)
    ax.set_ylim(floors[1], 1)
    ax.set_xlabel("FMR (false match rate)")
    ax.set_ylabel("FNMR (false non-match rate)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_histograms(sets: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    plt = _pyplot()
    n = max(len(sets), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (name, (genuine, impostor)) in zip(axes[0], sets.items(), strict=False):
        ax.hist(impostor, bins=HIST_BINS, density=True, alpha=0.6, label="impostor")
        ax.hist(genuine, bins=HIST_BINS, density=True, alpha=0.6, label="genuine")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
