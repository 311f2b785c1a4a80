"""Loading enrol-bulk shards into the store: a separate step from the Ray job.

Streams each Parquet shard a batch of rows at a time (the driver never holds the list), and
writes each batch in one transaction through :meth:`Gallery.enrol_new_bulk` (``COPY`` on
PostgreSQL, ``executemany`` on SQLite) with the change-log rows, so any index (single-process
or sharded) catches up by replaying the log. Citizen ids already enrolled for the model are
skipped (asked of the store per batch), so loading twice, or after a crash, adds nothing twice.
Shards from another model or model version are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from biometric.distributed.enrol_job import OK
from biometric.distributed.source import SourceError
from biometric.gallery.bulk import NewTemplate
from biometric.gallery.service import Gallery

# Rows per transaction: ~5 MB of 512-d templates; COPY's rate stops growing well below this
# (benchmarks/shared_index.py measures the load rate).
LOAD_CHUNK = 10_000
COLUMNS = ["citizen_id", "photo", "status", "reasons", "detail", "model", "model_version",
           "template", "quality"]


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
    for path in shard_files(out_dir):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk, columns=COLUMNS):
            rows = batch.to_pylist()
            ok = []
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
                    continue
                if (row["model"], row["model_version"]) != (gallery.model, gallery.model_version):
                    raise SourceError(
                        f"{path} holds {row['model']} {row['model_version']} templates; the "
                        f"store takes {gallery.model} {gallery.model_version}: re-run enrol-bulk"
                    )
                ok.append(row)
            done = gallery.enrolled_among([r["citizen_id"] for r in ok]) if ok else set()
            result.skipped_already_enrolled += len(done)
            result.loaded += gallery.enrol_new_bulk(
                [
                    NewTemplate(r["citizen_id"], np.asarray(r["template"], np.float32),
                                r["quality"])
                    for r in ok
                    if r["citizen_id"] not in done
                ]
            )
            if advance:
                advance(len(rows))
    return result
