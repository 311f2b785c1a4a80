"""Bulk duplicate screening: enrol a folder (or CSV) of claimant photos, self-join the index,
group linked claimants into clusters, open review cases, write a report.

Resumable: each batch of enrolments is one committed transaction, and a restarted run skips
citizen ids already enrolled for the current model, so an interrupted run (even kill -9) picks
up where its last committed batch ended.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from biometric.decode import read_image
from biometric.errors import BiometricError
from biometric.evaluation import IMAGE_SUFFIXES
from biometric.gallery.service import CITIZEN_ID, Gallery, expected_false_candidates
from biometric.pipeline import CHIP, Pipeline


@dataclass(frozen=True)
class SourceItem:
    citizen_id: str
    path: Path


@dataclass
class ScreeningResult:
    enrolled_now: int
    skipped_already_enrolled: int
    failures: list[dict]
    pairs: list[dict]  # citizen_a, citizen_b, score
    clusters: list[list[str]]
    cases_opened: int
    threshold: float
    fmr: float
    gallery_size: int
    paths: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        n = self.gallery_size
        return {
            "gallery_size": n,
            "enrolled_now": self.enrolled_now,
            "skipped_already_enrolled": self.skipped_already_enrolled,
            "failures": len(self.failures),
            "pairs": len(self.pairs),
            "clusters": len(self.clusters),
            "cases_opened": self.cases_opened,
            "threshold": self.threshold,
            "fmr": self.fmr,
            "expected_false_pairs": self.fmr * n * (n - 1) / 2,
            "expected_false_candidates_by_gallery_size": expected_false_candidates(self.fmr),
        }


def list_source(source: Path) -> list[SourceItem]:
    """A folder of photos named ``<citizen id>.<ext>``, or a CSV with ``citizen_id,path`` rows
    (paths relative to the CSV's folder). Rows whose id is not 12 digits are refused."""
    if source.is_dir():
        items = [
            SourceItem(p.stem, p)
            for p in sorted(source.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
    elif source.suffix.lower() == ".csv":
        with source.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
        if rows and not CITIZEN_ID.fullmatch(rows[0][0].strip()):
            rows = rows[1:]  # a header line
        items = [SourceItem(r[0].strip(), (source.parent / r[1].strip()).resolve()) for r in rows]
    else:
        raise BiometricError(f"{source} is neither a folder of photos nor a .csv file")
    bad = [i.citizen_id for i in items if not CITIZEN_ID.fullmatch(i.citizen_id)]
    if bad:
        raise BiometricError(
            f"{len(bad)} entries are not named by a 12-digit citizen id, e.g. {bad[0]!r}"
        )
    seen: set[str] = set()
    dupes = [i.citizen_id for i in items if i.citizen_id in seen or seen.add(i.citizen_id)]
    if dupes:
        raise BiometricError(f"citizen id {dupes[0]} appears more than once in {source}")
    return items


def _chunks(items: list[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _clusters(pairs: list[tuple[str, str, float]]) -> list[list[str]]:
    """Connected components of the duplicate graph (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def screen(
    gallery: Gallery,
    pipeline: Pipeline,
    source: Path,
    *,
    k: int = 10,
    batch_size: int = 32,
    on_enrol_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScreeningResult:
    items = list_source(source)
    done = gallery.enrolled_citizen_ids()
    todo = [i for i in items if i.citizen_id not in done]
    if on_enrol_start:
        on_enrol_start(len(todo))
    failures: list[dict] = []
    enrolled = 0
    for batch in _chunks(todo, batch_size):
        analysed = []
        for item in batch:
            try:
                analysis = pipeline.analyse(read_image(item.path).rgb, CHIP)
            except BiometricError as exc:
                failures.append(
                    {
                        "citizen_id": item.citizen_id,
                        "path": str(item.path),
                        "reason": exc.code,
                        "detail": exc.message,
                    }
                )
                continue
            if analysis.subject is None:
                failures.append(
                    {
                        "citizen_id": item.citizen_id,
                        "path": str(item.path),
                        "reason": "no_face",
                        "detail": "no face found",
                    }
                )
                continue
            analysed.append((item.citizen_id, analysis))
        pipeline.embed([a for _, a in analysed])
        gallery.enrol_many(
            [
                (cid, a.embedding, a.quality.score if a.quality else None, "chip")
                for cid, a in analysed
            ]
        )
        enrolled += len(analysed)
        if progress:
            progress(len(batch))
    gallery.save_index()
    template_pairs = gallery.self_join(k, gallery.duplicate_threshold)
    return conclude(
        gallery,
        items,
        template_pairs,
        enrolled_now=enrolled,
        skipped=len(items) - len(todo),
        failures=failures,
    )


def conclude(
    gallery: Gallery,
    items: list[SourceItem],
    template_pairs: list[tuple[int, int, float]],
    *,
    enrolled_now: int,
    skipped: int,
    failures: list[dict],
) -> ScreeningResult:
    """From self-join template pairs to claimant pairs, clusters and review cases; shared by
    the single-process and the distributed (Ray) screening."""
    owners = gallery.claimant_ids_of_templates(
        sorted({t for a, b, _ in template_pairs for t in (a, b)})
    )
    best: dict[tuple[int, int], float] = {}
    citizen: dict[int, str] = {}
    for ta, tb, score in template_pairs:
        (ca, za), (cb, zb) = owners[ta], owners[tb]
        if ca == cb:
            continue
        citizen[ca], citizen[cb] = za, zb
        key = (min(ca, cb), max(ca, cb))
        best[key] = max(score, best.get(key, -1.0))
    claimant_pairs = sorted(((a, b, s) for (a, b), s in best.items()), key=lambda p: -p[2])
    cases = gallery.open_cases_for_pairs(claimant_pairs, "screening")
    named = [(citizen[a], citizen[b], s) for a, b, s in claimant_pairs]
    return ScreeningResult(
        enrolled_now=enrolled_now,
        skipped_already_enrolled=skipped,
        failures=failures,
        pairs=[{"citizen_a": a, "citizen_b": b, "score": round(s, 4)} for a, b, s in named],
        clusters=_clusters(named),
        cases_opened=cases,
        threshold=gallery.duplicate_threshold,
        fmr=gallery.duplicate_fmr,
        gallery_size=gallery.template_count(),
        paths={i.citizen_id: str(i.path) for i in items},
    )
