"""Labelled photos through the shipped acquisition and embedders, and their pair scores.

A *source* is either a folder of identity folders (``<set>/identities/<person>/`` or
``<set>/<person>/``), which gives every same-person pair as genuine and every cross-person pair
as impostor, or a CSV file with the columns ``file_x,file_y,same`` (paths relative to the CSV's
folder, ``same`` 1/0 or Yes/No), which gives its listed pairs. The data root's sets are the
folders under it (``discover_sets``).

Every image goes once through decode, detection, subject choice and alignment, is embedded by
every requested embedder and assessed under both roles' quality bounds; the work is spread over
worker processes (each loads the models once) and cached on disk per model version, settings
and file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from biometric.align import OUTSIDE_FILL
from biometric.conditions import (
    GREY_MAX_CHROMA,
    TIGHT_MIN_OUTSIDE,
    Condition,
    image_condition,
    pair_conditions,
)
from biometric.decode import read_image
from biometric.errors import ImageDecodeError
from biometric.manifest import fusion_name
from biometric.pipeline import CHIP, LIVE, Pipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".webp", ".jp2", ".j2k", ".bmp", ".gif"}
ROLES = (LIVE, CHIP)
# Person-disjoint folds for out-of-sample error rates (biometric.calibrate).
FOLDS = 5
_CHUNK = 8  # images per task sent to a worker: small enough for a smooth progress bar


@dataclass(frozen=True)
class IdentitySet:
    """Images with an identity label each, or (CSV sources) with listed pairs."""

    name: str
    images: list[Path]
    labels: list[str]
    pairs: np.ndarray | None = None  # (P, 3) int: index x, index y, same (1) or not (0)


def _identity_root(set_dir: Path) -> Path:
    return set_dir / "identities" if (set_dir / "identities").is_dir() else set_dir


def folder_set(set_dir: Path, cap: int | None = None, name: str | None = None) -> IdentitySet:
    """A folder of identity folders; at most ``cap`` photos (sorted by name) per person."""
    images, labels = [], []
    set_name = name or set_dir.name
    for ident in sorted(p for p in _identity_root(set_dir).iterdir() if p.is_dir()):
        photos = sorted(p for p in ident.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for img in photos[:cap] if cap else photos:
            images.append(img)
            labels.append(f"{set_name}/{ident.name}")
    return IdentitySet(set_name, images, labels)


_SAME = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0}


def csv_set(path: Path, name: str | None = None) -> IdentitySet:
    """Listed pairs: a CSV with the header ``file_x,file_y,same``."""
    index: dict[Path, int] = {}
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"file_x", "file_y", "same"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {sorted(missing)}; need file_x,file_y,same"
            )
        for line, row in enumerate(reader, start=2):
            same = _SAME.get(str(row["same"]).strip().lower())
            if same is None:
                raise ValueError(
                    f"{path}:{line}: 'same' must be 1/0 or Yes/No, got {row['same']!r}"
                )
            ends = []
            for key in ("file_x", "file_y"):
                p = (path.parent / row[key].strip()).resolve()
                if not p.is_file():
                    raise ValueError(f"{path}:{line}: {row[key]!r} is not a file")
                ends.append(index.setdefault(p, len(index)))
            rows.append((*ends, same))
    if not rows:
        raise ValueError(f"{path}: no pairs")
    images = list(index)
    return IdentitySet(
        name or path.stem,
        images,
        [str(p) for p in images],  # one label per file: identities are unknown
        np.asarray(rows, dtype=np.int64),
    )


def lfw_pairs_set(set_dir: Path, pairs_file: str = "pairsDevTest.txt") -> IdentitySet | None:
    """LFW's official View-1 pairs (``name i j`` / ``name1 i name2 j``), if the set has them."""
    path = set_dir / pairs_file
    if not path.is_file():
        return None
    lines = path.read_text().split("\n")
    index: dict[Path, int] = {}
    rows = []

    def photo(person: str, number: str) -> int:
        p = set_dir / person / f"{person}_{int(number):04d}.jpg"
        return index.setdefault(p, len(index))

    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 3:
            rows.append((photo(parts[0], parts[1]), photo(parts[0], parts[2]), 1))
        elif len(parts) == 4:
            rows.append((photo(parts[0], parts[1]), photo(parts[2], parts[3]), 0))
    images = list(index)
    return IdentitySet(
        f"{set_dir.name}_view1", images, [str(p) for p in images], np.asarray(rows, np.int64)
    )


def load_source(path: Path, cap: int | None = None) -> IdentitySet:
    """A folder of identity folders or a pairs CSV, with a clear error for anything else."""
    if path.is_dir():
        ident = folder_set(path, cap)
        if len(set(ident.labels)) < 2:
            raise ValueError(f"{path}: needs at least two identity folders with photos")
        return ident
    if path.is_file() and path.suffix.lower() == ".csv":
        return csv_set(path)
    raise ValueError(f"{path}: not a folder of identity folders nor a .csv of pairs")


PEOPLE_SUFFIX = "_people.csv"


def people_subsets(ident: IdentitySet, set_dir: Path) -> list[IdentitySet]:
    """A set's listed groups of people as sets of their own: ``<set>/<group>_people.csv``
    (column ``person``: identity folder names) gives ``<set>_<group>``, e.g. lfw_dev's
    ``asian_people.csv`` gives ``lfw_dev_asian``, so a population gets its own row."""
    out = []
    for listing in sorted(set_dir.glob(f"*{PEOPLE_SUFFIX}")):
        with listing.open(newline="", encoding="utf-8-sig") as f:
            people = {f"{ident.name}/{row['person'].strip()}" for row in csv.DictReader(f)}
        keep = [k for k, label in enumerate(ident.labels) if label in people]
        group = listing.name[: -len(PEOPLE_SUFFIX)]
        out.append(
            IdentitySet(
                f"{ident.name}_{group}",
                [ident.images[k] for k in keep],
                [ident.labels[k] for k in keep],
            )
        )
    return [s for s in out if len(set(s.labels)) >= 2]


def discover_sets(data_dir: Path, cap: int | None = None) -> list[IdentitySet]:
    """Every identity set under ``data_dir``, each followed by its listed groups of people
    (:func:`people_subsets`)."""
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"data folder {data_dir} does not exist; set BIOMETRIC_DATA_DIR to the shared photos"
        )
    sets = []
    for set_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        ident = folder_set(set_dir, cap)
        if len(set(ident.labels)) >= 2:
            sets.append(ident)
            sets += people_subsets(ident, set_dir)
    return sets


# -- acquisition and embedding --------------------------------------------------------------


@dataclass
class EmbeddedSet:
    name: str
    images: list[Path]
    labels: np.ndarray  # (N,) str
    embeddings: np.ndarray  # (N, D) float32; NaN rows where no usable face was found
    pairs: np.ndarray | None = None
    conditions: np.ndarray | None = None  # (N,) str: each image's capture condition

    @property
    def acquired(self) -> np.ndarray:
        return ~np.isnan(self.embeddings[:, 0])

    @property
    def failure_to_acquire(self) -> float:
        return float(1.0 - self.acquired.mean()) if len(self.images) else 0.0


@dataclass
class AcquiredSet:
    """One set through acquisition, every requested embedder and both roles' quality bounds."""

    ident: IdentitySet
    embeddings: dict[str, np.ndarray]  # embedder name -> (N, D), NaN rows where not acquired
    # Per role, per image: the retake codes a verification would give (empty: usable).
    reasons: dict[str, list[list[str]]] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)  # per image (biometric.conditions)

    @property
    def acquired(self) -> np.ndarray:
        first = next(iter(self.embeddings.values()))
        return ~np.isnan(first[:, 0])

    @property
    def failure_to_acquire(self) -> float:
        return float(1.0 - self.acquired.mean()) if len(self.ident.images) else 0.0

    def retake_rate(self, role: str) -> float:
        """Share of acquired images that a quality bound (or a second face) sends to retake."""
        acquired = self.acquired
        bad = [bool(r) for r, ok in zip(self.reasons[role], acquired, strict=True) if ok]
        return float(np.mean(bad)) if bad else 0.0

    def embedded(self, name: str) -> EmbeddedSet:
        i = self.ident
        conditions = np.asarray(self.conditions) if self.conditions else None
        return EmbeddedSet(
            i.name, i.images, np.asarray(i.labels), self.embeddings[name], i.pairs, conditions
        )


_WORKER: dict[str, Pipeline] = {}
# Bumped when what a cached file holds changes (3: per-image capture conditions with tight
# crops, biometric.conditions).
CACHE_FORMAT = 3

Acquired = tuple[list[np.ndarray | None], dict[str, list[str]], str]


def _worker_init(models_dir: str | None, embedders: Sequence[str]) -> None:
    # The embedders as one pipeline option: the pipeline aligns and embeds with each in turn.
    _WORKER["pipeline"] = Pipeline(
        Path(models_dir) if models_dir else None, embedder=fusion_name(list(embedders))
    )


def _acquire_one(path: Path) -> Acquired:
    pipeline = _WORKER["pipeline"]
    n = len(pipeline.embedders)
    try:
        rgb = read_image(path).rgb
    except ImageDecodeError:
        return [None] * n, {role: ["decode_error"] for role in ROLES}, Condition.COLOUR.value
    analysis = pipeline.analyse(rgb, LIVE)
    condition = analysis.condition or image_condition(rgb).value
    if analysis.subject is None or analysis.quality is None:
        return [None] * n, {role: ["no_face"] for role in ROLES}, condition
    chip = pipeline.assess_quality(rgb, analysis.subject, CHIP)
    reasons = {LIVE: [r.code for r in analysis.reasons], CHIP: list(chip.violations)}
    pipeline.embed([analysis])
    return list(analysis.embeddings), reasons, condition


def _acquire_chunk(paths: list[str]) -> list[Acquired]:
    return [_acquire_one(Path(p)) for p in paths]


def cache_key(pipeline: Pipeline, images: Sequence[Path], *extra: object) -> str:
    """Changes whenever a result could change: detector and embedder versions, acquisition,
    quality and capture-condition settings, the files (path, size, mtime), plus the caller's
    ``extra``."""
    s = pipeline.settings
    detection = (s.detector, s.acquisition, s.front_end, s.fast, s.fast_pad_ratio)
    conditions = (GREY_MAX_CHROMA, TIGHT_MIN_OUTSIDE)
    settings = repr((*detection, s.subject, s.quality, OUTSIDE_FILL, *conditions))
    stat = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in images]
    blob = json.dumps([pipeline.model_versions, settings, stat, [repr(e) for e in extra]])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def embedding_cache_key(pipeline: Pipeline, images: list[Path], *extra: object) -> str:
    """Cache key for the embeddings of ``pipeline``'s active embedder(s)."""
    return cache_key(pipeline, images, [e.spec.name for e in pipeline.embedders], *extra)


def acquire_sets(
    sets: Sequence[IdentitySet],
    embedders: Sequence[str],
    pipeline: Pipeline | None = None,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[AcquiredSet]:
    """Acquire and embed every image of ``sets`` with each of ``embedders`` (the first one's
    alignment crop is what quality is measured on), on ``workers`` processes (default: every
    core). ``pipeline`` supplies the settings and models folder."""
    pipeline = pipeline or Pipeline()
    workers = max(1, workers or os.cpu_count() or 1)
    out: list[AcquiredSet | None] = [None] * len(sets)
    todo: list[tuple[int, Path | None]] = []
    for k, ident in enumerate(sets):
        cache = None
        if cache_dir is not None:
            key = cache_key(pipeline, ident.images, list(embedders), CACHE_FORMAT)
            cache = cache_dir / f"{ident.name}-{key}.npz"
            if cache.is_file():
                out[k] = _load(ident, cache, embedders)
                if progress:
                    progress(len(ident.images))
                continue
        todo.append((k, cache))
    if todo:
        models_dir = str(pipeline.models_dir)
        ctx = get_context("spawn")  # onnxruntime sessions must not be forked
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(models_dir, embedders)
        ) as pool:
            for k, cache in todo:
                out[k] = _acquire_set(pool, sets[k], pipeline, embedders, progress)
                if cache is not None:
                    _save(out[k], cache)  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def _acquire_set(pool, ident: IdentitySet, pipeline: Pipeline, embedders, progress):
    paths = [str(p) for p in ident.images]
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    dims = [pipeline.manifest.embedder_spec(n).embedding_size for n in embedders]
    emb = {
        n: np.full((len(paths), d), np.nan, np.float32)
        for n, d in zip(embedders, dims, strict=True)
    }
    reasons: dict[str, list[list[str]]] = {role: [] for role in ROLES}
    conditions: list[str] = []
    i = 0
    for results in pool.map(_acquire_chunk, chunks):
        for vectors, why, condition in results:
            for name, v in zip(embedders, vectors, strict=True):
                if v is not None:
                    emb[name][i] = v
            for role in ROLES:
                reasons[role].append(why[role])
            conditions.append(condition)
            i += 1
        if progress:
            progress(len(results))
    return AcquiredSet(ident, emb, reasons, conditions)


def _save(acq: AcquiredSet, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        reasons=json.dumps(acq.reasons),
        conditions=np.asarray(acq.conditions),
        **{f"emb_{k}": v for k, v in acq.embeddings.items()},
    )
    tmp.replace(path)


def _load(ident: IdentitySet, path: Path, embedders: Sequence[str]) -> AcquiredSet:
    with np.load(path) as z:
        return AcquiredSet(
            ident,
            {n: z[f"emb_{n}"] for n in embedders},
            json.loads(str(z["reasons"])),
            [str(c) for c in z["conditions"]],
        )


# -- pair scores ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PairScores:
    genuine: np.ndarray
    impostor: np.ndarray
    # Person-disjoint folds of each pair's two images ((n, 2) int8), -1 where unknown (CSV).
    genuine_folds: np.ndarray | None = None
    impostor_folds: np.ndarray | None = None
    # Each pair's capture condition (str arrays; biometric.conditions.pair_condition).
    genuine_conditions: np.ndarray | None = None
    impostor_conditions: np.ndarray | None = None

    def where(self, condition: str) -> PairScores:
        """Only the pairs of one capture condition."""
        return self.subset(
            self.genuine_conditions == condition, self.impostor_conditions == condition
        )

    def subset(self, genuine: np.ndarray, impostor: np.ndarray) -> PairScores:
        """The genuine and impostor pairs the two boolean masks select, with their folds and
        conditions."""

        def pick(a: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
            return None if a is None else a[mask]

        return PairScores(
            self.genuine[genuine],
            self.impostor[impostor],
            pick(self.genuine_folds, genuine),
            pick(self.impostor_folds, impostor),
            pick(self.genuine_conditions, genuine),
            pick(self.impostor_conditions, impostor),
        )


def identity_folds(labels: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """A stable fold per identity (a hash of the label), so every person's photos share one."""
    return np.asarray(
        [int(hashlib.sha256(str(x).encode()).hexdigest()[:8], 16) % folds for x in labels],
        dtype=np.int8,
    )


def pair_scores(sets: Sequence[EmbeddedSet], folds: int = FOLDS) -> PairScores:
    """Genuine and impostor scores among acquired images, within each set: all pairs of a
    folder set, the listed pairs of a CSV set."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("g", "i", "gf", "if", "gc", "ic")}
    for s in sets:
        keep = s.acquired
        conditions = (
            s.conditions
            if s.conditions is not None
            else np.full(len(s.images), Condition.COLOUR.value)
        )
        if s.pairs is not None:
            ok = keep[s.pairs[:, 0]] & keep[s.pairs[:, 1]]
            p = s.pairs[ok]
            sims = np.einsum("ij,ij->i", s.embeddings[p[:, 0]], s.embeddings[p[:, 1]])
            unknown = np.full((len(p), 2), -1, np.int8)
            cond = pair_conditions(conditions, p[:, 0], p[:, 1])
            same = p[:, 2] == 1
            for key, mask in (("g", same), ("i", ~same)):
                parts[key].append(sims[mask])
                parts[f"{key}f"].append(unknown[mask])
                parts[f"{key}c"].append(cond[mask])
            continue
        emb, labels, conds = s.embeddings[keep], s.labels[keep], conditions[keep]
        person_fold = identity_folds(labels, folds)
        sims = emb @ emb.T
        same = labels[:, None] == labels[None, :]
        upper = np.triu(np.ones_like(same, dtype=bool), k=1)
        for key, mask in (("g", same & upper), ("i", ~same & upper)):
            rows, cols = np.nonzero(mask)
            parts[key].append(sims[rows, cols])
            parts[f"{key}f"].append(np.stack([person_fold[rows], person_fold[cols]], axis=1))
            parts[f"{key}c"].append(pair_conditions(conds, rows, cols))

    def cat(key: str, width: int | None) -> np.ndarray:
        arrays = parts[key]
        if arrays:
            return np.concatenate(arrays)
        if width is None:
            return np.empty(0, dtype="<U8")
        return np.empty((0, width), np.int8) if width else np.empty(0, np.float32)

    return PairScores(
        cat("g", 0), cat("i", 0), cat("gf", 2), cat("if", 2), cat("gc", None), cat("ic", None)
    )
