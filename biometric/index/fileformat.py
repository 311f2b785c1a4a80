"""The index file: one self-contained file per index, written atomically, mappable.

Layout (format 2)::

    faiss index | slot ids | sorted ids | their slots | JSON header | trailer

The faiss index comes first so that FAISS can map it straight from the file
(``IO_FLAG_MMAP_IFC``: the codes, inverted lists and graph stay in the page cache, shared by
every process that maps the file); the three int64 arrays (little-endian) can be mapped the same
way with numpy. The trailer holds the header's length, a SHA-256 of everything before it and a
magic. :func:`save` writes to a temporary file that then replaces the target with
:func:`os.replace`, so readers see the old file or the new one, never a mix; a process that
mapped the old file keeps its (unlinked) copy until it maps the new one. A small JSON sidecar
(``<path>.json``) with the same header is written after it for people and tools; the header
inside the index file is the one :func:`load` trusts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from biometric.index.slots import IdMap
from biometric.index.spec import IndexFileError, IndexSpec

FORMAT_VERSION = 2
_MAGIC = b"BIOFIDX1"
_TRAILER = struct.Struct("<Q32s8s")  # header length, sha256 of all before it, magic
_IO_CHUNK = 16 << 20


@dataclass(frozen=True)
class Loaded:
    spec: IndexSpec
    faiss_index: faiss.Index
    slot_ids: np.ndarray
    id_map: IdMap
    change_number: int


def save(
    path: str | os.PathLike[str],
    spec: IndexSpec,
    slot_ids: np.ndarray,
    index: faiss.Index,
    change_number: int,
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    id_map = IdMap.from_slots(slot_ids)
    header: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "change_number": int(change_number),
        "n_slots": len(slot_ids),
        "n_live": len(id_map),
        "faiss_version": faiss.__version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            written = 0

            def write(data: bytes) -> None:
                nonlocal written
                digest.update(data)
                f.write(data)
                written += len(data)

            faiss.write_index(index, faiss.PyCallbackIOWriter(write))
            header["faiss_bytes"] = written
            for array in (slot_ids, *id_map.arrays()):
                write(np.ascontiguousarray(array, "<i8").tobytes())
            blob = json.dumps(header, sort_keys=True).encode()
            write(blob)
            f.write(_TRAILER.pack(len(blob), digest.digest(), _MAGIC))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    sidecar = dict(header, index_file=path.name, sha256=digest.hexdigest())
    _atomic_write_text(path.with_name(path.name + ".json"), json.dumps(sidecar, indent=2))


def read_header(path: Path) -> dict[str, Any]:
    return _read_header(path)[0]


def load(path: Path, *, expected_dim: int | None, mmap: bool, verify: bool) -> Loaded:
    header, digest = _read_header(path)
    spec = IndexSpec.from_dict(header["spec"])
    if expected_dim is not None and spec.dim != expected_dim:
        raise ValueError(f"index {path} holds {spec.dim}-d templates, expected {expected_dim}")
    n_slots, n_live = int(header["n_slots"]), int(header["n_live"])
    offset = int(header["faiss_bytes"])
    if verify:
        _check_digest(path, digest)
    arrays = []
    for n in (n_slots, n_live, n_live):
        if mmap and n:
            # Copy-on-write: a tombstone written into the slot table stays in this process.
            arrays.append(np.memmap(path, "<i8", "c", offset, (n,)))
        else:
            with path.open("rb") as f:
                f.seek(offset)
                arrays.append(np.frombuffer(f.read(8 * n), "<i8").astype(np.int64))
        offset += 8 * n
    slot_ids, keys, vals = arrays
    try:
        if mmap:
            raw = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        else:
            with path.open("rb") as f:
                raw = faiss.read_index(faiss.PyCallbackIOReader(f.read))
    except RuntimeError as exc:
        raise IndexFileError(f"{path}: cannot read the faiss index: {exc}") from exc
    if raw.d != spec.dim or raw.ntotal != n_slots or len(slot_ids) != n_slots:
        raise IndexFileError(f"{path}: faiss index does not match its header")
    return Loaded(
        spec, raw, slot_ids, IdMap.from_arrays(keys, vals), int(header["change_number"])
    )


def _check_digest(path: Path, digest: bytes) -> None:
    with path.open("rb") as f:
        h = hashlib.sha256()
        remaining = f.seek(0, io.SEEK_END) - _TRAILER.size  # the checksum covers it all
        f.seek(0)
        while remaining:
            chunk = f.read(min(_IO_CHUNK, remaining))
            if not chunk:
                raise IndexFileError(f"{path} is truncated")
            h.update(chunk)
            remaining -= len(chunk)
    if h.digest() != digest:
        raise IndexFileError(f"{path} is corrupt (checksum mismatch)")


def _read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        f = path.open("rb")
    except FileNotFoundError as exc:
        raise IndexFileError(f"no index file at {path}") from exc
    with f:
        size = f.seek(0, io.SEEK_END)
        if size < _TRAILER.size:
            raise IndexFileError(f"{path} is not an index file (too short)")
        f.seek(size - _TRAILER.size)
        blob_len, digest, magic = _TRAILER.unpack(f.read(_TRAILER.size))
        if magic != _MAGIC or blob_len > size:
            raise IndexFileError(f"{path} is not an index file, or truncated (bad trailer)")
        f.seek(size - _TRAILER.size - blob_len)
        try:
            header = json.loads(f.read(blob_len))
        except ValueError as exc:
            raise IndexFileError(f"{path}: unreadable header") from exc
    if header.get("format") != FORMAT_VERSION:
        raise IndexFileError(
            f"{path} has format {header.get('format')}, this code reads {FORMAT_VERSION}"
        )
    return header, digest


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
