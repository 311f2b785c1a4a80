"""The failed-authentication limiter (api.auth): 429 past the limit per address and per key
prefix, one aggregated audit row per address or prefix and window, bounded memory."""

from __future__ import annotations

import time

from api.auth import FailedAuthLimiter, aggregate_row, key_prefix


def test_limit_per_address_and_prefix_then_aggregated() -> None:
    limiter = FailedAuthLimiter(limit=3, window_s=0.3)
    waits = [limiter.failed("10.0.0.1", "abc") for _ in range(5)]
    assert waits[:3] == [None] * 3 and all(w == 1 for w in waits[3:])
    assert limiter.blocked("10.0.0.1", None)  # the address
    assert limiter.blocked("10.0.0.9", "abc")  # the prefix, from any address
    assert not limiter.blocked("10.0.0.9", "other")
    time.sleep(0.35)
    ended = limiter.drain()
    assert sorted((a.kind, a.value, a.refused) for a in ended) == [
        ("client", "10.0.0.1", 2), ("key_prefix", "abc", 2)]
    row = aggregate_row(ended[0])
    assert row["decision"] == "refused" and row["reasons"][0]["refused"] == 2
    assert not limiter.blocked("10.0.0.1", "abc")


def test_memory_is_bounded_under_many_addresses() -> None:
    limiter = FailedAuthLimiter(limit=1, window_s=60, max_tracked=100)
    for n in range(1000):
        limiter.failed(f"10.{n // 256}.{n % 256}.1", None)
        limiter.failed(f"10.{n // 256}.{n % 256}.1", None)
    assert len(limiter._windows) <= 100
    assert sum(a.refused for a in limiter.drain(everything=True)) == 1000


def test_key_prefix_only_from_well_formed_tokens() -> None:
    assert key_prefix("bmk_0123456789ab_secret") == "0123456789ab"
    assert key_prefix("nonsense") is None and key_prefix(None) is None
    assert key_prefix("bmk_" + "x" * 40 + "_s") is None
