"""A live false-match-rate estimate from the gallery.

Two different enrolled claimants are an impostor pair of exactly the people and cameras in
service (but for the rare duplicates screening looks for, which inflate the estimate slightly).
So the gallery shows, without any labelled data, whether the claimed FMR holds for the
population being served:

* :class:`GalleryFmrMonitor`, a running estimate from the scores every enrolment's 1:N search
  already computes. Each enrolment is compared with every claimant enrolled before it, so the
  enrolments are a sample of all claimant pairs. Only counts are kept (no score, no face): how
  many comparisons were made and how many other claimants scored at or above the threshold.
  The search returns the top candidates only; when every one of them is above the threshold the
  count is a lower bound (``saturated`` says how often).
* :func:`propose_from_store` (``biometric calibrate --from-gallery``): scores pairs of different
  claimants from the stored templates (all pairs, or a uniform random sample of them), estimates
  the FMR at the gallery's threshold and proposes the threshold that gives the claimed FMR on
  them.

What it cannot see: these are enrolment-vs-enrolment scores (chip or enrolment photo against
another), not the live capture against the chip that the counter decides on; and the gallery
scores one embedder (the gallery's), not a fusion.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from biometric.errors import BiometricError
from biometric.rates import supported, threshold_at_fmr, wilson_interval

log = logging.getLogger("biometric.gallery")

# The estimate is reported as exceeding the claim when the lower end of its 95 % interval is
# above this multiple of the claim (the project's accuracy target: FMR within 2x the claim).
EXCESS_FACTOR = 2.0
# Above this many claimant pairs, --from-gallery scores a uniform random sample of this many
# (5M float32 scores: 20 MB; at FMR 1e-4 that is 500 expected false matches, a +-9 % interval).
MAX_PAIRS = 5_000_000
_BLOCK = 2048  # rows per matrix product when scoring every pair


class GalleryTooSmall(BiometricError):
    code = "gallery_too_small"


@dataclass(frozen=True)
class FmrEstimate:
    threshold: float
    claim: float
    comparisons: int
    false_matches: int
    searches: int = 0
    saturated: int = 0  # searches whose every returned candidate was above the threshold
    operating_point: str = ""

    @property
    def fmr(self) -> float | None:
        return self.false_matches / self.comparisons if self.comparisons else None

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.false_matches, self.comparisons)

    @property
    def exceeds(self) -> bool:
        """Above ``EXCESS_FACTOR`` times the claim with 95 % confidence, on at least 1/claim
        pairs (enough to show one false match at the claim: with fewer, one duplicate among a
        handful of first enrolments would raise the alarm)."""
        return (
            self.comparisons >= 1.0 / self.claim
            and self.ci[0] > EXCESS_FACTOR * self.claim
        )

    @property
    def message(self) -> str:
        lo, hi = self.ci
        return (
            f"the gallery's false-match rate at threshold {self.threshold:.4f} is "
            f"{(self.fmr or 0.0):.2e} (95 % CI {lo:.1e}-{hi:.1e}) over {self.comparisons:,} pairs "
            f"of different claimants, above {EXCESS_FACTOR:g}x the claimed {self.claim:g}: "
            "recalibrate on the site's photos (`biometric calibrate`)"
        )

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {
            "operating_point": self.operating_point,
            "threshold": self.threshold,
            "fmr_claimed": self.claim,
            "comparisons": self.comparisons,
            "false_matches": self.false_matches,
            "fmr": self.fmr,
            "ci": [lo, hi],
            "ratio": None if self.fmr is None else self.fmr / self.claim,
            "exceeds": self.exceeds,
            "searches": self.searches,
            "saturated": self.saturated,
            "message": self.message if self.exceeds else None,
        }


class GalleryFmrMonitor:
    """Running counts of enrolment searches; thread-safe. Warns in the log once each time the
    estimate starts to exceed the claim (and again after it has recovered)."""

    def __init__(self, threshold: float, claim: float, operating_point: str = "") -> None:
        self.threshold = threshold
        self.claim = claim
        self.operating_point = operating_point
        self._lock = threading.Lock()
        self._comparisons = self._false = self._searches = self._saturated = 0
        self._warned = False

    def observe_search(
        self, scores: Sequence[float], compared: int, returned_max: int
    ) -> None:
        """One 1:N search of a claimant against ``compared`` other claimants, whose top
        ``scores`` (other claimants only) came back; ``returned_max``: how many the search
        returns at most (when it returned that many, all above the threshold, the true count
        may be higher)."""
        if compared <= 0:
            return
        above = sum(1 for s in scores if s >= self.threshold)
        with self._lock:
            self._searches += 1
            self._comparisons += compared
            self._false += min(above, compared)
            if above and len(scores) >= returned_max and min(scores) >= self.threshold:
                self._saturated += 1
            now = self.snapshot_locked()
            warn = now.exceeds and not self._warned
            self._warned = now.exceeds
        if warn:
            log.warning("live FMR estimate: %s", now.message)

    def snapshot_locked(self) -> FmrEstimate:
        return FmrEstimate(
            self.threshold, self.claim, self._comparisons, self._false, self._searches,
            self._saturated, self.operating_point,
        )

    def snapshot(self) -> FmrEstimate:
        with self._lock:
            return self.snapshot_locked()


def impostor_scores(
    embeddings: np.ndarray,
    owners: np.ndarray,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Scores of pairs of templates of different owners: every pair when there are at most
    ``max_pairs``, else a uniform random sample of ``max_pairs`` pairs."""
    n = len(embeddings)
    if n * (n - 1) // 2 <= max_pairs:
        parts = []
        for start in range(0, n, _BLOCK):
            block = embeddings[start : start + _BLOCK] @ embeddings.T
            rows, cols = np.nonzero(
                (np.arange(start, start + len(block))[:, None] < np.arange(n)[None, :])
                & (owners[start : start + _BLOCK, None] != owners[None, :])
            )
            parts.append(block[rows, cols])
            if progress:
                progress(len(block))
        return np.concatenate(parts).astype(np.float32) if parts else np.empty(0, np.float32)
    rng = np.random.default_rng(seed)
    out = []
    drawn = 0
    while drawn < max_pairs:
        i = rng.integers(0, n, size=min(1_000_000, max_pairs - drawn))
        j = rng.integers(0, n, size=len(i))
        keep = owners[i] != owners[j]
        i, j = i[keep], j[keep]
        out.append(np.einsum("ij,ij->i", embeddings[i], embeddings[j]))
        drawn += len(i)
        if progress:
            progress(len(i))
    return np.concatenate(out)[:max_pairs].astype(np.float32)


def estimate_at(scores: np.ndarray, threshold: float, claim: float, operating_point: str = ""
                ) -> FmrEstimate:
    return FmrEstimate(threshold, claim, len(scores), int((scores >= threshold).sum()),
                       operating_point=operating_point)


def propose_from_store(
    engine: Engine,
    pipeline: Any,
    fmr: float,
    max_pairs: int = MAX_PAIRS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The gallery's impostor scores (stored templates of the gallery's embedder, pairs of
    different claimants): the FMR at the gallery's threshold for ``fmr`` with its interval, and
    the threshold that gives ``fmr`` on them where they support it (10/FMR pairs)."""
    from biometric.gallery.models import Template
    from biometric.operating_point import pairs_needed, shipped_id
    from biometric.store.db import session_factory

    spec = pipeline.embedder.spec
    threshold = pipeline.manifest.get(spec.name).threshold_for(fmr).threshold
    with session_factory(engine)() as s:
        rows = s.execute(
            select(Template.claimant_id, Template.embedding).where(Template.model == spec.name)
        ).all()
    owners = np.asarray([r[0] for r in rows], np.int64)
    if len(set(owners.tolist())) < 2:
        raise GalleryTooSmall(
            f"the gallery holds {len(set(owners.tolist()))} claimant(s) with {spec.name} "
            "templates; it needs at least two (and 10/FMR pairs to propose a threshold)"
        )
    embeddings = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(
        -1, spec.embedding_size
    )
    del rows
    scores = impostor_scores(embeddings, owners, max_pairs, progress=progress)
    choice = pipeline.manifest.default_choice or {}
    est = estimate_at(scores, threshold, fmr, shipped_id(choice.get("date")))
    proposed, why_not = None, None
    if supported(len(scores), fmr):
        proposed = round(threshold_at_fmr(scores, fmr), 6)
    else:
        need = pairs_needed(fmr)
        why_not = (f"{len(scores):,} impostor pairs cannot support FMR {fmr:g} (needs "
                   f"{need:,}: about {int(np.ceil(np.sqrt(2 * need)))} claimants)")
    return {
        "model": spec.name,
        "claimants": len(set(owners.tolist())),
        "templates": len(owners),
        "sampled": len(scores) < len(owners) * (len(owners) - 1) // 2,
        "estimate": est.to_dict(),
        "proposed_threshold": proposed,
        "why_not": why_not,
        "note": "enrolment-vs-enrolment scores of one embedder, not live-vs-chip; duplicates "
        "among the claimants inflate the estimate slightly",
    }
