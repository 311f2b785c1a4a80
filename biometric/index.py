"""1:N search over enrolled templates for duplicate screening: a FAISS index with our own ids.

Templates are L2-normalised float32 vectors, so cosine similarity is the inner product and
every kind here searches by inner product (higher = more similar). The enrolment store is the
source of truth; this index is derived from it and can always be rebuilt from it.

Kinds (:class:`IndexKind`):

* ``flat``: exact search (brute force). Best for small galleries; cost grows linearly.
* ``hnsw``: HNSW graph over uncompressed vectors. Fast and accurate; about 1 kB per template;
  slow to build on few cores.
* ``ivf_sq8``: inverted file (k-means lists) + 8-bit scalar quantiser, about 200 B per template.
* ``ivf_pq``: inverted file + product quantiser, ``dim/2`` bytes of code per template (about
  140 B in all); the compressed kind. It ranks the near-tied impostor neighbours less exactly
  (recall@10 ~0.9 against exact search) but finds genuine-level matches. An optional re-rank
  from a scalar-quantised copy ("refine") brings recall near ``ivf_sq8``'s at ~280 B.

Ids and deletion. The faiss index never sees the store's ids: vectors are appended under
consecutive internal *slots* (faiss labels ``0..n-1``), and this module keeps the
slot -> id and id -> slot maps (numpy arrays, about 24 bytes per template). Removing a template,
or re-enrolling an id (which replaces its vector), only marks the old slot dead ("tombstone");
searches pass faiss a bitmap selector of live slots, so a dead slot is never returned and does
not take the place of a live result. The same mechanism works for every kind, including HNSW,
whose graph cannot delete nodes. :meth:`FaceIndex.compact` drops the dead slots for good:
``flat`` and the IVF kinds do it in place in O(n); ``hnsw`` has to rebuild its graph, which is
why it is not compacted automatically (see :attr:`IndexSpec.compact_dead_fraction` and
:attr:`FaceIndex.needs_compaction`); schedule it off the request path, or rebuild from the store.

Files. :meth:`FaceIndex.save` writes one self-contained file (slots, faiss index, a JSON header
with the spec and the store's change number, a SHA-256 of it all) to a temporary file that then
replaces the target with :func:`os.replace`, so readers see the old file or the new one, never a
mix. A small JSON sidecar (``<path>.json``) with the same header is written after it for people
and tools; the header inside the index file is the one :meth:`FaceIndex.load` trusts.

Threads. FAISS uses OpenMP; the thread count is process wide: :func:`set_num_threads`.
A :class:`FaceIndex` is not thread safe: guard it with a lock (searches may share a read lock).
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import math
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from biometric.errors import BiometricError

__all__ = [
    "FaceIndex",
    "IndexFileError",
    "IndexKind",
    "IndexNotTrained",
    "IndexSpec",
    "ProgressFn",
    "default_kind_for",
    "get_num_threads",
    "set_num_threads",
]

#: ``progress(phase, done, total)``; phase is ``"train"``, ``"add"``, ``"self_join"`` or
#: ``"compact"``. Called from the calling thread; keep it cheap.
ProgressFn = Callable[[str, int, int], None]

FORMAT_VERSION = 1
_MAGIC = b"BIOFIDX1"
_TRAILER = struct.Struct("<Q32s8s")  # header length, sha256 of all before it, magic
_NORM_TOLERANCE = 1e-2
_IO_CHUNK = 16 << 20

# Sizes where the default kind changes (see default_kind_for and benchmarks/index_bench.py).
FLAT_MAX_TEMPLATES = 20_000
# HNSW efSearch 128 keeps recall@10 >= 0.99 up to here; larger galleries need 256.
HNSW_EF128_MAX_TEMPLATES = 300_000


class IndexNotTrained(BiometricError):
    """An IVF index must be trained (``train_if_needed`` or ``FaceIndex.build``) before adding."""

    code = "index_not_trained"


class IndexFileError(BiometricError):
    """The index file is missing, truncated, corrupt, or of another format version."""

    code = "index_file_error"


class IndexKind(enum.StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"
    IVF_SQ8 = "ivf_sq8"
    IVF_PQ = "ivf_pq"

    @property
    def is_ivf(self) -> bool:
        return self in (IndexKind.IVF_SQ8, IndexKind.IVF_PQ)


def default_kind_for(n_templates: int) -> IndexKind:
    """The kind to use for a gallery of ``n_templates`` (measured in benchmarks/index_bench.py).

    Up to 20k templates: ``flat``: exact, nothing to tune or compact, and on 2 cores one query
    costs ~0.08 ms per 1k templates (p50 0.4 ms at 10k, 1.9 ms at 25k, 8 ms at 100k), so the
    5 ms p99 target is lost between 25k and 50k. Above: ``hnsw`` (p99 < 1 ms at 100k with
    recall@10 > 0.99). ``ivf_sq8`` is the lean alternative (~230 B instead of ~1.1 kB per
    template, faster to build) at recall@10 ~0.987: its 8-bit codes cannot order the near-tied
    impostor neighbours exactly, though it finds the genuine-level ones.
    """
    if n_templates < 0:
        raise ValueError("n_templates must be >= 0")
    return IndexKind.FLAT if n_templates <= FLAT_MAX_TEMPLATES else IndexKind.HNSW


def set_num_threads(n: int) -> None:
    """Set FAISS's OpenMP thread count for this process (all indexes, all threads)."""
    if n < 1:
        raise ValueError("thread count must be >= 1")
    faiss.omp_set_num_threads(int(n))


def get_num_threads() -> int:
    return int(faiss.omp_get_max_threads())


def _pow2_near(x: float) -> int:
    return 1 << max(0, round(math.log2(max(1.0, x))))


@dataclass(frozen=True)
class IndexSpec:
    """What to build and how to search it. ``for_size`` picks defaults for a gallery size.

    Parameters that do not apply to ``kind`` are ignored. ``nlist``, ``hnsw_m``, ``pq_*`` and
    ``refine`` are fixed once built; ``nprobe``, ``ef_search`` and ``k_factor`` may be changed on
    a built index (:meth:`FaceIndex.set_search_params`).
    """

    kind: IndexKind
    dim: int
    # IVF
    nlist: int = 1024
    nprobe: int = 32
    max_train: int = 0  # training sample cap; 0 = 64 per list (and per PQ centroid)
    # HNSW
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    # IVF-PQ
    pq_m: int = 96  # sub-quantisers = code bytes per template (pq_nbits = 8)
    pq_nbits: int = 8
    refine: str = "none"  # re-rank store for ivf_pq: "none", "sq4", "sq6", "sq8"
    k_factor: int = 8  # candidates re-ranked per result with a refine store
    # Tombstones: compact automatically once this fraction of slots is dead; None = never.
    compact_dead_fraction: float | None = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", IndexKind(self.kind))
        if self.dim < 1:
            raise ValueError("dim must be >= 1")
        if self.kind.is_ivf and (self.nlist < 1 or self.nprobe < 1):
            raise ValueError("nlist and nprobe must be >= 1")
        if self.kind is IndexKind.HNSW and (
            self.hnsw_m < 2 or self.ef_search < 1 or self.ef_construction < 1
        ):
            raise ValueError("hnsw_m must be >= 2, ef_search and ef_construction >= 1")
        if self.kind is IndexKind.IVF_PQ:
            if self.pq_m < 1 or self.dim % self.pq_m:
                raise ValueError(f"pq_m={self.pq_m} must divide dim={self.dim}")
            if not 1 <= self.pq_nbits <= 16:
                raise ValueError("pq_nbits must be in 1..16")
            if self.refine not in _REFINE_FACTORY:
                raise ValueError(f"refine must be one of {sorted(_REFINE_FACTORY)}")
            if self.k_factor < 1:
                raise ValueError("k_factor must be >= 1")
        if self.compact_dead_fraction is not None and not 0 < self.compact_dead_fraction <= 1:
            raise ValueError("compact_dead_fraction must be in (0, 1] or None")

    @classmethod
    def for_size(cls, kind: IndexKind | str, dim: int, n_templates: int) -> IndexSpec:
        """Defaults for a gallery of about ``n_templates`` (tuned in benchmarks/index_bench.py).

        IVF: ``nlist`` ~ 4 sqrt(n) (a power of two, at least 39 training points per list).
        HNSW: M=32; efSearch 128 up to 300k templates, 256 above. Measured on clustered 192-d
        data: 100k at efSearch 128 gives recall@10 0.9986, 1M at 128 only 0.983, and 1M at 256
        0.991 with a p99 of 3.5 ms per query.
        IVF-PQ: ``dim/2`` sub-quantisers of 8 bits (2 dimensions each), no refine.
        """
        kind = IndexKind(kind)
        n = max(1, int(n_templates))
        nlist = max(1, min(_pow2_near(4 * math.sqrt(n)), 65536, n // 39 or 1))
        # Lists probed: grows slowly with nlist; at 1M (4096 lists) 48 lists ~ 1.2 % of data.
        nprobe = max(1, min(nlist, max(8, round(0.75 * math.sqrt(nlist)))))
        pq_m = _pq_m_for(dim)
        return cls(
            kind=kind,
            dim=dim,
            nlist=nlist,
            nprobe=nprobe,
            hnsw_m=32,
            ef_construction=80,
            ef_search=128 if n <= HNSW_EF128_MAX_TEMPLATES else 256,
            pq_m=pq_m,
            pq_nbits=8,
            refine="none",
            k_factor=8,
            compact_dead_fraction=None if kind is IndexKind.HNSW else 0.2,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _pq_m_for(dim: int) -> int:
    target = max(1, dim // 2)
    for m in range(target, 0, -1):
        if dim % m == 0:
            return m
    return 1


_REFINE_FACTORY = {"none": "", "sq4": ",Refine(SQ4)", "sq6": ",Refine(SQ6)", "sq8": ",Refine(SQ8)"}


def _make_faiss_index(spec: IndexSpec) -> faiss.Index:
    d, ip = spec.dim, faiss.METRIC_INNER_PRODUCT
    if spec.kind is IndexKind.FLAT:
        return faiss.IndexFlatIP(d)
    if spec.kind is IndexKind.HNSW:
        index = faiss.IndexHNSWFlat(d, spec.hnsw_m, ip)
        index.hnsw.efConstruction = spec.ef_construction
        return index
    if spec.kind is IndexKind.IVF_SQ8:
        return faiss.index_factory(d, f"IVF{spec.nlist},SQ8", ip)
    # "np": no polysemous training (slow, and only useful for Hamming pre-filtering).
    factory = f"IVF{spec.nlist},PQ{spec.pq_m}x{spec.pq_nbits}np{_REFINE_FACTORY[spec.refine]}"
    index = faiss.index_factory(d, factory, ip)
    # Sub-quantiser codebooks from at most 64 points per centroid (faiss: 256): 4x less k-means
    # work, recall@10 unchanged on the benchmark data (0.900 vs 0.903 at 100k).
    faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.max_points_per_centroid = 64
    return index


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.extract_index_ivf(index)


class _IdMap:
    """External id -> slot: sorted numpy arrays plus a small dict of changes since the last merge.

    About 16 bytes per template instead of ~100 for a Python dict; single enrolments cost a dict
    update, bulk loads a vectorised merge.
    """

    _MERGE_AT = 8192

    def __init__(self) -> None:
        self._keys = np.empty(0, np.int64)  # sorted, unique
        self._vals = np.empty(0, np.int64)  # slot, -1 = removed since the last merge
        self._recent: dict[int, int] = {}  # overrides the arrays; -1 = removed

    @classmethod
    def from_slots(cls, slot_ids: np.ndarray) -> _IdMap:
        m = cls()
        live = np.flatnonzero(slot_ids >= 0)
        order = np.argsort(slot_ids[live], kind="stable")
        m._keys = slot_ids[live][order].astype(np.int64)
        m._vals = live[order].astype(np.int64)
        return m

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        out = np.full(len(ids), -1, np.int64)
        if len(self._keys):
            pos = np.minimum(np.searchsorted(self._keys, ids), len(self._keys) - 1)
            hit = self._keys[pos] == ids
            out[hit] = self._vals[pos[hit]]
        if self._recent:
            rk = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
            rv = np.fromiter(self._recent.values(), np.int64, len(self._recent))
            order = np.argsort(rk)
            rk, rv = rk[order], rv[order]
            pos = np.minimum(np.searchsorted(rk, ids), len(rk) - 1)
            hit = rk[pos] == ids
            out[hit] = rv[pos[hit]]
        return out

    def assign(self, ids: np.ndarray, slots: np.ndarray) -> None:
        """Set ``ids`` (unique) to ``slots``; slot -1 removes the id."""
        if len(ids) >= self._MERGE_AT:
            self._merge()
            self._merge_arrays(ids, slots)
            return
        self._recent.update(zip(ids.tolist(), slots.tolist(), strict=True))
        if len(self._recent) >= self._MERGE_AT:
            self._merge()

    def remap(self, new_slot_of: np.ndarray) -> None:
        """Apply a slot renumbering (after compaction); every mapped slot must be live."""
        self._merge()
        self._vals = new_slot_of[self._vals]

    def _merge(self) -> None:
        if not self._recent:
            return
        ids = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
        slots = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        self._recent = {}
        self._merge_arrays(ids, slots)

    def _merge_arrays(self, ids: np.ndarray, slots: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        ids, slots = ids[order], slots[order]
        keys, vals = self._keys, self._vals
        pos = np.searchsorted(keys, ids)
        exists = np.zeros(len(ids), bool)
        inside = pos < len(keys)
        exists[inside] = keys[pos[inside]] == ids[inside]
        vals = vals.copy()
        vals[pos[exists]] = slots[exists]
        new = ~exists & (slots >= 0)
        keys = np.insert(keys, pos[new], ids[new])
        vals = np.insert(vals, pos[new], slots[new])
        keep = vals >= 0
        self._keys, self._vals = keys[keep], vals[keep]


class _PairSet:
    """Set of int64 keys as a few sorted runs (log-structured), for self-join de-duplication."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), bool)
        for run in self._runs:
            if not len(run):
                continue
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[pos] == keys
        return found

    def add(self, keys: np.ndarray, drop_below: Callable[[np.ndarray], np.ndarray]) -> None:
        if len(keys):
            self._runs.append(np.unique(keys))
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            merged = np.union1d(self._runs.pop(), self._runs.pop())
            self._runs.append(merged[~drop_below(merged)])


class FaceIndex:
    """A FAISS index over templates keyed by the store's int64 template ids (see module doc)."""

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self._index = _make_faiss_index(spec)
        self._slot_ids = np.empty(1024, np.int64)  # slot -> id, -1 = dead; capacity-doubled
        self._n_slots = 0
        self._n_dead = 0
        self._bitmap = np.zeros(128, np.uint8)  # live slots, little-endian bit order
        self._ids = _IdMap()
        self._version = 0  # bumped by every mutation; self-join refuses a changing index

    # ----------------------------------------------------------------------------- properties
    def __len__(self) -> int:
        return self._n_slots - self._n_dead

    def __repr__(self) -> str:
        return (
            f"FaceIndex(kind={self.spec.kind.value}, dim={self.spec.dim}, live={len(self)}, "
            f"dead={self._n_dead})"
        )

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def dead_count(self) -> int:
        """Tombstoned slots (removed or replaced templates) still held by the faiss index."""
        return self._n_dead

    @property
    def needs_compaction(self) -> bool:
        """True when the dead fraction passed the spec's threshold (or 20 % for ``hnsw``)."""
        limit = self.spec.compact_dead_fraction or 0.2
        return self._n_slots > 0 and self._n_dead > limit * self._n_slots

    @property
    def faiss_index(self) -> faiss.Index:
        """The underlying faiss index (labels are internal slots, not template ids)."""
        return self._index

    def ids(self) -> np.ndarray:
        """The live template ids, in slot (insertion) order."""
        s = self._slot_ids[: self._n_slots]
        return s[s >= 0].copy()

    def contains(self, ids: Any) -> np.ndarray:
        return self._ids.lookup(self._check_ids(ids)) >= 0

    def vectors(self, ids: Any) -> np.ndarray:
        """The stored vectors of live ``ids`` (decoded for the quantised kinds), in their order:
        the queries of a self-join whose index is split over several processes."""
        slots = self._ids.lookup(self._check_ids(ids))
        if (slots < 0).any():
            raise KeyError(f"{int((slots < 0).sum())} of the ids are not in the index")
        order = np.argsort(slots, kind="stable")
        out = np.empty((len(slots), self.spec.dim), np.float32)
        out[order] = self._reconstruct_slots(slots[order])
        return out

    def set_search_params(
        self,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        k_factor: int | None = None,
    ) -> None:
        changes = {
            k: v
            for k, v in (("nprobe", nprobe), ("ef_search", ef_search), ("k_factor", k_factor))
            if v is not None
        }
        self.spec = replace(self.spec, **changes)

    # ----------------------------------------------------------------------------- validation
    def _check_vectors(self, vectors: Any, what: str = "templates") -> np.ndarray:
        x = np.asarray(vectors)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.spec.dim:
            raise ValueError(
                f"{what} must have shape (n, {self.spec.dim}) for this index, got {x.shape}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{what} must be floating point, got {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x):
            if not np.isfinite(x).all():
                raise ValueError(f"{what} contain NaN or infinity")
            norms = np.linalg.norm(x, axis=1)
            bad = np.abs(norms - 1.0) > _NORM_TOLERANCE
            if bad.any():
                raise ValueError(
                    f"{what} must be L2-normalised (cosine = inner product); "
                    f"{int(bad.sum())} of {len(x)} have norm far from 1, e.g. {norms[bad][0]:.4f}"
                )
        return x

    @staticmethod
    def _check_ids(ids: Any) -> np.ndarray:
        a = np.asarray(ids)
        if a.ndim == 0:
            a = a[None]
        if a.ndim != 1:
            raise ValueError(f"ids must be one-dimensional, got shape {a.shape}")
        if len(a) and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"ids must be integers, got {a.dtype}")
        a = a.astype(np.int64, copy=False)
        if len(a) and a.min() < 0:
            raise ValueError("ids must be >= 0 (-1 marks an empty result)")
        return a

    # ----------------------------------------------------------------------------- slots
    def _append_slots(self, ids: np.ndarray) -> np.ndarray:
        n0, n1 = self._n_slots, self._n_slots + len(ids)
        if n1 > len(self._slot_ids):
            grown = np.empty(max(n1, 2 * len(self._slot_ids)), np.int64)
            grown[:n0] = self._slot_ids[:n0]
            self._slot_ids = grown
        self._slot_ids[n0:n1] = ids
        nbytes = (n1 + 7) // 8
        if nbytes > len(self._bitmap):
            grown_bm = np.zeros(max(nbytes, 2 * len(self._bitmap)), np.uint8)
            grown_bm[: len(self._bitmap)] = self._bitmap
            self._bitmap = grown_bm
        slots = np.arange(n0, n1, dtype=np.int64)
        np.bitwise_or.at(self._bitmap, slots >> 3, (1 << (slots & 7)).astype(np.uint8))
        self._n_slots = n1
        return slots

    def _kill_slots(self, slots: np.ndarray) -> None:
        if not len(slots):
            return
        self._slot_ids[slots] = -1
        np.bitwise_and.at(self._bitmap, slots >> 3, (~(1 << (slots & 7))).astype(np.uint8))
        self._n_dead += len(slots)

    def _selector(self) -> faiss.IDSelector | None:
        if not self._n_dead:
            return None
        nbytes = (self._n_slots + 7) // 8
        return faiss.IDSelectorBitmap(nbytes, faiss.swig_ptr(self._bitmap))

    def _search_params(self, k: int, sel: faiss.IDSelector | None) -> faiss.SearchParameters:
        spec = self.spec
        if spec.kind is IndexKind.FLAT:
            return faiss.SearchParameters(sel=sel) if sel is not None else None
        if spec.kind is IndexKind.HNSW:
            p = faiss.SearchParametersHNSW(efSearch=max(spec.ef_search, k))
        else:
            p = faiss.SearchParametersIVF(nprobe=min(spec.nprobe, spec.nlist))
        if sel is not None:
            p.sel = sel
        if spec.kind is IndexKind.IVF_PQ and spec.refine != "none":
            return faiss.IndexRefineSearchParameters(k_factor=spec.k_factor, base_index_params=p)
        return p

    def _maybe_compact(self) -> None:
        limit = self.spec.compact_dead_fraction
        if limit is not None and self._n_dead >= 64 and self._n_dead > limit * self._n_slots:
            self.compact()

    def empty_like(self) -> FaceIndex:
        """A new empty index with this spec and, for IVF, the same trained quantisers, e.g.
        to rebuild from the store without training again. Copies the faiss index first, so it
        is cheapest on an index that holds nothing yet."""
        new = FaceIndex(self.spec)
        if self.spec.kind.is_ivf and self._index.is_trained:
            new._index = faiss.clone_index(self._index)
            new._index.reset()
        return new

    # ----------------------------------------------------------------------------- training
    def train_if_needed(self, sample: Any, *, seed: int = 0) -> bool:
        """Train the IVF quantisers on ``sample`` (a random subset of at most ``max_train``
        rows is used) unless already trained. Returns True if it trained. No-op for flat/hnsw."""
        if self._index.is_trained:
            return False
        x = self._check_vectors(sample, "training sample")
        spec = self.spec
        need = spec.nlist
        if spec.kind is IndexKind.IVF_PQ:
            need = max(need, 1 << spec.pq_nbits)
        if len(x) < need:
            raise ValueError(
                f"{spec.kind.value} with nlist={spec.nlist} needs at least {need} training "
                f"templates (ideally 39 per list or more), got {len(x)}; use a smaller nlist "
                "(IndexSpec.for_size) or the flat kind"
            )
        if spec.max_train:
            cap = max(spec.max_train, need)
        else:  # 64 points per list, and per PQ centroid (see _make_faiss_index)
            cap = 64 * max(spec.nlist, 1 << spec.pq_nbits if spec.kind is IndexKind.IVF_PQ else 0)
        if len(x) > cap:
            rows = np.sort(np.random.default_rng(seed).choice(len(x), cap, replace=False))
            x = x[rows]
        self._index.train(x)
        return True

    # ----------------------------------------------------------------------------- mutation
    def add(self, ids: Any, vectors: Any) -> int:
        """Add templates; an id already present is replaced (re-enrolment). Within one call the
        last occurrence of a repeated id wins. Returns how many existing ids were replaced."""
        x = self._check_vectors(vectors)
        ids_a = self._check_ids(ids)
        if len(ids_a) != len(x):
            raise ValueError(f"{len(ids_a)} ids for {len(x)} templates")
        if not len(x):
            return 0
        if not self._index.is_trained:
            raise IndexNotTrained(
                f"the {self.spec.kind.value} index is not trained: call train_if_needed(sample) "
                "or build it with FaceIndex.build"
            )
        _, last = np.unique(ids_a[::-1], return_index=True)
        if len(last) != len(ids_a):
            keep = np.sort(len(ids_a) - 1 - last)
            ids_a, x = ids_a[keep], x[keep]
        if self._index.ntotal != self._n_slots:  # invariant: faiss labels are our slots
            raise RuntimeError("faiss index and slot table are out of step")
        old = self._ids.lookup(ids_a)
        self._version += 1
        self._index.add(x)
        replaced = old[old >= 0]
        self._kill_slots(replaced)
        slots = self._append_slots(ids_a)
        self._ids.assign(ids_a, slots)
        self._maybe_compact()
        return len(replaced)

    def remove(self, ids: Any) -> int:
        """Remove templates by id; unknown ids are ignored. Returns how many were removed."""
        ids_a = np.unique(self._check_ids(ids))
        slots = self._ids.lookup(ids_a)
        present = slots >= 0
        self._version += 1
        self._kill_slots(slots[present])
        self._ids.assign(ids_a[present], np.full(int(present.sum()), -1, np.int64))
        self._maybe_compact()
        return int(present.sum())

    def compact(self, progress: ProgressFn | None = None) -> None:
        """Drop tombstoned slots from the faiss index and renumber the live ones (keeps their
        order). In place and O(n) for flat and IVF; a full graph rebuild for hnsw."""
        if not self._n_dead:
            return
        self._version += 1
        n = self._n_slots
        slot_ids = self._slot_ids[:n]
        live = slot_ids >= 0
        dead = np.flatnonzero(~live).astype(np.int64)
        new_slot_of = np.cumsum(live, dtype=np.int64) - 1
        kind = self.spec.kind
        if kind is IndexKind.HNSW:
            fresh = _make_faiss_index(self.spec)
            chunk = 65536
            for start in range(0, n, chunk):  # slot ranges: bounded memory however sparse
                part = start + np.flatnonzero(live[start : start + chunk])
                fresh.add(self._reconstruct_slots(part))
                if progress:
                    progress("compact", min(start + chunk, n), n)
            self._index = fresh
        else:
            sel = faiss.IDSelectorBatch(dead)
            if kind is IndexKind.FLAT:
                self._index.remove_ids(sel)  # order-preserving: survivors get their rank
            else:
                ivf = _ivf_of(self._index)
                ivf.remove_ids(sel)
                invlists = ivf.invlists
                for list_no in range(ivf.nlist):
                    size = invlists.list_size(list_no)
                    if size:
                        view = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
                        view[:] = new_slot_of[view]
                if isinstance(self._index, faiss.IndexRefine):
                    refine = faiss.downcast_index(self._index.refine_index)
                    refine.remove_ids(sel)  # flat codes: order-preserving, matches the relabel
                    self._index.ntotal = ivf.ntotal
            if progress:
                progress("compact", 1, 1)
        kept = slot_ids[live].copy()
        self._slot_ids = np.empty(max(1024, len(kept)), np.int64)
        self._slot_ids[: len(kept)] = kept
        self._n_slots = len(kept)
        self._n_dead = 0
        self._bitmap = _bitmap_of(np.ones(len(kept), bool))
        self._ids.remap(new_slot_of)
        if self._index.ntotal != self._n_slots:
            raise RuntimeError("compaction left the faiss index and slot table out of step")

    # ----------------------------------------------------------------------------- search
    def search(self, vectors: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k most similar live templates per query: ``(scores, ids)``, both ``(n, k)``, best
        first. Missing results (fewer than k templates) have id -1 and score -inf."""
        x = self._check_vectors(vectors, "queries")
        if k < 1:
            raise ValueError("k must be >= 1")
        n = len(x)
        if not len(self) or not n:
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        sel = self._selector()
        scores, labels = self._index.search(x, k, params=self._search_params(k, sel))
        return self._to_ids(scores, labels)

    def _to_ids(self, scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = labels >= 0
        ids = np.where(found, self._slot_ids[np.where(found, labels, 0)], -1)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        stale = found & (ids < 0)
        if stale.any():  # defensive: the selector should have excluded dead slots already
            order = np.argsort(ids < 0, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        return scores, ids

    def _reconstruct_slots(self, slots: np.ndarray) -> np.ndarray:
        """Stored vectors of ``slots`` (sorted), decoded for the quantised kinds."""
        if not len(slots):
            return np.empty((0, self.spec.dim), np.float32)
        lo, hi = int(slots[0]), int(slots[-1]) + 1
        index = self._index
        if isinstance(index, faiss.IndexRefine):
            index = faiss.downcast_index(index.refine_index)  # finer than the PQ codes
        elif isinstance(index, faiss.IndexHNSW):
            index = faiss.downcast_index(index.storage)
        if hi - lo > 2 * len(slots) and not isinstance(index, faiss.IndexIVF):
            # Sparse (many dead slots between): one by one, in C++. IVF kinds cannot (no
            # direct map) but are compacted before they get that sparse.
            return index.reconstruct_batch(slots)
        block = index.reconstruct_n(lo, hi - lo)
        return np.ascontiguousarray(block[slots - lo])

    def iter_self_join(
        self,
        k: int = 10,
        threshold: float = 0.0,
        batch_size: int = 4096,
        progress: ProgressFn | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Batched k-nearest-neighbour self-join; yields arrays ``(id_a, id_b, score)`` with
        ``id_a < id_b`` and ``score >= threshold``; each pair once over the whole run.

        Every live template queries the index with its stored vector (decoded, for the
        quantised kinds) for its k nearest others; a pair found from both sides is reported
        once. Do not modify the index while iterating. Scores come from the index:
        approximate for ``ivf_sq8`` / ``ivf_pq``, so re-score against the store's templates
        before acting on a pair near the threshold.
        """
        if k < 1 or batch_size < 1:
            raise ValueError("k and batch_size must be >= 1")
        n_slots = self._n_slots
        live_slots = np.flatnonzero(self._slot_ids[:n_slots] >= 0)
        total = len(live_slots)
        if total < 2:
            return
        sel = self._selector()
        params = self._search_params(k + 1, sel)
        seen = _PairSet()
        version = self._version
        for start in range(0, total, batch_size):
            if self._version != version:
                raise RuntimeError("the index changed during a self-join")
            qs = live_slots[start : start + batch_size]
            x = self._reconstruct_slots(qs)
            scores, labels = self._index.search(x, k + 1, params=params)
            other = (labels >= 0) & (labels != qs[:, None])
            valid = other & (np.cumsum(other, axis=1) <= k) & (scores >= threshold)
            a = np.broadcast_to(qs[:, None], labels.shape)[valid]
            b = labels[valid]
            s = scores[valid]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            key = lo * n_slots + hi
            order = np.lexsort((-s, key))  # per key, best score first
            key, lo, hi, s = key[order], lo[order], hi[order], s[order]
            first = np.ones(len(key), bool)
            first[1:] = key[1:] != key[:-1]
            key, lo, hi, s = key[first], lo[first], hi[first], s[first]
            # A pair whose lower slot was a query in an earlier batch may be out already.
            earlier = lo < qs[0]
            fresh = np.ones(len(key), bool)
            if earlier.any():
                fresh[earlier] = ~seen.contains(key[earlier])
            # Remember pairs whose other end is still to come as a query.
            first_query = int(qs[0])
            seen.add(
                key[fresh & (hi > qs[-1])],
                drop_below=lambda keys, q0=first_query: (keys % n_slots) < q0,
            )
            lo, hi, s = lo[fresh], hi[fresh], s[fresh]
            ida, idb = self._slot_ids[lo], self._slot_ids[hi]
            swap = ida > idb
            ida, idb = np.where(swap, idb, ida), np.where(swap, ida, idb)
            if progress:
                progress("self_join", min(start + batch_size, total), total)
            if len(s):
                yield ida, idb, s.astype(np.float32)

    def self_join(
        self,
        k: int = 10,
        threshold: float = 0.0,
        batch_size: int = 4096,
        progress: ProgressFn | None = None,
    ) -> Iterator[tuple[int, int, float]]:
        """Like :meth:`iter_self_join`, one ``(id_a, id_b, score)`` tuple at a time."""
        for ida, idb, s in self.iter_self_join(k, threshold, batch_size, progress):
            yield from zip(ida.tolist(), idb.tolist(), s.tolist(), strict=True)

    # ----------------------------------------------------------------------------- bulk build
    @classmethod
    def build(
        cls,
        ids: Any,
        vectors: Any,
        spec: IndexSpec | None = None,
        *,
        progress: ProgressFn | None = None,
        chunk_size: int = 65536,
        seed: int = 0,
    ) -> FaceIndex:
        """Build an index from scratch: train (IVF, on a subsample) and add in chunks.
        Without ``spec``, uses ``IndexSpec.for_size(default_kind_for(n), dim, n)``."""
        x = np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"vectors must be two-dimensional (n, dim), got shape {x.shape}")
        n = len(x)
        if spec is None:
            spec = IndexSpec.for_size(default_kind_for(n), x.shape[1], n)
        index = cls(spec)
        ids_a = cls._check_ids(ids)
        if len(ids_a) != n:
            raise ValueError(f"{len(ids_a)} ids for {n} templates")
        if spec.kind.is_ivf:
            if progress:
                progress("train", 0, 1)
            index.train_if_needed(x, seed=seed)
            if progress:
                progress("train", 1, 1)
        for start in range(0, n, chunk_size):
            end = min(n, start + chunk_size)
            index.add(ids_a[start:end], x[start:end])
            if progress:
                progress("add", end, n)
        return index

    # ----------------------------------------------------------------------------- files
    def _header(self, change_number: int) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "spec": self.spec.to_dict(),
            "change_number": int(change_number),
            "n_slots": self._n_slots,
            "n_live": len(self),
            "faiss_version": faiss.__version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self, path: str | os.PathLike[str], change_number: int) -> None:
        """Write the index atomically to ``path`` (plus an informational ``path.json``).

        ``change_number`` is the store's change counter the index reflects; ``load`` returns it
        so the caller can replay newer changes from the store."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = self._header(change_number)
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

                write(_MAGIC)
                write(self._slot_ids[: self._n_slots].astype("<i8").tobytes())
                before = written
                faiss.write_index(self._index, faiss.PyCallbackIOWriter(write))
                header["faiss_bytes"] = written - before
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

    @staticmethod
    def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
        """The header (spec, change number, counts) of a saved index, without loading it."""
        header, _ = _read_header(Path(path))
        return header

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, expected_dim: int | None = None
    ) -> tuple[FaceIndex, int]:
        """Load a saved index; returns ``(index, change_number)``. Verifies the checksum."""
        path = Path(path)
        header, digest = _read_header(path)
        spec = IndexSpec.from_dict(header["spec"])
        if expected_dim is not None and spec.dim != expected_dim:
            raise ValueError(f"index {path} holds {spec.dim}-d templates, expected {expected_dim}")
        n_slots = int(header["n_slots"])
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
            f.seek(len(_MAGIC))
            slot_ids = np.frombuffer(f.read(8 * n_slots), dtype="<i8").astype(np.int64)
            faiss_left = int(header["faiss_bytes"])

            def read(n: int) -> bytes:
                nonlocal faiss_left
                data = f.read(min(n, faiss_left))
                faiss_left -= len(data)
                return data

            try:
                raw = faiss.read_index(faiss.PyCallbackIOReader(read))
            except RuntimeError as exc:
                raise IndexFileError(f"{path}: cannot read the faiss index: {exc}") from exc
        self = cls.__new__(cls)
        self.spec = spec
        self._index = raw
        if raw.d != spec.dim or raw.ntotal != n_slots or len(slot_ids) != n_slots:
            raise IndexFileError(f"{path}: faiss index does not match its header")
        self._slot_ids = slot_ids if len(slot_ids) else np.empty(1024, np.int64)
        self._n_slots = n_slots
        live = slot_ids >= 0
        self._n_dead = int(n_slots - live.sum())
        self._bitmap = _bitmap_of(live)
        self._ids = _IdMap.from_slots(slot_ids)
        self._version = 0
        return self, int(header["change_number"])


def _read_header(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        f = path.open("rb")
    except FileNotFoundError as exc:
        raise IndexFileError(f"no index file at {path}") from exc
    with f:
        size = f.seek(0, io.SEEK_END)
        if size < len(_MAGIC) + _TRAILER.size:
            raise IndexFileError(f"{path} is not an index file (too short)")
        f.seek(0)
        if f.read(len(_MAGIC)) != _MAGIC:
            raise IndexFileError(f"{path} is not an index file (bad magic)")
        f.seek(size - _TRAILER.size)
        blob_len, digest, magic = _TRAILER.unpack(f.read(_TRAILER.size))
        if magic != _MAGIC or blob_len > size:
            raise IndexFileError(f"{path} is truncated or corrupt (bad trailer)")
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


def _bitmap_of(live: np.ndarray) -> np.ndarray:
    packed = np.packbits(live, bitorder="little")
    out = np.zeros(max(128, len(packed)), np.uint8)
    out[: len(packed)] = packed
    return out


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
