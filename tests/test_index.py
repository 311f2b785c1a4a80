"""Behaviour of the 1:N index (biometric.index) on SYNTHETIC data.

Every vector here is a random unit vector or a noisy copy of one: these tests check index
mechanics (ids, deletion, replacement, files, self-join), never recognition accuracy, which
only real photos can measure.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from biometric.index import (
    FaceIndex,
    IndexFileError,
    IndexKind,
    IndexNotTrained,
    IndexSpec,
    SharedIndex,
    default_kind_for,
    get_num_threads,
    set_num_threads,
)

DIM = 192
N = 3000
ALL_KINDS = list(IndexKind)


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def near(rng: np.random.Generator, x: np.ndarray, noise: float = 0.25) -> np.ndarray:
    """Noisy copies of ``x`` (cosine to the original about 1 / sqrt(1 + noise^2))."""
    y = x + noise * unit(rng, len(x), x.shape[1])
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def gallery() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    ids = rng.choice(10**9, size=N, replace=False).astype(np.int64)  # sparse, like row ids
    return ids, unit(rng, N)


def spec_for(kind: IndexKind, dim: int = DIM, n: int = N) -> IndexSpec:
    """The default spec for ``n``, made cheaper to build: fewer, 6-bit PQ codebooks and a lighter
    HNSW construction. The code paths under test are the same."""
    return replace(IndexSpec.for_size(kind, dim, n), pq_m=dim // 4, pq_nbits=6, ef_construction=40)


_TRAINED: dict[IndexKind, FaceIndex] = {}


def build(kind: IndexKind, ids: np.ndarray, x: np.ndarray) -> FaceIndex:
    """Index of ``x`` under ``ids``; IVF kinds reuse quantisers trained once on random data."""
    if x.shape[1] != DIM or not kind.is_ivf:
        return FaceIndex.build(ids, x, spec_for(kind, x.shape[1], len(x)))
    if kind not in _TRAINED:
        empty = FaceIndex(spec_for(kind))
        empty.train_if_needed(unit(np.random.default_rng(99), N))
        _TRAINED[kind] = empty
    index = _TRAINED[kind].empty_like()
    index.add(ids, x)
    return index


@pytest.fixture(scope="module")
def built(gallery) -> dict[IndexKind, FaceIndex]:
    """One index per kind over the gallery; tests that mutate build their own."""
    ids, x = gallery
    return {kind: build(kind, ids, x) for kind in ALL_KINDS}


def test_exact_search_finds_planted_near_duplicates(gallery, built):
    ids, x = gallery
    rng = np.random.default_rng(1)
    rows = rng.choice(N, 200, replace=False)
    q = near(rng, x[rows])
    scores, found = built[IndexKind.FLAT].search(q, 10)
    assert scores.shape == found.shape == (200, 10)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(found[:, 0], ids[rows])
    np.testing.assert_allclose(scores[:, 0], np.sum(q * x[rows], axis=1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores must be best first"
    # The flat index is exact: same top-10 as brute force.
    brute = np.argsort(-(q @ x.T), axis=1)[:, :10]
    np.testing.assert_array_equal(found, ids[brute])


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_finds_planted_duplicates(gallery, built, kind):
    ids, x = gallery
    rng = np.random.default_rng(2)
    rows = rng.choice(N, 300, replace=False)
    q = near(rng, x[rows])
    scores, found = built[kind].search(q, 5)
    hit_rate = np.mean(found[:, 0] == ids[rows])
    assert hit_rate >= 0.97, f"{kind}: planted duplicate ranked first for {hit_rate:.1%}"
    # Scores are exact for flat/hnsw, estimates from the codes for the quantised kinds (the
    # test's small 6-bit PQ on isotropic data is coarse).
    exact = np.sum(q * x[rows], axis=1)
    error = np.abs(scores[:, 0] - exact)[found[:, 0] == ids[rows]]
    tolerance = {"flat": 1e-5, "hnsw": 1e-5, "ivf_sq8": 0.01, "ivf_pq": 0.25}[kind.value]
    assert np.median(error) <= tolerance, f"{kind}: median score error {np.median(error):.4f}"
    assert len(built[kind]) == N


def test_single_query_as_1d_vector(gallery, built):
    ids, x = gallery
    scores, found = built[IndexKind.HNSW].search(x[7], 3)
    assert found.shape == (1, 3) and found[0, 0] == ids[7]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_removed_ids_never_come_back(gallery, kind):
    ids, x = gallery
    index = build(kind, ids, x)
    gone = ids[::3]
    assert index.remove(gone) == len(gone)
    assert index.remove(gone) == 0  # idempotent; unknown ids are ignored
    assert len(index) == N - len(gone)
    assert not index.contains(gone).any() and index.contains(ids[1::3]).all()
    _, found = index.search(x[:300], 20)  # queries are the removed vectors themselves
    assert not np.isin(found, gone).any()
    assert (found[1::3, 0] == ids[1:300:3]).mean() >= 0.97  # survivors still found
    pairs = list(index.self_join(k=10, threshold=-1.0, batch_size=512))
    assert not np.isin(np.array(pairs)[:, :2].astype(np.int64), gone).any()
    index.compact()
    assert index.dead_count == 0 and len(index) == N - len(gone)
    _, found2 = index.search(x[:300], 20)
    assert not np.isin(found2, gone).any()
    assert (found2[1::3, 0] == ids[1:300:3]).mean() >= 0.97
    # The index still works after compaction: re-adding a removed id brings it back.
    index.add(gone[:5], x[:15:3])
    _, found3 = index.search(x[:15:3], 1)
    np.testing.assert_array_equal(found3[:, 0], gone[:5])


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_re_adding_an_id_replaces_its_vector(gallery, kind):
    ids, x = gallery
    index = build(kind, ids, x)
    rng = np.random.default_rng(3)
    fresh = unit(rng, 10)
    assert index.add(ids[:10], fresh) == 10  # re-enrolment of 10 ids
    assert len(index) == N
    _, by_old = index.search(x[:10], 5)
    assert not (by_old == ids[:10, None]).any(), "old vectors must be gone"
    scores, by_new = index.search(fresh, 1)
    np.testing.assert_array_equal(by_new[:, 0], ids[:10])
    assert (scores[:, 0] > (0.6 if kind is IndexKind.IVF_PQ else 0.98)).all()


def test_ivf_pq_with_a_refine_store(tmp_path, gallery):
    """The optional re-rank store (IndexRefine) must follow removal, compaction and files."""
    ids, x = gallery
    spec = replace(spec_for(IndexKind.IVF_PQ), refine="sq8", k_factor=4)
    index = FaceIndex.build(ids, x, spec)
    rng = np.random.default_rng(7)
    q = near(rng, x[:300])
    scores, found = index.search(q, 5)
    assert (found[:, 0] == ids[:300]).mean() >= 0.97
    assert np.median(np.abs(scores[:, 0] - np.sum(q * x[:300], axis=1))) < 0.01  # re-ranked
    index.remove(ids[:100])
    index.add(ids[100:110], x[:10])  # re-enrol 10 ids with the removed ones' vectors
    index.compact()
    assert len(index) == N - 100 and index.dead_count == 0
    _, found = index.search(x[:10], 3)
    np.testing.assert_array_equal(found[:, 0], ids[100:110])
    _, found = index.search(x[110:400], 1)
    assert (found[:, 0] == ids[110:400]).mean() >= 0.97
    assert not np.isin(index.search(x[:100], 10)[1], ids[:100]).any()
    index.save(tmp_path / "r.faissidx", 3)
    loaded, _ = FaceIndex.load(tmp_path / "r.faissidx")
    np.testing.assert_array_equal(loaded.search(x[:50], 5)[1], index.search(x[:50], 5)[1])
    twins = 10**10 + np.arange(5)
    loaded.add(twins, near(rng, x[200:205], 0.1))
    pairs = {(a, b) for a, b, _ in loaded.self_join(k=3, threshold=0.9)}
    assert pairs == {(int(a), int(b)) for a, b in zip(ids[200:205], twins, strict=True)}


@pytest.mark.parametrize("kind", [IndexKind.FLAT, IndexKind.HNSW])
def test_mostly_removed_index_still_joins_and_compacts(gallery, kind):
    ids, x = gallery
    index = build(kind, ids, x)
    index.remove(ids[np.arange(N) % 10 != 0])  # 90 % dead, sparse survivors
    keep = ids[::10]
    twins = 10**10 + np.arange(3)
    index.add(twins, near(np.random.default_rng(8), x[:30:10], 0.1))
    pairs = {(a, b) for a, b, _ in index.self_join(k=3, threshold=0.9, batch_size=64)}
    assert pairs == {(int(a), int(b)) for a, b in zip(keep[:3], twins, strict=True)}
    index.compact()
    assert len(index) == len(keep) + 3
    _, found = index.search(x[::10], 1)
    np.testing.assert_array_equal(found[:, 0], keep)


def test_repeated_id_in_one_batch_keeps_the_last(gallery):
    _, x = gallery
    index = FaceIndex(IndexSpec.for_size("flat", DIM, 10))
    index.add([5, 6, 5], x[:3])
    assert len(index) == 2
    _, found = index.search(x[[0, 2]], 1)
    assert found[1, 0] == 5 and found[0, 0] != 5


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_save_load_roundtrip(tmp_path, gallery, kind):
    ids, x = gallery
    index = build(kind, ids, x)
    index.remove(ids[:100])  # tombstones must survive the trip
    path = tmp_path / "sub" / f"{kind.value}.faissidx"
    index.save(path, change_number=12345)
    loaded, change_number = FaceIndex.load(path, expected_dim=DIM)
    assert change_number == 12345
    assert loaded.spec == index.spec and len(loaded) == len(index) == N - 100
    q = x[:400]
    s1, i1 = index.search(q, 10)
    s2, i2 = loaded.search(q, 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-6)
    assert FaceIndex.read_header(path)["change_number"] == 12345
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["change_number"] == 12345 and sidecar["spec"]["kind"] == kind.value
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    # Saving again replaces the file; the loaded copy keeps working.
    loaded.add(ids[:1], x[:1])
    loaded.save(path, change_number=12346)
    again, cn = FaceIndex.load(path)
    assert cn == 12346 and len(again) == N - 99


@pytest.mark.parametrize("kind", [IndexKind.FLAT, IndexKind.HNSW, IndexKind.IVF_SQ8])
def test_shared_index_maps_the_file_and_layers_the_changes(tmp_path, gallery, kind):
    """Two processes' views of one saved file (here two objects): each maps it read-only and
    keeps its own changes on top; folding them back gives what an in-memory index holds."""
    ids, x = gallery
    index = build(kind, ids, x)
    path = tmp_path / "shared.faissidx"
    index.save(path, change_number=7)
    one, cn = SharedIndex.open(path, expected_dim=DIM)
    two, _ = SharedIndex.open(path)
    assert cn == 7 and len(one) == N and not one.stale()
    q = x[:200]
    np.testing.assert_array_equal(one.search(q, 10)[1], index.search(q, 10)[1])
    with pytest.raises(RuntimeError, match="read-only"):
        one.base.add(ids[:1], x[:1])

    rng = np.random.default_rng(5)
    new_ids = np.arange(10**9 + 1, 10**9 + 21, dtype=np.int64)
    new_x = unit(rng, 20)
    for view in (one, index):  # the same changes on the mapped view and in memory
        view.remove(ids[:50])
        view.add(ids[50:60], near(rng, x[50:60], 0.0))  # re-enrolments replace in place
        view.add(new_ids, new_x)
    assert len(one) == len(index) == N - 50 + 20
    assert len(two) == N  # the other process does not see this one's changes
    _, i1 = one.search(np.concatenate([q, new_x]), 10)
    _, i2 = index.search(np.concatenate([q, new_x]), 10)
    assert not np.isin(ids[:50], i1).any()
    assert (i1[200:, 0] == new_ids).all()
    # Every live query finds itself first (the removed ones' nearest impostors are near-tied,
    # and the delta scores exactly where the quantised base estimates).
    np.testing.assert_array_equal(i1[50:, 0], i2[50:, 0])

    full = one.materialise()
    assert full.dead_count == 0 and np.array_equal(np.sort(full.ids()), np.sort(index.ids()))
    full.save(path, change_number=8)
    assert one.stale() and two.stale()  # both map the new file at their next sync
    again, cn = SharedIndex.open(path)
    assert cn == 8 and len(again) == len(index)


def test_load_rejects_bad_files(tmp_path, gallery):
    ids, x = gallery
    index = build(IndexKind.FLAT, ids[:100], x[:100])
    path = tmp_path / "i.faissidx"
    index.save(path, 1)
    with pytest.raises(ValueError, match="192"):
        FaceIndex.load(path, expected_dim=128)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="corrupt"):
        FaceIndex.load(path)
    path.write_bytes(b"not an index")
    with pytest.raises(IndexFileError):
        FaceIndex.load(path)
    with pytest.raises(IndexFileError):
        FaceIndex.load(tmp_path / "missing")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_self_join_finds_planted_pairs_once(kind):
    rng = np.random.default_rng(4)
    base = unit(rng, 2000)
    planted = [(i, i + 1000) for i in range(0, 1000, 25)]  # 40 near-duplicate pairs
    for a, b in planted:
        base[b] = near(rng, base[a : a + 1], 0.2)[0]
    base[1999] = near(rng, base[0:1], 0.2)[0]  # a triple: 0, 1000, 1999
    ids = np.arange(2000, dtype=np.int64)[::-1] * 11  # id order differs from insert order
    index = build(kind, ids, base)
    pairs = list(index.self_join(k=5, threshold=0.6, batch_size=97))  # 6-bit PQ: rough scores
    keys = [(a, b) for a, b, _ in pairs]
    assert len(keys) == len(set(keys)), "a pair reported twice"
    assert all(a < b for a, b in keys)
    expected = {tuple(sorted((int(ids[a]), int(ids[b])))) for a, b in planted}
    expected |= {tuple(sorted((int(ids[a]), int(ids[b])))) for a, b in [(0, 1999), (1000, 1999)]}
    found = set(keys)
    assert len(expected - found) <= (0 if kind is IndexKind.FLAT else 1)
    assert all(s >= 0.6 for *_, s in pairs)
    if kind is IndexKind.FLAT:  # exact: nothing else is that similar in random data
        assert found == expected
        brute = base @ base.T
        for a, b, s in pairs:
            ra, rb = np.flatnonzero(ids == a)[0], np.flatnonzero(ids == b)[0]
            assert s == pytest.approx(brute[ra, rb], abs=1e-5)
    # The batched form gives the same pairs.
    batches = list(index.iter_self_join(k=5, threshold=0.6, batch_size=1000))
    batched = {(int(a), int(b)) for ida, idb, _ in batches for a, b in zip(ida, idb, strict=True)}
    assert batched == found


def test_self_join_agrees_with_brute_force_across_batches():
    """Dense pairs (low threshold) found from both sides and across batch boundaries."""
    rng = np.random.default_rng(5)
    x = unit(rng, 600, 16)  # low dimension: many neighbours above the threshold
    index = build(IndexKind.FLAT, np.arange(600), x)
    pairs = list(index.self_join(k=8, threshold=0.5, batch_size=37))
    got = {(a, b) for a, b, _ in pairs}
    assert len(got) == len(pairs)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :8]
    want = {
        (min(i, int(j)), max(i, int(j))) for i in range(600) for j in top[i] if sims[i, j] >= 0.5
    }
    assert got == want


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_empty_index_returns_minus_ones(gallery, kind):
    ids, x = gallery
    empty = FaceIndex(spec_for(kind, n=1000))  # IVF kinds: not even trained
    scores, found = empty.search(x[:3], 4)
    assert (found == -1).all() and np.isneginf(scores).all() and found.shape == (3, 4)
    assert len(empty) == 0 and list(empty.self_join()) == []
    assert empty.remove([1, 2]) == 0
    index = build(kind, ids[:1000], x[:1000])
    index.remove(ids[:1000])
    scores, found = index.search(x[:3], 4)
    assert (found == -1).all() and np.isneginf(scores).all()
    assert list(index.self_join(threshold=-1.0)) == []


def test_fewer_templates_than_k_pads_with_minus_one(gallery):
    _, x = gallery
    index = FaceIndex(IndexSpec.for_size(IndexKind.HNSW, DIM, 3))
    index.add([10, 20, 30], x[:3])
    index.remove([20])
    scores, found = index.search(x[:1], 5)
    assert found[0, 0] == 10 and set(found[0, :2]) == {10, 30}
    assert (found[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()


def test_wrong_dimension_and_bad_input_raise_value_error(gallery):
    ids, x = gallery
    index = build(IndexKind.FLAT, ids[:50], x[:50])
    with pytest.raises(ValueError, match=r"\(n, 192\)"):
        index.search(np.ones((2, 128), np.float32) / np.sqrt(128), 3)
    with pytest.raises(ValueError, match=r"\(n, 192\)"):
        index.add([1], np.ones((1, 128), np.float32) / np.sqrt(128))
    with pytest.raises(ValueError, match="L2-normalised"):
        index.add([1], 2 * x[:1])
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, np.float32), 3)
    with pytest.raises(ValueError, match="ids"):
        index.add([1, 2], x[:1])
    with pytest.raises(ValueError, match=">= 0"):
        index.add([-1], x[:1])
    with pytest.raises(ValueError, match="k must be"):
        index.search(x[:1], 0)
    with pytest.raises(ValueError, match="pq_m"):
        IndexSpec(kind=IndexKind.IVF_PQ, dim=128, pq_m=48)


def test_ivf_must_be_trained_first(gallery):
    ids, x = gallery
    index = FaceIndex(spec_for(IndexKind.IVF_SQ8))
    with pytest.raises(IndexNotTrained):
        index.add(ids[:10], x[:10])
    with pytest.raises(ValueError, match="training"):
        index.train_if_needed(x[:10])
    assert index.train_if_needed(x) is True
    assert index.train_if_needed(x) is False
    index.add(ids[:10], x[:10])
    assert len(index) == 10


def test_automatic_compaction_keeps_results(gallery):
    ids, x = gallery
    index = build(IndexKind.IVF_SQ8, ids, x)  # compacts past 20 % dead slots
    for chunk in np.array_split(np.arange(0, 900), 9):
        index.remove(ids[chunk])
    assert index.dead_count < 0.2 * (len(index) + index.dead_count)
    assert len(index) == N - 900
    _, found = index.search(x[900:1200], 1)
    assert (found[:, 0] == ids[900:1200]).mean() >= 0.97
    _, found = index.search(x[:900], 10)
    assert not np.isin(found, ids[:900]).any()


def test_second_model_dimension_and_build_progress():
    rng = np.random.default_rng(6)
    x = unit(rng, 2000, 128)
    calls: list[tuple[str, int, int]] = []
    assert IndexSpec.for_size(IndexKind.IVF_PQ, 128, 2000).pq_m == 64
    spec = replace(spec_for(IndexKind.IVF_PQ, 128, 2000), pq_nbits=4)
    index = FaceIndex.build(
        np.arange(2000), x, spec, progress=lambda *a: calls.append(a), chunk_size=512
    )
    assert calls[0] == ("train", 0, 1) and calls[-1] == ("add", 2000, 2000)
    assert next(c for c in calls if c[0] == "add") == ("add", 512, 2000)
    _, found = index.search(near(rng, x[:100], 0.2), 1)
    assert (found[:, 0] == np.arange(100)).mean() >= 0.95


def test_defaults_and_threads():
    assert default_kind_for(1_000) is IndexKind.FLAT
    assert default_kind_for(1_000_000) is not IndexKind.FLAT
    spec = IndexSpec.for_size(IndexKind.IVF_SQ8, DIM, 1_000_000)
    assert spec.nlist == 4096 and 1 <= spec.nprobe <= spec.nlist
    assert IndexSpec.from_dict(spec.to_dict()) == spec
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
    finally:
        set_num_threads(before)
    with pytest.raises(ValueError):
        set_num_threads(0)
