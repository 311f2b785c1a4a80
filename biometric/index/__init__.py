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

Files: :mod:`.fileformat` (one self-contained file, written atomically, mappable by several
processes). Sharing one index between processes: :class:`SharedIndex` (a mapped saved index plus
the changes since it was saved).

Threads. FAISS uses OpenMP; the thread count is process wide: :func:`set_num_threads`.
A :class:`FaceIndex` is not thread safe: guard it with a lock (searches may share a read lock).

Layout: :mod:`.spec` (kinds, parameters, the FAISS factory), :mod:`.slots` (id -> slot map and
live-slot bitmap), :mod:`.core` (:class:`FaceIndex`), :mod:`.selfjoin`, :mod:`.fileformat`,
:mod:`.merge` (top-k of several result lists), :mod:`.shared`.
"""

from biometric.index.core import FaceIndex
from biometric.index.merge import merge_top_k
from biometric.index.shared import SharedIndex
from biometric.index.spec import (
    IndexFileError,
    IndexKind,
    IndexNotTrained,
    IndexSpec,
    ProgressFn,
    default_kind_for,
    get_num_threads,
    set_num_threads,
)

__all__ = [
    "FaceIndex",
    "IndexFileError",
    "IndexKind",
    "IndexNotTrained",
    "IndexSpec",
    "ProgressFn",
    "SharedIndex",
    "default_kind_for",
    "get_num_threads",
    "merge_top_k",
    "set_num_threads",
]
