"""The model manifest (models/manifest.json): what each ONNX file is, where it came from, how to
feed it, and the thresholds calibrated for it. The build writes it; the pipeline only reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from biometric.decide import OperatingPoint
from biometric.embed import EmbedderSpec
from biometric.errors import ModelError

MANIFEST_NAME = "manifest.json"


class SourceRecord(BaseModel):
    registry: str
    package: str
    version: str
    archive_sha256: str
    member: str
    member_sha256: str
    license: str


class SetRates(BaseModel):
    """Error rates of one data set at a calibrated threshold (in sample: all its pairs)."""

    name: str
    genuine_pairs: int
    impostor_pairs: int
    fmr: float | None  # None: no impostor pairs
    fnmr: float | None  # None: no genuine pairs
    fmr_ratio: float | None = None  # fmr / claimed FMR, where the set supports it
    # Measured on each fold's people at the threshold fitted on the other folds' people.
    fmr_out_of_sample: float | None = None
    fmr_ratio_out_of_sample: float | None = None
    # The counts behind fmr_out_of_sample (false matches / held-out impostor pairs).
    false_matches_out_of_sample: int | None = None
    impostor_pairs_out_of_sample: int | None = None


class ConditionThreshold(BaseModel):
    """The threshold of one capture condition (``biometric.conditions``) at a claimed FMR, and
    the data it rests on. ``fitted`` False: that condition's impostor pairs cannot support the
    FMR (fewer than 10/FMR), and the pooled threshold applies to it."""

    condition: str
    threshold: float
    fitted: bool
    datasets: list[str]  # the sets whose pairs of this condition the fit used
    genuine_pairs: int
    impostor_pairs: int
    tar: float | None = None  # equal-weight mean over the sets with genuine pairs
    per_set: list[SetRates] = Field(default_factory=list)
    fmr_out_of_sample: float | None = None
    fmr_out_of_sample_ci: list[float] | None = None


class CalibratedThreshold(BaseModel):
    fmr: float
    threshold: float
    pooled_fit: float | None = None  # the equal-weight pooled fit before the per-set guard
    tar: float  # mean over the sets with genuine pairs (each set weighs the same)
    genuine_pairs: int
    impostor_pairs: int
    datasets: list[str]  # the sets the threshold was fitted on (equal weight each)
    weighting: str = "equal weight per set, raised to the strictest set"
    per_set: list[SetRates] = Field(default_factory=list)
    # Person-disjoint cross-validation: each fold's people scored at a threshold fitted on the
    # other folds' people (equal-weight mean over ``datasets``; 95 % interval).
    fmr_out_of_sample: float | None = None
    fmr_out_of_sample_ci: list[float] | None = None
    tar_out_of_sample: float | None = None
    folds: int | None = None
    # Per capture condition; a condition not listed (or not fitted) uses ``threshold``.
    conditions: list[ConditionThreshold] = Field(default_factory=list)

    def operating_point(self) -> OperatingPoint:
        return OperatingPoint(
            threshold=self.threshold,
            fmr=self.fmr,
            by_condition={c.condition: c.threshold for c in self.conditions if c.fitted},
        )


def _threshold_for(
    thresholds: list[CalibratedThreshold], fmr: float, name: str
) -> CalibratedThreshold:
    for t in thresholds:
        if abs(t.fmr - fmr) <= fmr * 1e-6:
            return t
    known = ", ".join(f"{t.fmr:g}" for t in thresholds) or "none"
    raise ModelError(
        f"no threshold calibrated for FMR {fmr:g} on {name} (calibrated: {known}); "
        "run `biometric models calibrate`"
    )


class QuantisedForm(BaseModel):
    """The static int8 form an embedder runs as, shipped because the int8 benchmark found its
    TAR within float32's 95 % interval at FMR 1e-3 and 1e-4 on lfw_dev and the East-Asian sets
    (``biometric.modelbuild.quantise``). ``biometric models calibrate`` fits the embedder's
    thresholds on this form, the one that runs."""

    file: str
    sha256: str
    method: str
    calibration: str
    judged: dict = Field(default_factory=dict)  # the benchmark result and figures it rests on


class ModelEntry(BaseModel):
    name: str
    role: str  # detector.pnet | detector.rnet | detector.onet | embedder | liveness
    file: str
    sha256: str
    source: SourceRecord
    converter: str
    facts: dict = Field(default_factory=dict)  # input/output names, sizes, normalisation, ...
    template: list[list[float]] | None = None  # embedders: 5-point alignment template
    thresholds: list[CalibratedThreshold] = Field(default_factory=list)
    int8: QuantisedForm | None = None  # embedders: the faster form run in place of ``file``

    def threshold_for(self, fmr: float) -> CalibratedThreshold:
        return _threshold_for(self.thresholds, fmr, self.name)

    @property
    def runtime_file(self) -> str:
        return self.int8.file if self.int8 is not None else self.file

    @property
    def runtime_sha256(self) -> str:
        return self.int8.sha256 if self.int8 is not None else self.sha256


FUSION_JOIN = "+"  # a fused option is named by its embedders: "sface+mobilefacenet"


def fusion_name(embedders: list[str] | tuple[str, ...]) -> str:
    return FUSION_JOIN.join(embedders)


def option_embedders(option: str) -> list[str]:
    """The embedders an option runs: one, or a fusion's members in order."""
    return option.split(FUSION_JOIN)


class FusionSpec(BaseModel):
    """Score-level fusion of embedders: each cosine score is z-normalised with the mean and
    standard deviation of that embedder's impostor scores on the calibration photos, then the
    weighted sum is compared with its own calibrated threshold."""

    embedders: list[str]
    weights: list[float]
    impostor_mean: list[float]
    impostor_std: list[float]
    thresholds: list[CalibratedThreshold] = Field(default_factory=list)

    def fuse(self, scores: list) -> Any:
        """Fused score; each element of ``scores`` may be a float or an array of scores."""
        parts = zip(self.weights, scores, self.impostor_mean, self.impostor_std, strict=True)
        return sum(w * (s - m) / d for w, s, m, d in parts)

    @property
    def name(self) -> str:
        return fusion_name(self.embedders)

    def threshold_for(self, fmr: float) -> CalibratedThreshold:
        return _threshold_for(self.thresholds, fmr, self.name)


class Manifest(BaseModel):
    schema_version: int = 1
    default_embedder: str = "mobilefacenet"
    default_fmr: float = 1e-3
    # The liveness model a pipeline uses unless told otherwise (chosen by measurement, README).
    default_liveness: str = "minifasnet"
    models: list[ModelEntry] = Field(default_factory=list)
    fusions: list[FusionSpec] = Field(default_factory=list)
    # How the default embedder was chosen: the rule, the date and the figures it was applied to.
    default_choice: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _named_fusions(cls, data: Any) -> Any:
        """Manifests before issue 19 held one ``fusion`` (always mobilefacenet + dlib_resnet),
        selected by the option name "fusion"; it becomes the option named by its members."""
        if isinstance(data, dict) and isinstance(data.get("fusion"), dict):
            data = dict(data)
            legacy = data.pop("fusion")
            data.setdefault("fusions", []).append(legacy)
            if data.get("default_embedder") == "fusion":
                data["default_embedder"] = fusion_name(legacy["embedders"])
        return data

    def get(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name:
                return m
        raise ModelError(f"model {name!r} is not in the manifest")

    def by_role(self, role: str) -> ModelEntry:
        for m in self.models:
            if m.role == role:
                return m
        raise ModelError(f"no model with role {role!r} in the manifest")

    def upsert(self, entry: ModelEntry) -> None:
        self.models = [m for m in self.models if m.name != entry.name] + [entry]

    def fusion(self, option: str) -> FusionSpec | None:
        """The calibrated fusion an option names (None for a single embedder, or a list of
        embedders never calibrated together)."""
        members = option_embedders(option)
        return next((f for f in self.fusions if f.embedders == members), None)

    def thresholds_of(self, option: str) -> list[CalibratedThreshold]:
        if len(option_embedders(option)) == 1:
            return self.get(option).thresholds
        fusion = self.fusion(option)
        if fusion is None:
            known = ", ".join(f.name for f in self.fusions) or "none"
            raise ModelError(
                f"no fusion {option!r} in the manifest (calibrated: {known}); "
                "run `biometric models calibrate`"
            )
        return fusion.thresholds

    def threshold_for(self, option: str, fmr: float) -> CalibratedThreshold:
        return _threshold_for(self.thresholds_of(option), fmr, option)

    @property
    def primary_embedder(self) -> str:
        """The embedder whose templates stand for a face on their own (gallery, bulk enrolment):
        the default, or the first member of the default when it is a fusion."""
        return option_embedders(self.default_embedder)[0]

    def embedder_spec(self, name: str | None = None, float32: bool = False) -> EmbedderSpec:
        """What the pipeline needs to run embedder ``name``: the form that runs (the shipped
        int8 one where there is one), or with ``float32`` its float32 source (quantising and
        judging int8 start from it)."""
        entry = self.get(name or self.primary_embedder)
        f = entry.facts
        if entry.template is None:
            raise ModelError(f"{entry.name} has no alignment template in the manifest")

        def triple(v: float | list[float]) -> tuple[float, float, float]:
            return tuple(v) if isinstance(v, list) else (float(v),) * 3  # type: ignore[return-value]

        return EmbedderSpec(
            name=entry.name,
            file=entry.file if float32 else entry.runtime_file,
            input_name=f["input_name"],
            output_name=f["output_name"],
            input_size=(int(f["input_size"][0]), int(f["input_size"][1])),
            layout=f["layout"],
            mean=triple(f["mean"]),
            std=triple(f["std"]),
            template=np.asarray(entry.template, dtype=np.float64),
            embedding_size=int(f["embedding_size"]),
        )

    def versions(self) -> dict[str, str]:
        """Short model identities for audit records and API responses."""
        return {m.name: m.runtime_sha256[:12] for m in self.models}


def load_manifest(models_dir: Path) -> Manifest:
    path = models_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"{path} is missing; run `biometric models build`")
    return Manifest.model_validate_json(path.read_text())


def save_manifest(manifest: Manifest, models_dir: Path) -> Path:
    path = models_dir / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)
    return path
