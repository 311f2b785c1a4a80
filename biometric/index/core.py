"""The core index: a FAISS index whose labels are slots, mapped to the store's template ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from biometric.index import fileformat
from biometric.index.selfjoin import iter_self_join
from biometric.index.slots import IdMap, bitmap_of
from biometric.index.spec import (
    IndexKind,
    IndexNotTrained,
    IndexSpec,
    ProgressFn,
    default_kind_for,
    ivf_of,
    make_faiss_index,
)

# Tolerance on a template's L2 norm: embedders return unit vectors up to float32 rounding.
_NORM_TOLERANCE = 1e-2


class FaceIndex:
    """A FAISS index over templates keyed by the store's int64 template ids (see module doc)."""

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self._index = make_faiss_index(spec)
        self._slot_ids = np.empty(1024, np.int64)  # slot -> id, -1 = dead; capacity-doubled
        self._n_slots = 0
        self._n_dead = 0
        self._bitmap = np.zeros(128, np.uint8)  # live slots, little-endian bit order
        self._ids = IdMap()
        self._version = 0  # bumped by every mutation; self-join refuses a changing index
        self._mapped = False  # faiss data mapped read-only from a file (load(mmap=True))

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

    @property
    def version(self) -> int:
        """Bumped by every mutation."""
        return self._version

    @property
    def slot_ids(self) -> np.ndarray:
        """slot -> template id (-1 = dead), a view: do not modify."""
        return self._slot_ids[: self._n_slots]

    def search_slots(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw faiss search over live slots: ``(scores, slots)`` (slot -1 = no result)."""
        return self._index.search(x, k, params=self._search_params(k, self._selector()))

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
        out[order] = self.reconstruct_slots(slots[order])
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

    def _check_writable(self) -> None:
        if self._mapped:
            raise RuntimeError("this index is mapped read-only from its file")

    def _maybe_compact(self) -> None:
        limit = self.spec.compact_dead_fraction
        if self._mapped or limit is None:
            return
        if self._n_dead >= 64 and self._n_dead > limit * self._n_slots:
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
        else:  # 64 points per list, and per PQ centroid (see make_faiss_index)
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
        self._check_writable()
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
        self._check_writable()
        self._version += 1
        n = self._n_slots
        slot_ids = self._slot_ids[:n]
        live = slot_ids >= 0
        dead = np.flatnonzero(~live).astype(np.int64)
        new_slot_of = np.cumsum(live, dtype=np.int64) - 1
        kind = self.spec.kind
        if kind is IndexKind.HNSW:
            fresh = make_faiss_index(self.spec)
            chunk = 65536
            for start in range(0, n, chunk):  # slot ranges: bounded memory however sparse
                part = start + np.flatnonzero(live[start : start + chunk])
                fresh.add(self.reconstruct_slots(part))
                if progress:
                    progress("compact", min(start + chunk, n), n)
            self._index = fresh
        else:
            sel = faiss.IDSelectorBatch(dead)
            if kind is IndexKind.FLAT:
                self._index.remove_ids(sel)  # order-preserving: survivors get their rank
            else:
                ivf = ivf_of(self._index)
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
        self._bitmap = bitmap_of(np.ones(len(kept), bool))
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
        return self._to_ids(*self.search_slots(x, k))

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

    def reconstruct_slots(self, slots: np.ndarray) -> np.ndarray:
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

        Do not modify the index while iterating. Scores come from the index: approximate for
        ``ivf_sq8`` / ``ivf_pq``, so re-score against the store's templates before acting on a
        pair near the threshold (:mod:`biometric.index.selfjoin`).
        """
        return iter_self_join(self, k, threshold, batch_size, progress)

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
    def save(self, path: str | Path, change_number: int) -> None:
        """Write the index atomically to ``path`` (plus an informational ``path.json``).

        ``change_number`` is the store's change counter the index reflects; ``load`` returns it
        so the caller can replay newer changes from the store (:mod:`.fileformat`)."""
        fileformat.save(path, self.spec, self.slot_ids, self._index, change_number)

    @staticmethod
    def read_header(path: str | Path) -> dict[str, Any]:
        """The header (spec, change number, counts) of a saved index, without loading it."""
        return fileformat.read_header(Path(path))

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        expected_dim: int | None = None,
        mmap: bool = False,
        verify: bool = True,
    ) -> tuple[FaceIndex, int]:
        """Load a saved index; returns ``(index, change_number)``.

        ``mmap``: map the faiss data read-only from the file instead of reading it into this
        process (several processes then share one copy in the page cache). A mapped index is
        read-only: :meth:`add` and :meth:`compact` refuse it, :meth:`remove` only marks slots
        dead (see :class:`~biometric.index.shared.SharedIndex`). ``verify``: check the SHA-256
        of the whole file first (reads it once)."""
        loaded = fileformat.load(Path(path), expected_dim=expected_dim, mmap=mmap, verify=verify)
        self = cls.__new__(cls)
        self.spec = loaded.spec
        self._index = loaded.faiss_index
        slot_ids = loaded.slot_ids
        self._slot_ids = slot_ids if len(slot_ids) else np.empty(1024, np.int64)
        self._n_slots = len(slot_ids)
        live = slot_ids >= 0
        self._n_dead = int(len(slot_ids) - live.sum())
        self._bitmap = bitmap_of(live)
        self._ids = loaded.id_map
        self._version = 0
        self._mapped = mmap
        return self, loaded.change_number
