"""Thresholds at scale (benchmarks/scale_thresholds.py) on SYNTHETIC scores with a known tail:
the arithmetic and the measured/extrapolated labels, not an accuracy claim."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import scale_thresholds as st


def _laplace_scores(n: int, scale: float = 0.05, seed: int = 0) -> np.ndarray:
    """Impostor-like scores whose tail is exactly exponential: P(X >= t) = exp(-t/scale) / 2."""
    return np.random.default_rng(seed).laplace(0.0, scale, n).astype(np.float32)


def test_tail_fit_extrapolates_an_exponential_tail() -> None:
    scores = _laplace_scores(2_000_000)
    fit = st.fit_tail(scores)
    for t in (0.6, 0.8):  # true FMR 3e-6 and 6e-8: beyond and far beyond the 2M samples
        true = 0.5 * math.exp(-t / 0.05)
        assert 0.5 < fit.fmr(t) / true < 2.0  # within a factor of two, decades out
        assert st.fmr_at(scores, t, fit) == (fit.fmr(t), False)  # fewer than 10 pairs above
    fmr, measured = st.fmr_at(scores, 0.2, fit)  # ~9,000 pairs above: measured
    assert measured and fmr == pytest.approx(float((scores >= 0.2).mean()))
    t, measured = st.threshold_at(scores, 1e-9, fit)
    assert not measured and t == pytest.approx(-0.05 * math.log(2e-9), abs=0.05)


def test_expected_false_and_recommendation() -> None:
    ef = st.expected_false(1e-6, (1_000_000,))
    assert ef["1000000"]["per_search"] == pytest.approx(1.0)
    assert ef["1000000"]["per_self_join"] == pytest.approx(1e-6 * 1e6 * (1e6 - 1) / 2)
    impostor = _laplace_scores(500_000, scale=0.02)
    genuine = np.full(1000, 0.9, np.float32)
    out = st.analyse_embedder("synthetic", genuine, impostor, [(1e-3, 0.1)])
    online = out["recommended"]["online_search"]
    budget = st.REVIEWER_CASES_PER_DAY * st.ONLINE_SHARE
    assert online["target_fmr"] == pytest.approx(budget / (st.ONLINE_SEARCHES_PER_DAY * 1e8))
    assert online["threshold_source"] == "extrapolated" and online["reachable"]
    true_threshold = -0.02 * math.log(2 * online["target_fmr"])  # P(X >= t) = target
    assert online["threshold"] == pytest.approx(true_threshold, abs=0.03)
    assert out["recommended"]["self_join"]["threshold"] > online["threshold"]
    assert out["operating_points"][0]["fmr_source"] == "measured"
    keep = out["recommended"]["keep_90_percent_of_duplicates"]
    assert keep["threshold"] == pytest.approx(0.9)
    assert keep["online_cases_per_day"] <= st.TOP_K * st.ONLINE_SEARCHES_PER_DAY
    # A wide impostor tail: no cosine threshold (<= 1) meets the budget.
    wide = st.analyse_embedder("synthetic", genuine, _laplace_scores(500_000, 0.05), [])
    assert not wide["recommended"]["online_search"]["reachable"]
    assert wide["recommended"]["online_search"]["threshold"] is None
