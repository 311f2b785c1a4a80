"""``python -m benchmarks NAME [--quick] [--out benchmarks/results]``.

NAME: accuracy, chip, stages, peer, quality, capture, int8, index, api, scale, report. Every
run writes ``<out>/<name>-<YYYY-MM-DD>.json`` (``...-quick.json`` in quick mode) and its PNG
plots, and prints a short table; ``report`` regenerates BENCHMARKS.md from the latest JSON of
each kind.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from benchmarks import common, report

NAMES = (*report.KINDS, "report")  # every result kind, then regenerating BENCHMARKS.md


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("name", choices=NAMES)
    p.add_argument("--quick", action="store_true", help="small subsets, < 60 s; never the peer")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="results folder")
    p.add_argument("--no-cache", action="store_true", help="do not read/write var/cache/embeddings")
    p.add_argument("--sizes", type=_ints, default=None, help="index: gallery sizes, e.g. 1e4,1e5")
    p.add_argument("--concurrency", type=_ints, default=None, help="api: e.g. 1,4,16")
    p.add_argument("--duration", type=float, default=None, help="api: seconds per level")
    p.add_argument("--only", default=None, help="scale: one stage again (e.g. thresholds)")
    p.add_argument(
        "--markdown", type=Path, default=common.REPO_ROOT / "BENCHMARKS.md", help="report: output"
    )
    return p


def _external(module: str):
    """index_bench / api_bench belong to other engineers: import lazily, tolerate absence."""
    try:
        return importlib.import_module(f"benchmarks.{module}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"benchmarks.{module}", module):
            common.console.print(
                f"[red]benchmarks/{module}.py is not there (yet): nothing to run for this "
                "benchmark.[/red]"
            )
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out: Path = args.out
    cache = None if args.no_cache else common.EMBED_CACHE
    if args.name == "accuracy":
        from benchmarks import accuracy

        accuracy.run(args.quick, out, cache)
    elif args.name == "chip":
        from benchmarks import chip

        chip.run(args.quick, out, cache)
    elif args.name == "stages":
        from benchmarks import stages

        stages.run(args.quick, out)
    elif args.name == "peer":
        from benchmarks import peer

        peer.run(args.quick, out, cache)
    elif args.name == "int8":
        from benchmarks import int8

        int8.run(args.quick, out)
    elif args.name == "quality":
        from benchmarks import quality

        quality.run(args.quick, out)
    elif args.name == "capture":
        from benchmarks import capture

        capture.run(args.quick, out)
    elif args.name == "index":
        mod = _external("index_bench")
        if mod is None:
            return 1
        sizes = args.sizes or ([1_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000])
        started = time.time()
        result = mod.run(quick=args.quick, sizes=sizes, out_dir=out)
        _store_external(out, "index", args.quick, result, started)
    elif args.name == "api":
        mod = _external("api_bench")
        if mod is None:
            return 1
        concurrency = args.concurrency or ([1, 2] if args.quick else [1, 4, 16])
        duration = args.duration or (2.5 if args.quick else 20.0)
        started = time.time()
        result = mod.run(
            quick=args.quick, out_dir=out, concurrency=concurrency, duration_s=duration
        )
        _store_external(out, "api", args.quick, result, started)
    elif args.name == "scale":
        from benchmarks import scale

        scale.run(args.quick, out, cache, args.only)
    elif args.name == "shared_index":
        from benchmarks import shared_index

        sizes = ",".join(str(n) for n in (args.sizes or [1_000_000, 10_000_000]))
        return shared_index.main(["--sizes", sizes, "--out", str(out)])
    elif args.name == "report":
        report.run(out, args.markdown)
    return 0


def _store_external(out: Path, name: str, quick: bool, result: dict | None, started: float) -> None:
    """Write the returned figures in the common format unless the module already did."""
    if not isinstance(result, dict):
        return
    path = common.result_path(out, name, quick)
    if path.is_file() and path.stat().st_mtime >= started:
        return
    payload = dict(result)
    settings = dict(payload.get("settings") or {})
    settings.setdefault("quick", quick)
    payload["settings"] = settings
    common.write_result(out, name, payload)


if __name__ == "__main__":
    sys.exit(main())
