"""Prometheus metrics, one registry per app (several apps can live in one process).

With ``serve --workers N`` the server sets ``PROMETHEUS_MULTIPROC_DIR`` (api.server): every
worker's values go to files there and ``/metrics`` sums all workers (api.routes.ops)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from biometric.gallery_fmr import FmrEstimate

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
            "Verification decisions by outcome and the operating point that made them.",
            ["decision", "operating_point"],
            registry=self.registry,
        )
        self.chip_auth = Counter(
            "biometric_chip_auth_total",
            "Chip passive authentication results (verified, hash_mismatch, ...) by issuer country.",
            ["status", "country"],
            registry=self.registry,
        )
        # biometric.gallery_fmr: FMR among enrolled claimants at the gallery's threshold. Each
        # process counts its own enrolments: under multiprocess metrics a series per worker
        # (prometheus_client's default "all" mode for gauges adds the pid).
        self.gallery_fmr = Gauge(
            "biometric_gallery_fmr_estimate",
            "Live FMR estimate from enrolment searches (pairs of different claimants) at the "
            "gallery's threshold: bound is estimate, low or high (95 % Wilson interval), or claim.",
            ["operating_point", "bound"],
            registry=self.registry,
        )
        self.gallery_fmr_pairs = Gauge(
            "biometric_gallery_fmr_comparisons",
            "Claimant pairs the live FMR estimate is based on.",
            ["operating_point"],
            registry=self.registry,
        )
        self.errors = Counter(
            "biometric_errors_total",
            "Error responses by problem type.",
            ["type"],
            registry=self.registry,
        )

    def observe_gallery_fmr(self, estimate: FmrEstimate) -> None:
        """Refresh the live FMR gauges (at scrape time)."""
        lo, hi = estimate.ci
        point = estimate.operating_point
        for bound, value in (("estimate", estimate.fmr), ("low", lo), ("high", hi),
                             ("claim", estimate.claim)):
            self.gallery_fmr.labels(point, bound).set(float("nan") if value is None else value)
        self.gallery_fmr_pairs.labels(point).set(estimate.comparisons)
