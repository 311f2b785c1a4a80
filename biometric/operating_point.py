"""Operating-point files: a threshold an agency fitted on its own photos (``biometric
calibrate``), declared once here and read by ``verify``, ``evaluate`` and ``serve``
(``--operating-point site.json`` or ``BIOMETRIC_OPERATING_POINT``).

A file is only valid for the embedder (or fusion) and the model files it was fitted with: the
same photos give other scores with other weights, so loading it against different models is an
error, not a silent shift of the false-match rate.

Every decision names the operating point that made it: ``shipped:<date of the manifest's
calibration>`` or ``site:<first 12 hex digits of the data fingerprint>``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from biometric.decide import OperatingPoint
from biometric.errors import BiometricError
from biometric.manifest import CalibratedThreshold, FusionSpec
from biometric.rates import SUPPORT_FACTOR

# Environment variable naming an operating-point file for every command and the service.
ENV = "BIOMETRIC_OPERATING_POINT"


class OperatingPointError(BiometricError):
    code = "operating_point_error"


class InsufficientData(OperatingPointError):
    """Too few impostor pairs to fit or check a threshold at the requested FMR."""

    code = "insufficient_data"


class SourceCount(BaseModel):
    """What one source contributed to the fit."""

    name: str
    images: int
    people: int | None  # None: a CSV of listed pairs (identities unknown)
    acquired: int
    genuine_pairs: int
    impostor_pairs: int


class SiteOperatingPoint(BaseModel):
    """The operating-point file ``biometric calibrate`` writes."""

    schema_version: Literal[1] = 1
    kind: Literal["site"] = "site"
    embedder: str  # an embedder name or "fusion"
    # Model versions (sha256 prefixes, as in the manifest) the scores were computed with.
    models: dict[str, str]
    # With the fusion: its score normalisation (weights, impostor mean and spread), which
    # changes when the manifest is recalibrated.
    fusion_normalisation: dict[str, list[float]] | None = None
    fmr: float  # the claim: the FMR the threshold was fitted for
    threshold: float  # at ``fmr``, all conditions pooled (the strictest-set rule)
    # ``fmr`` and every lower FMR the data supports, in the manifest's structure: the pooled
    # threshold, one per capture condition (biometric.conditions) where that condition's pairs
    # support the FMR, and the out-of-sample check on person-disjoint folds.
    thresholds: list[CalibratedThreshold]
    sources: list[SourceCount]
    date: str  # ISO 8601, when it was fitted
    fingerprint: str  # sha256 over the photos' contents and labels (biometric.site)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.fingerprint[:12]}"

    def point(self, fmr: float | None = None) -> CalibratedThreshold:
        """The thresholds fitted at ``fmr`` (default: the stated FMR)."""
        wanted = self.fmr if fmr is None else fmr
        for t in self.thresholds:
            if abs(t.fmr - wanted) <= wanted * 1e-6:
                return t
        fitted = ", ".join(f"{t.fmr:g}" for t in self.thresholds)
        raise OperatingPointError(
            f"operating point {self.id} has no threshold for FMR {wanted:g} (fitted: {fitted})"
        )

    def operating_point(self, fmr: float | None = None) -> OperatingPoint:
        """What the decision uses: pooled and per-condition thresholds, named by :attr:`id`."""
        return dataclasses.replace(self.point(fmr).operating_point(), id=self.id)

    def check_models(
        self, option: str, versions: dict[str, str], fusion: dict[str, list[float]] | None
    ) -> None:
        """Refuse a file fitted for another embedder or other model files."""
        if option != self.embedder:
            raise OperatingPointError(
                f"operating point {self.id} was fitted for {self.embedder}, but the pipeline "
                f"uses {option}; pass --embedder {self.embedder} or refit"
            )
        changed = sorted(n for n, v in self.models.items() if versions.get(n) != v)
        refit = self.fusion_normalisation is not None and fusion != self.fusion_normalisation
        if changed or refit:
            what = ", ".join(changed) or "the fusion's normalisation"
            raise OperatingPointError(
                f"operating point {self.id} was fitted with other model files ({what} changed "
                "since); refit it with `biometric calibrate` on the site's photos"
            )


def fusion_normalisation(fusion: FusionSpec | None) -> dict[str, list[float]] | None:
    """What of a fusion a fused score's scale depends on (its thresholds aside)."""
    if fusion is None:
        return None
    return {k: [float(v) for v in getattr(fusion, k)]
            for k in ("weights", "impostor_mean", "impostor_std")}


def shipped_id(manifest_date: str | None) -> str:
    return f"shipped:{manifest_date or 'unknown'}"


def load_operating_point(path: Path) -> SiteOperatingPoint:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OperatingPointError(f"cannot read operating point {path}: {exc.strerror}") from None
    try:
        return SiteOperatingPoint.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise OperatingPointError(
            f"{path} is not an operating-point file ({where}: {first['msg']}; "
            f"{exc.error_count()} problem(s))"
        ) from None


def save_operating_point(point: SiteOperatingPoint, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(point.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def pairs_needed(fmr: float) -> int:
    """Impostor pairs needed to fit or report a threshold at ``fmr``."""
    return round(SUPPORT_FACTOR / fmr)
