"""Loading enrol-bulk shards into the store: a separate step from the Ray job.

One transaction per chunk through :meth:`Gallery.enrol_many`, so every template gets its change
-log row and any index (single-process or sharded) catches up by replaying the log. Citizen ids
already enrolled for the model are skipped, so loading twice, or after a crash, adds nothing
twice. Shards from another model or model version are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from biometric.distributed.enrol_job import OK
from biometric.distributed.source import SourceError
from biometric.gallery.service import Gallery

LOAD_CHUNK = 2_000  # rows per transaction: ~1 MB of templates, one round trip per row batch


@dataclass
class LoadResult:
    loaded: int = 0
    skipped_already_enrolled: int = 0
    failures: list[dict] = field(default_factory=list)  # rows the job could not enrol

    def to_dict(self) -> dict:
        return {
            "loaded": self.loaded,
            "skipped_already_enrolled": self.skipped_already_enrolled,
            "failures": len(self.failures),
        }


def shard_files(out_dir: Path) -> list[Path]:
    files = sorted(out_dir.glob("part-*.parquet"))
    if not files:
        raise SourceError(f"no template shards (part-*.parquet) in {out_dir}")
    return files


def load_shards(
    gallery: Gallery,
    out_dir: Path,
    *,
    chunk: int = LOAD_CHUNK,
    advance: Callable[[int], None] | None = None,
) -> LoadResult:
    result = LoadResult()
    done = gallery.enrolled_citizen_ids()
    for path in shard_files(out_dir):
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            if row["status"] != OK:
                result.failures.append(
                    {
                        "citizen_id": row["citizen_id"],
                        "path": row["photo"],
                        "reason": row["reasons"][0] if row["reasons"] else "unknown",
                        "detail": row["detail"] or "",
                    }
                )
            elif (row["model"], row["model_version"]) != (gallery.model, gallery.model_version):
                raise SourceError(
                    f"{path} holds {row['model']} {row['model_version']} templates; the store "
                    f"takes {gallery.model} {gallery.model_version}: re-run enrol-bulk"
                )
        todo = [r for r in rows if r["status"] == OK and r["citizen_id"] not in done]
        result.skipped_already_enrolled += sum(
            1 for r in rows if r["status"] == OK and r["citizen_id"] in done
        )
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            gallery.enrol_many(
                [
                    (r["citizen_id"], np.asarray(r["template"], np.float32), r["quality"], "chip")
                    for r in part
                ]
            )
            result.loaded += len(part)
        if advance:
            advance(len(rows))
    return result
