"""Markdown building blocks every benchmark's section uses (BENCHMARKS.md is tables, never
flattened JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits}g}" if value else "0"
    return str(value)


def table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def source_line(path: Path, doc: dict) -> str:
    m = doc.get("machine", {})
    quick = " **(quick mode: small subset)**" if doc.get("settings", {}).get("quick") else ""
    return (
        f"Source: `{path.name}`{quick}; {m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} CPUs "
        f"({m.get('cpu_usable', '?')} usable), Python {m.get('python', '?')}, onnxruntime "
        f"{m.get('onnxruntime', '?')}, numpy {m.get('numpy', '?')}"
        + (
            "; models " + ", ".join(f"{k} `{v}`" for k, v in doc["model_versions"].items())
            if doc.get("model_versions")
            else ""
        )
        + "."
    )


def at_fmr(fig: dict, fmr: str, key: str) -> Any:
    return fig.get("at_fmr", {}).get(fmr, {}).get(key)


def fnmr_at_1e4(fig: dict) -> Any:
    p = fig.get("at_fmr", {}).get("0.0001", {})
    if not p:
        return None
    if not p.get("supported"):
        have, need = p.get("impostor_pairs", 0), p.get("impostor_pairs_needed", 0)
        return f"unsupported ({have:,} < {need:,} impostor pairs)"
    return p.get("fnmr")


def load_text(v: Any) -> str:
    return "–" if not v else ", ".join(f"{x:.2f}" for x in v)


def plots(doc: dict) -> list[str]:
    plots = doc.get("plots") or []
    if not plots:
        return []
    return [
        "Plots (PNG, git-ignored; regenerate with the command above): "
        + ", ".join(f"`benchmarks/results/{p}`" for p in plots),
        "",
    ]
