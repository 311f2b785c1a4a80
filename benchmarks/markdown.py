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
