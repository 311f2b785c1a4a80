"""Site calibration: an agency fits its own threshold on its own labelled photos.

The photos go through the shipped acquisition and embedder (:func:`biometric.evaluation.
acquire_sets`); the thresholds are fitted with the same rule as the shipped ones
(:func:`biometric.calibrate.fit_thresholds`: sources pooled with equal weight, raised until no
source exceeds the claim, and per capture condition where that condition's pairs support the
FMR) and checked out of sample on person-disjoint folds. A threshold is only fitted at an FMR f
where the photos give at least ``SUPPORT_FACTOR / f`` impostor pairs; the stated FMR must be
supported, a lower one (1e-4) is added where it is.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from biometric.calibrate import fit_thresholds, option_scores
from biometric.evaluation import AcquiredSet, IdentitySet, PairScores
from biometric.manifest import FusionSpec
from biometric.operating_point import (
    InsufficientData,
    SiteOperatingPoint,
    SourceCount,
    fusion_normalisation,
    pairs_needed,
)

# Below this many people the fit is unstable even with enough pairs: the impostor pairs of a few
# faces are correlated (a look-alike pair counts many times), and 5 person-disjoint folds hold
# few pairs of people. Measured 2026-12-02, fit on half of a set's people, checked on the other
# half, with mobilefacenet+dlib_resnet / sface+mobilefacenet: lfw_dev 90 people 1.14x / 1.72x
# the claim (1e-3); asian_celeb + kpop_idols 21 people 2.82x / 2.11x (1e-2; the folds within the
# fit said 0.75x); yaleb_moderate 10 people 5.5x / 1.08x (1e-3; folds 0x).
MIN_PEOPLE = 50

# Also fitted, where the photos support it, below the stated FMR (the 1:N screening and
# high-assurance counters run at 1e-4).
EXTRA_FMRS = (1e-4,)


def fingerprint(sources: Sequence[IdentitySet]) -> str:
    """sha256 over every photo's content hash and label (order-independent, and independent of
    where the photos lie), so a file names the exact photos it was fitted on."""
    entries = []
    for ident in sources:
        for path, label in zip(ident.images, ident.labels, strict=True):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries.append(f"{label if ident.pairs is None else ''}\t{digest}")
    if any(ident.pairs is not None for ident in sources):  # listed pairs are part of the data
        entries += [f"pairs\t{ident.name}\t{ident.pairs.tolist()}" for ident in sources
                    if ident.pairs is not None]
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def photos_needed(acquired: Sequence[AcquiredSet], scores: Mapping[str, PairScores],
                  fmr: float) -> str:
    """How much more data a fit at ``fmr`` needs, in words a site can act on."""
    need = pairs_needed(fmr)
    have = sum(len(s.impostor) for s in scores.values())
    folders = [a for a in acquired if a.ident.pairs is None]
    if not folders:
        return (f"FMR {fmr:g} needs {need:,} impostor pairs and the pair lists give {have:,}: "
                f"list about {need - have:,} more pairs of different people")
    # Impostor pairs come from within one source: grow the largest. With n acquired photos and
    # S the sum of squared photos per person, a folder gives (n^2 - S) / 2 impostor pairs;
    # adding x photos of new people with c photos each gives (n + x)^2 - S - c x >= 2 * need.
    biggest = max(folders, key=lambda a: len(scores[a.ident.name].impostor))
    labels = np.asarray(biggest.ident.labels)[biggest.acquired]
    _, per_person = np.unique(labels, return_counts=True)
    n, squares = float(len(labels)), float((per_person.astype(float) ** 2).sum())
    c = max(1.0, float(per_person.mean())) if len(per_person) else 1.0
    b = 2 * n - c
    x = (-b + math.sqrt(max(0.0, b * b - 4 * (n * n - squares - 2 * need)))) / 2
    # Photos that give no usable face add nothing (none of them: assume half will).
    acquire_rate = max(float(biggest.acquired.mean()) if len(biggest.acquired) else 0.0, 0.5)
    more = max(1, math.ceil(x / acquire_rate))
    return (f"FMR {fmr:g} needs at least {need:,} impostor pairs (10/FMR) and these photos give "
            f"{have:,}: add about {more:,} photos of new people ({c:.0f} per person, "
            f"{math.ceil(more / c):,} people) to {biggest.ident.name}, or calibrate at a "
            "higher FMR")


def source_counts(acquired: Sequence[AcquiredSet], scores: Mapping[str, PairScores]
                  ) -> list[SourceCount]:
    return [
        SourceCount(
            name=a.ident.name,
            images=len(a.ident.images),
            people=len(set(a.ident.labels)) if a.ident.pairs is None else None,
            acquired=int(a.acquired.sum()),
            genuine_pairs=len(scores[a.ident.name].genuine),
            impostor_pairs=len(scores[a.ident.name].impostor),
        )
        for a in acquired
    ]


def calibrate_site(
    acquired: Sequence[AcquiredSet],
    option: str,
    fusion: FusionSpec | None,
    fmr: float,
    models: dict[str, str],
    data_fingerprint: str,
) -> SiteOperatingPoint:
    """Fit the operating point at ``fmr`` (and :data:`EXTRA_FMRS` where supported) on
    ``acquired``. Raises :class:`InsufficientData` with what to add when ``fmr`` is not
    supported."""
    scores = option_scores(acquired, option, fusion)
    fitted = fit_thresholds(scores, [fmr, *(f for f in EXTRA_FMRS if f < fmr)])
    if not fitted or abs(fitted[0].fmr - fmr) > fmr * 1e-6:
        raise InsufficientData(photos_needed(acquired, scores, fmr))
    return SiteOperatingPoint(
        embedder=option,
        models=models,
        fusion_normalisation=fusion_normalisation(fusion),
        fmr=fmr,
        threshold=fitted[0].threshold,
        thresholds=fitted,
        sources=source_counts(acquired, scores),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        fingerprint=data_fingerprint,
    )


def few_people(point: SiteOperatingPoint) -> str | None:
    """A warning when the photos hold fewer than :data:`MIN_PEOPLE` people."""
    counted = [s.people for s in point.sources if s.people is not None]
    if not counted or sum(counted) >= MIN_PEOPLE:
        return None
    return (f"only {sum(counted)} people: with fewer than {MIN_PEOPLE} the threshold can miss "
            "the claim on other people by more than 2x even when the held-out check looks fine "
            "(few look-alike pairs decide it); add photos of more people")


def unsupported_extras(point: SiteOperatingPoint, acquired: Sequence[AcquiredSet],
                       option: str, fusion: FusionSpec | None) -> list[str]:
    """For every extra FMR the photos could not support, what they would need."""
    fitted = {t.fmr for t in point.thresholds}
    missing = [f for f in EXTRA_FMRS if f < point.fmr and f not in fitted]
    if not missing:
        return []
    scores = option_scores(acquired, option, fusion)
    return [photos_needed(acquired, scores, f) for f in missing]
