"""What to build: the index kinds, their parameters (:class:`IndexSpec`) and the FAISS factory."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import faiss

from biometric.errors import BiometricError

#: ``progress(phase, done, total)``; phase is ``"train"``, ``"add"``, ``"self_join"`` or
#: ``"compact"``. Called from the calling thread; keep it cheap.
ProgressFn = Callable[[str, int, int], None]

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
            if self.refine not in REFINE_FACTORY:
                raise ValueError(f"refine must be one of {sorted(REFINE_FACTORY)}")
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


REFINE_FACTORY = {"none": "", "sq4": ",Refine(SQ4)", "sq6": ",Refine(SQ6)", "sq8": ",Refine(SQ8)"}


def make_faiss_index(spec: IndexSpec) -> faiss.Index:
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
    factory = f"IVF{spec.nlist},PQ{spec.pq_m}x{spec.pq_nbits}np{REFINE_FACTORY[spec.refine]}"
    index = faiss.index_factory(d, factory, ip)
    # Sub-quantiser codebooks from at most 64 points per centroid (faiss: 256): 4x less k-means
    # work, recall@10 unchanged on the benchmark data (0.900 vs 0.903 at 100k).
    faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.max_points_per_centroid = 64
    return index


def ivf_of(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.extract_index_ivf(index)

