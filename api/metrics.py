"""Prometheus metrics, one registry per app (several apps can live in one process).

With ``serve --workers N`` the server sets ``PROMETHEUS_MULTIPROC_DIR`` (api.server): every
worker's values go to files there and ``/metrics`` sums all workers (api.routes.ops)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "biometric_http_request_duration_seconds",
            "HTTP request latency by endpoint.",
            ["method", "endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "biometric_pipeline_stage_duration_seconds",
            "Pipeline stage latency (decode, detect, align, embed, compare, total, queue).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "biometric_decisions_total",
            "Verification decisions by outcome.",
            ["decision"],
            registry=self.registry,
        )
        self.chip_auth = Counter(
            "biometric_chip_auth_total",
            "Chip passive authentication results (verified, hash_mismatch, ...) by issuer country.",
            ["status", "country"],
            registry=self.registry,
        )
        self.errors = Counter(
            "biometric_errors_total",
            "Error responses by problem type.",
            ["type"],
            registry=self.registry,
        )
