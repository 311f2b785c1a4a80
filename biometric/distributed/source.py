"""The bulk-enrolment source: a CSV or Parquet list of ``citizen_id,photo``, and its stable
split into shards.

Photos are local paths (relative ones resolve against the list's folder) or URIs that Arrow's
file systems read (``file://``, ``s3://``, ``gs://``, ``hdfs://``), so a cluster reads them
wherever they are stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from biometric.decode import DecodedImage, DecodeLimits, decode_image, read_image
from biometric.errors import BiometricError, ImageDecodeError, ImageTooLarge
from biometric.gallery.citizen import check_citizen_id


class SourceError(BiometricError):
    code = "invalid_source"


@dataclass(frozen=True)
class SourceRow:
    citizen_id: str
    photo: str  # absolute path or URI


def shard_of(citizen_id: str, n_shards: int) -> int:
    """A stable shard number: the same on every machine, process and run (Python's ``hash``
    is salted per process, so it cannot be used)."""
    digest = hashlib.blake2b(citizen_id.encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def _is_uri(ref: str) -> bool:
    return "://" in ref


def _read_table(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            # Citizen ids keep their leading zeros: every column is read as text.
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={"citizen_id": pa.string(), "photo": pa.string()}
                ),
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    raise SourceError(f"{path}: the source must be a .csv or .parquet file")


def read_source(path: Path) -> list[SourceRow]:
    """Every row, validated: a ``citizen_id`` and a ``photo`` column, valid ids, each id once."""
    if not path.is_file():
        raise SourceError(f"source {path} does not exist")
    table = _read_table(path)
    missing = {"citizen_id", "photo"} - set(table.column_names)
    if missing:
        raise SourceError(f"{path}: missing column(s) {sorted(missing)}; need citizen_id,photo")
    ids = [str(v).strip() if v is not None else "" for v in table.column("citizen_id").to_pylist()]
    photos = [str(v).strip() if v is not None else "" for v in table.column("photo").to_pylist()]
    rows = []
    seen: set[str] = set()
    for line, (cid, photo) in enumerate(zip(ids, photos, strict=True), start=2):
        try:
            check_citizen_id(cid)
        except BiometricError as exc:
            raise SourceError(f"{path} row {line}: {exc.message}") from exc
        if not photo:
            raise SourceError(f"{path} row {line}: no photo for citizen id {cid}")
        if cid in seen:
            raise SourceError(f"{path} row {line}: citizen id {cid} appears more than once")
        seen.add(cid)
        ref = photo if _is_uri(photo) else str((path.parent / photo).resolve())
        rows.append(SourceRow(cid, ref))
    return rows


def fingerprint(rows: list[SourceRow]) -> str:
    """Identifies a source's content, so a resumed job can refuse a different list."""
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.citizen_id):
        h.update(f"{row.citizen_id}\t{row.photo}\n".encode())
    return h.hexdigest()[:24]


def read_photo(ref: str, limits: DecodeLimits | None = None) -> DecodedImage:
    """Decode a photo from a path or a URI; the byte limit is checked before reading."""
    if not _is_uri(ref):
        return read_image(ref, limits)
    from pyarrow import fs

    limits = limits or DecodeLimits()
    try:
        filesystem, inner = fs.FileSystem.from_uri(ref)
        size = filesystem.get_file_info(inner).size
        if size is None:
            raise ImageDecodeError(f"cannot read {ref}: no such file")
        if size > limits.max_bytes:
            raise ImageTooLarge(f"{ref} is {size} bytes; the limit is {limits.max_bytes}")
        with filesystem.open_input_stream(inner) as stream:
            data = stream.read()
    except (OSError, pa.ArrowException) as exc:
        raise ImageDecodeError(f"cannot read {ref}: {exc}") from exc
    return decode_image(data, limits)
