"""Thresholds at national scale: expected false candidates per 1:N search and per self-join at
1M, 10M and 100M claimants, from the impostor tail measured on real photos (lfw_dev), and the
operating point a reviewer capacity allows.

Every impostor pair of the set gives one comparison score. The false-match rate at a threshold is
measured while at least ``SUPPORT`` impostor pairs score at or above it; beyond (FMRs below about
``SUPPORT / pairs``) it comes from an exponential fit to the top of the tail (log FMR linear in
the score, the zero-shape generalised Pareto tail) and is reported as an *extrapolation*.
Thresholds come from the manifest at run time, so a recalibration shows up on the next run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from biometric.rates import threshold_at_fmr

GALLERY_SIZES = (1_000_000, 10_000_000, 100_000_000)
SUPPORT = 10  # impostor pairs at or above a threshold for its FMR to count as measured
TAIL_FRACTION = 1e-3  # the fit uses the top 0.1 % of impostor scores (and at least 200)
# Planning assumptions for the recommendation, stated in the report (not measurements):
REVIEWER_CASES_PER_DAY = 1_000  # e.g. 20 reviewers x 50 cases a day
ONLINE_SEARCHES_PER_DAY = 20_000  # new claimants screened 1:N against the gallery each day
ONLINE_SHARE = 0.5  # share of the reviewers' capacity given to online cases
SELF_JOIN_DAYS = 90  # the one-off national self-join is reviewed over a quarter
KEEP_GENUINE = 0.9  # the alternative operating point: keep 90 % of true duplicates
TOP_K = 10  # candidates a ranked 1:N list shows at most (the search's default k)
# One reviewer-day: the same planning figure as REVIEWER_CASES_PER_DAY (20 reviewers x 50).
CASES_PER_REVIEWER_DAY = 50
MAX_SCORE = 1.0  # cosine similarity of unit templates: a threshold above it accepts nothing


@dataclass(frozen=True)
class TailFit:
    """log10 FMR(t) = intercept + slope * t, fitted for t above ``fit_from``."""

    intercept: float
    slope: float
    fit_from: float
    points: int

    def fmr(self, threshold: float) -> float:
        return float(10 ** (self.intercept + self.slope * threshold))

    def threshold(self, fmr: float) -> float:
        return float((math.log10(fmr) - self.intercept) / self.slope)


def fit_tail(impostor: np.ndarray, fraction: float = TAIL_FRACTION) -> TailFit:
    ordered = np.sort(impostor)[::-1]
    n = len(ordered)
    m = max(200, int(fraction * n))
    top = ordered[:m].astype(np.float64)
    survival = np.arange(1, m + 1) / n  # FMR at threshold = the i-th highest score
    slope, intercept = np.polyfit(top, np.log10(survival), 1)
    return TailFit(float(intercept), float(slope), float(top[-1]), m)


def fmr_at(impostor: np.ndarray, threshold: float, fit: TailFit) -> tuple[float, bool]:
    """(FMR, measured?) at ``threshold``."""
    count = int((impostor >= threshold).sum())
    if count >= SUPPORT:
        return count / len(impostor), True
    return fit.fmr(threshold), False


def threshold_at(impostor: np.ndarray, fmr: float, fit: TailFit) -> tuple[float, bool]:
    """(threshold, measured?) for a target FMR."""
    if fmr * len(impostor) >= SUPPORT:
        return threshold_at_fmr(impostor, fmr), True
    return fit.threshold(fmr), False


def expected_false(fmr: float, sizes: tuple[int, ...] = GALLERY_SIZES) -> dict[str, dict]:
    return {
        str(n): {"per_search": fmr * n, "per_self_join": fmr * n * (n - 1) / 2} for n in sizes
    }


def analyse_embedder(
    name: str,
    genuine: np.ndarray,
    impostor: np.ndarray,
    manifest_points: list[tuple[float, float]],
    gallery: int = GALLERY_SIZES[-1],
) -> dict:
    """Expected false candidates at the manifest's operating points, and the recommendation."""
    fit = fit_tail(impostor)
    rows = []
    for calibrated_fmr, threshold in manifest_points:
        fmr, measured = fmr_at(impostor, threshold, fit)
        rows.append(
            {
                "calibrated_fmr": calibrated_fmr,
                "threshold": threshold,
                "fmr_on_lfw_dev": fmr,
                "fmr_source": "measured" if measured else "extrapolated",
                "genuine_accept_rate": float((genuine >= threshold).mean()),
                "expected_false": expected_false(fmr),
            }
        )
    online_budget = REVIEWER_CASES_PER_DAY * ONLINE_SHARE
    online_fmr = online_budget / (ONLINE_SEARCHES_PER_DAY * gallery)
    join_budget = REVIEWER_CASES_PER_DAY * (1 - ONLINE_SHARE) * SELF_JOIN_DAYS
    join_fmr = join_budget / (gallery * (gallery - 1) / 2)
    recommended = {}
    for use, fmr, budget in (
        ("online_search", online_fmr, online_budget),
        ("self_join", join_fmr, join_budget),
    ):
        t, measured = threshold_at(impostor, fmr, fit)
        reachable = t < MAX_SCORE
        recommended[use] = {
            "gallery": gallery,
            "target_fmr": fmr,
            "false_cases_budget": budget,
            "threshold": t if reachable else None,
            "threshold_source": "measured" if measured else "extrapolated",
            "reachable": reachable,
            "genuine_accept_rate": float((genuine >= t).mean()) if reachable else 0.0,
        }
    # What keeping 90 % of true duplicates would cost the reviewers instead.
    t90 = float(np.quantile(genuine, 1 - KEEP_GENUINE))
    fmr90, measured90 = fmr_at(impostor, t90, fit)
    per_search = fmr90 * gallery
    recommended["keep_90_percent_of_duplicates"] = {
        "gallery": gallery,
        "threshold": t90,
        "fmr": fmr90,
        "fmr_source": "measured" if measured90 else "extrapolated",
        "false_candidates_per_search": per_search,
        "online_cases_per_day": min(per_search, TOP_K) * ONLINE_SEARCHES_PER_DAY,
        "self_join_false_pairs": fmr90 * gallery * (gallery - 1) / 2,
        # Blocking (searching only claimants who share, say, birth date and sex) shrinks the N
        # each search is compared with: the largest block the online budget allows here.
        "largest_block_within_budget": online_budget / (ONLINE_SEARCHES_PER_DAY * fmr90),
    }
    review = [
        review_load(f"manifest FMR {fmr:g} (1:1)", t, impostor, genuine, fit, gallery)
        for fmr, t in manifest_points
    ]
    if not manifest_points:  # not calibrated yet: the 1:1 point it would ship, from this set
        t3 = threshold_at_fmr(impostor, 1e-3)
        review.append(review_load("lfw_dev FMR 0.001 (1:1, not shipped)", t3, impostor, genuine,
                                  fit, gallery))
    online = recommended["online_search"]
    if online["reachable"]:
        review.append(
            review_load("1:N (online budget)", online["threshold"], impostor, genuine, fit, gallery)
        )
    review.append(review_load(f"keep {KEEP_GENUINE:.0%} of duplicates", t90, impostor, genuine,
                              fit, gallery))
    return {
        "embedder": name,
        "review_load": review,
        "impostor_pairs": len(impostor),
        "genuine_pairs": len(genuine),
        "smallest_measured_fmr": SUPPORT / len(impostor),
        "max_impostor_score": float(impostor.max()),
        "tail_fit": {
            "log10_fmr_intercept": fit.intercept,
            "log10_fmr_slope": fit.slope,
            "fitted_above_score": fit.fit_from,
            "points": fit.points,
        },
        "operating_points": rows,
        "recommended": recommended,
    }


def shown_in_top_k(mean: float, k: int = TOP_K) -> float:
    """Expected false candidates a ranked list of at most k shows when a search finds
    Poisson(mean) of them above the threshold: E[min(X, k)]."""
    if mean <= 0:
        return 0.0
    p = math.exp(-mean)  # P(X = 0)
    below = 0.0  # sum of P(X = j) * j for j < k, and P(X >= k) = 1 - sum P(X = j < k)
    mass = 0.0
    for j in range(k):
        below += j * p
        mass += p
        p *= mean / (j + 1)
    return below + k * max(0.0, 1.0 - mass)


def review_load(
    label: str,
    threshold: float,
    impostor: np.ndarray,
    genuine: np.ndarray,
    fit: TailFit,
    gallery: int = GALLERY_SIZES[-1],
) -> dict:
    """False candidates per search and per day of enrolments at ``threshold`` over ``gallery``
    claimants, as ranked top-k lists, and the reviewer-days they cost each day."""
    fmr, measured = fmr_at(impostor, threshold, fit)
    per_search = fmr * gallery
    shown = shown_in_top_k(per_search)
    per_day = shown * ONLINE_SEARCHES_PER_DAY
    return {
        "operating_point": label,
        "threshold": threshold,
        "fmr": fmr,
        "fmr_source": "measured" if measured else "extrapolated",
        "genuine_accept_rate": float((genuine >= threshold).mean()),
        "false_candidates_per_search": per_search,
        "shown_per_search_top_k": shown,
        "searches_with_a_false_candidate": 1.0 - math.exp(-per_search),
        "false_candidates_per_day": per_day,
        "reviewer_days_per_day": per_day / CASES_PER_REVIEWER_DAY,
    }


def assumptions() -> dict:
    return {
        "reviewer_cases_per_day": REVIEWER_CASES_PER_DAY,
        "online_searches_per_day": ONLINE_SEARCHES_PER_DAY,
        "online_share_of_reviewers": ONLINE_SHARE,
        "self_join_review_days": SELF_JOIN_DAYS,
        "keep_genuine": KEEP_GENUINE,
        "top_k": TOP_K,
        "cases_per_reviewer_day": CASES_PER_REVIEWER_DAY,
        "note": "planning assumptions, not measurements; the recommendation scales with them: "
        "target FMR = false cases the reviewers can take / comparisons made. A target whose "
        "threshold would exceed the largest possible cosine (1.0) is unreachable by the face "
        "score alone",
    }
