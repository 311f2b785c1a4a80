"""1:1 verification, the one home the API, the CLI and the worker pool share.

A :class:`VerifyRequest` (the live capture; the chip portrait as an image or as the chip files
EF.DG2 + EF.SOD (+ EF.DG1); the ids) goes in, a :class:`VerifyOutcome` comes out:

1. read the chip files, if sent (:mod:`biometric.chip`: the portrait and passive
   authentication); a malformed file is an :class:`ImageRejected` naming ``dg2`` or ``sod``;
2. decode both images, an :class:`ImageRejected` naming ``live`` or ``chip`` when one fails;
3. the pipeline's stages: detect, choose the subject, align, quality, liveness, embed, compare;
   the chip's side of them can be done first, on its own (:meth:`Verifier.prepare`: a
   :class:`PreparedChip`, templates and no photo), so that after the capture only the live
   path runs (:meth:`Verifier.verify_prepared`); the one-shot form is the same two steps;
4. :func:`decide`, a pure function of the face evidence, the liveness check, the chip's
   authentication and the :class:`Policies` (no model, no I/O: tested on its own).

The callers only shape inputs and outputs around it: the API route (HTTP parts, problems,
audit), ``biometric verify`` (files, terminal) and :mod:`biometric.workers` (the same call in
another process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from biometric.chip.dg2 import FaceImage
from biometric.chip.errors import ChipDataError
from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus
from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.reader import ChipReading, read_chip
from biometric.chip.trust import TrustStore
from biometric.conditions import pair_condition
from biometric.decide import (
    ChipTrust,
    Decision,
    OperatingPoint,
    Reason,
    RetakeReason,
    chip_problems,
    reason,
)
from biometric.errors import BiometricError
from biometric.liveness import LivenessCheck, LivenessPolicy
from biometric.pipeline import CHIP, LIVE, FaceAnalysis, Pipeline, Timer

T = TypeVar("T")

# Reason codes of the chip policy (catalogue keys reason.<code>, in every language).
CHIP_REFUSED = "chip_auth_failed"
CHIP_NOT_CHECKED = "chip_auth_not_checked"


# -- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipFiles:
    """The files a counter's reader took from the chip (ICAO 9303)."""

    dg2: bytes
    sod: bytes | None = None
    dg1: bytes | None = None


class InvalidRequest(BiometricError):
    """The request's parts do not make a verification (``code`` says which rule)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VerifyRequest:
    """One verification: the live capture and the chip portrait, as an image, as the chip
    files or prepared (:meth:`Verifier.prepare`): exactly one of the three."""

    live: bytes
    portrait: bytes | None = None
    chip_files: ChipFiles | None = None
    citizen_id: str | None = None
    counter_id: str | None = None
    prepared: PreparedChip | None = None  # the chip prepared before the capture

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.portrait, self.chip_files, self.prepared)]
        if sum(given) != 1:
            raise InvalidRequest("missing_image", "send the chip portrait as 'chip', the chip "
                                 "files as 'dg2' (with 'sod') or a 'chip_handle': exactly one")


class PreparedChipUnusable(BiometricError):
    """A prepared chip that cannot be used: the counter sends the chip again."""

    code = "chip_handle_unusable"


class StalePreparedChip(PreparedChipUnusable):
    """A chip prepared by other models than this verifier's (they changed in between)."""

    code = "chip_handle_stale"

    def __init__(self) -> None:
        super().__init__("the chip was prepared with other models; send the chip again")


class ImageRejected(BiometricError):
    """An input could not be used; ``image`` names it (``live``, ``chip``, ``dg2``, ``sod``;
    None when the failure is no one image's, e.g. a model error). ``cause`` keeps the typed
    error and its code."""

    def __init__(self, cause: BiometricError, image: str | None) -> None:
        super().__init__(f"{image} image: {cause.message}" if image else cause.message)
        self.cause = cause
        self.image = image
        self.code = cause.code

    def __reduce__(self) -> tuple:  # crosses the worker pool's pipe
        return (ImageRejected, (self.cause, self.image))


def naming(image: str | None, fn: Callable[[], T]) -> T:
    """``fn()``, its library errors re-raised as :class:`ImageRejected` naming ``image``."""
    try:
        return fn()
    except ImageRejected:
        raise
    except ChipDataError as exc:
        part = "dg2" if exc.code == "dg2_malformed" else "sod"
        raise ImageRejected(exc, part) from None
    except BiometricError as exc:
        raise ImageRejected(exc, image) from None


# -- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policies:
    """What a failed liveness check and a failed chip check do to a verification."""

    liveness: LivenessPolicy = LivenessPolicy.OFF
    chip_auth: ChipAuthPolicy = ChipAuthPolicy.WARN


@dataclass(frozen=True)
class FaceEvidence:
    """What the face comparison found: the score (None when it could not be computed) against
    the operating point, and why each image cannot be used (empty when it can)."""

    score: float | None
    point: OperatingPoint
    live_reasons: tuple[Reason, ...] = ()
    chip_reasons: tuple[Reason, ...] = ()
    condition: str | None = None  # the pair's capture condition: its threshold applies

    @property
    def threshold(self) -> float:
        return self.point.threshold_for(self.condition)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[Reason, ...]
    chip_trust: ChipTrust = ChipTrust.NOT_VERIFIED


def liveness_reason(check: LivenessCheck | None, policy: LivenessPolicy) -> Reason | None:
    """Under ``block`` a suspected attack is a retake (the live capture must be taken again)."""
    if check is None or check.is_live or policy is not LivenessPolicy.BLOCK:
        return None
    return reason(RetakeReason.PRESENTATION_ATTACK, LIVE)


def chip_trust(auth: ChipAuthResult | None) -> ChipTrust:
    """What the decision needs of passive authentication (None: not checked, or policy off)."""
    if auth is None or auth.status is ChipAuthStatus.NOT_CHECKED:
        return ChipTrust.NOT_VERIFIED
    return ChipTrust.VERIFIED if auth.status is ChipAuthStatus.VERIFIED else ChipTrust.FAILED


def chip_refusal(auth: ChipAuthResult | None, policy: ChipAuthPolicy) -> Reason | None:
    """The staff instruction the chip check gives: for a chip that failed passive
    authentication (under ``warn`` and ``block``: the agency's procedure for a suspect card),
    and under ``block`` for one that could not be checked (a card without EF.SOD must not slip
    through); None otherwise."""
    if policy is ChipAuthPolicy.OFF:
        return None
    trust = chip_trust(auth)
    if trust is ChipTrust.FAILED:
        return reason(CHIP_REFUSED, CHIP)
    if trust is ChipTrust.NOT_VERIFIED and policy is ChipAuthPolicy.BLOCK:
        return reason(CHIP_NOT_CHECKED, CHIP)
    return None


def decide(face: FaceEvidence, liveness: LivenessCheck | None, chip_auth: ChipAuthResult | None,
           policies: Policies) -> Verdict:
    """The decision, most serious first (the face comparison still counts for the audit):

    1. ``chip_untrusted``: the chip failed passive authentication (hash mismatch, bad
       signature, untrusted or expired signer), under ``warn`` as under ``block``: a forged
       chip usually carries the presenter's own face, so a face match must not show;
    2. ``refused``: under ``block``, a chip that could not be checked;
    3. ``retake``: the live capture cannot be used, or liveness blocks (the citizen can act);
    4. ``manual_check``: the chip portrait has no usable face (nobody can retake it);
    5. ``match`` or ``no_match`` by the score against the operating point.

    ``chip_trust`` in the verdict is ``not_verified`` unless the chip verified: a face decision
    on an unverified chip is shown apart from one on a verified chip."""
    attack = liveness_reason(liveness, policies.liveness)
    live = (*face.live_reasons, *((attack,) if attack else ()))
    trust = ChipTrust.NOT_VERIFIED if policies.chip_auth is ChipAuthPolicy.OFF else chip_trust(
        chip_auth)
    refused = chip_refusal(chip_auth, policies.chip_auth)
    if refused is not None:
        untrusted = trust is ChipTrust.FAILED
        return Verdict(Decision.CHIP_UNTRUSTED if untrusted else Decision.REFUSED,
                       (refused, *live, *face.chip_reasons), trust)
    if live:
        return Verdict(Decision.RETAKE, (*live, *face.chip_reasons), trust)
    if face.chip_reasons or face.score is None:
        return Verdict(Decision.MANUAL_CHECK, face.chip_reasons, trust)
    match = face.score >= face.threshold
    return Verdict(Decision.MATCH if match else Decision.NO_MATCH, (), trust)


# -- the outcome --------------------------------------------------------------------------------


# When only a portrait image was sent, the chip's signature cannot have been checked.
IMAGE_ONLY = ChipAuthResult(
    ChipAuthStatus.NOT_CHECKED,
    "a portrait image was sent, not the chip files (EF.DG2 and EF.SOD): the chip's signature "
    "was not checked",
)


@dataclass
class VerifyOutcome:
    decision: Decision
    score: float | None
    threshold: float  # the one applied: the pair's capture condition's
    fmr: float
    reasons: list[Reason]
    live: FaceAnalysis
    chip: FaceAnalysis
    timings_ms: dict[str, float]
    models: dict[str, str]
    liveness: LivenessCheck | None = None
    # Passive authentication of the chip, with the policy that judged it (a portrait image:
    # not_checked); None under policy "off".
    chip_auth: ChipAuthResult | None = None
    chip_image: PortraitPlace | None = None  # where the portrait sat in EF.DG2, when sent
    display_score: int | None = None  # 0-100, the decision threshold at 50 (ScoreScale)
    chip_trust: ChipTrust = ChipTrust.NOT_VERIFIED
    condition: str | None = None  # the pair's capture condition, whose threshold applied
    citizen_id: str | None = None
    counter_id: str | None = None
    operating_point: str = "shipped:unknown"  # which operating point made the decision

    @property
    def faces(self) -> dict[str, FaceAnalysis]:
        return {LIVE: self.live, CHIP: self.chip}


# -- the prepared chip --------------------------------------------------------------------------


@dataclass(frozen=True)
class PortraitPlace:
    """Where the portrait sat in EF.DG2 (a :class:`FaceImage` without the photo), so that a
    page holding the DG2 can cut it out."""

    version: str
    image_type: str
    data_type: str
    width: int
    height: int
    feature_points: int
    image_offset: int
    image_bytes: int

    @classmethod
    def of(cls, image: FaceImage) -> PortraitPlace:
        return cls(image.version, image.image_type, image.data_type, image.width, image.height,
                   image.feature_points, image.image_offset, image.image_bytes)


@dataclass
class PreparedChip:
    """The chip's side of a verification, done while the claimant sits down: the portrait read,
    authenticated, analysed and embedded. It holds the templates (``analysis.embeddings``, one
    per embedder of ``option``), never the photo: the aligned crops are dropped and
    ``chip_image`` keeps where the portrait sat in EF.DG2, not its bytes."""

    analysis: FaceAnalysis
    chip_auth: ChipAuthResult | None  # judged under the verifier's policy (None under "off")
    chip_image: PortraitPlace | None
    option: str  # the embedder option that made the templates (biometric.manifest)
    models: dict[str, str]  # the versions of the models that made them
    timings_ms: dict[str, float]


def _sum_timings(*parts: dict[str, float]) -> dict[str, float]:
    """Stage times of several parts of one verification, summed stage by stage."""
    out: dict[str, float] = {}
    for part in parts:
        for stage, ms in part.items():
            if stage != "total":
                out[stage] = out.get(stage, 0.0) + ms
    out["total"] = sum(out.values())
    return out


# -- the verifier -------------------------------------------------------------------------------


class Verifier:
    """A loaded pipeline with the policies and the CSCA trust store: verifies requests.
    Thread-safe like the pipeline (nothing here is mutated after construction)."""

    def __init__(self, pipeline: Pipeline, chip_auth: ChipAuthPolicy = ChipAuthPolicy.WARN,
                 trust: TrustStore | None = None) -> None:
        self.pipeline = pipeline
        self.policies = Policies(pipeline.settings.liveness, chip_auth)
        self.trust = trust

    def verify(self, request: VerifyRequest) -> VerifyOutcome:
        chip = request.prepared if request.prepared is not None else self.read_chip(request)
        outcome = self.compare(request.live, chip)
        outcome.citizen_id, outcome.counter_id = request.citizen_id, request.counter_id
        return outcome

    def read_chip(self, request: VerifyRequest) -> ChipReading | bytes | None:
        """The chip files read and authenticated (the portrait image when one was sent; None
        for a prepared chip). Cheap next to the face work: the API does it before handing a
        request to a worker."""
        files = request.chip_files
        if files is None:
            return request.portrait
        return naming("dg2", lambda: read_chip(files.dg2, files.sod, self.trust, files.dg1,
                                               self.policies.chip_auth))

    def prepare(self, chip: ChipReading | bytes) -> PreparedChip:
        """The chip's side of a verification (``chip``: the chip reading, or a portrait image):
        decode, detect, align, quality, embed. Done before the capture, it leaves the live
        path alone after it (:meth:`compare` with the result)."""
        reading = chip if isinstance(chip, ChipReading) else None
        portrait = reading.portrait if reading is not None else chip
        assert isinstance(portrait, bytes), type(portrait)
        started = time.perf_counter()
        chip_rgb = naming(CHIP, lambda: self.pipeline.decode(portrait).rgb)
        decode_ms = (time.perf_counter() - started) * 1000.0
        prepared = self.prepare_rgb(chip_rgb, reading)
        prepared.timings_ms = _sum_timings({"decode": decode_ms}, prepared.timings_ms)
        return prepared

    def prepare_rgb(self, chip_rgb: np.ndarray, reading: ChipReading | None = None
                    ) -> PreparedChip:
        """:meth:`prepare` of a decoded portrait (RGB)."""
        pipeline, timer = self.pipeline, Timer()
        analysis = pipeline.analyse(chip_rgb, CHIP, timer)
        # A chip portrait cannot be retaken: only a missing or unusable face stops the
        # comparison (staff check by hand); its pose and lighting stay in its quality report.
        analysis.reasons = chip_problems([r.code for r in analysis.reasons])
        if not analysis.reasons:  # an unusable portrait is never compared: no template
            pipeline.embed([analysis], timer)
        analysis.crops = []  # the aligned face is a photo: not kept
        portrait = reading.dg2.portrait if reading is not None else None
        return PreparedChip(
            analysis=analysis,
            chip_auth=self._chip_auth(reading),
            chip_image=PortraitPlace.of(portrait) if portrait is not None else None,
            option=pipeline.option,
            models=self.embedder_versions(),
            timings_ms=_sum_timings(timer.ms, reading.timings_ms if reading else {}),
        )

    def embedder_versions(self) -> dict[str, str]:
        """The versions of the models a template depends on (the detector and aligner too)."""
        return dict(sorted(self.pipeline.model_versions.items()))

    def compare(self, live: bytes, chip: ChipReading | bytes | PreparedChip) -> VerifyOutcome:
        """Decode the live capture and verify it against the chip (a prepared chip, the chip
        reading, or a portrait image, which are prepared first)."""
        prepared = chip if isinstance(chip, PreparedChip) else self.prepare(chip)
        started = time.perf_counter()
        live_rgb = naming(LIVE, lambda: self.pipeline.decode(live).rgb)
        decode_ms = (time.perf_counter() - started) * 1000.0
        outcome = self.verify_prepared(live_rgb, prepared)
        outcome.timings_ms = _sum_timings({"decode": decode_ms}, outcome.timings_ms)
        if prepared is not chip:  # one-shot: the chip's work is part of this verification
            outcome.timings_ms = _sum_timings(prepared.timings_ms, outcome.timings_ms)
        return outcome

    def verify_faces(self, live_rgb: np.ndarray, chip_rgb: np.ndarray,
                     reading: ChipReading | None = None) -> VerifyOutcome:
        """Verify decoded images (RGB): the chip prepared, then :meth:`verify_prepared`."""
        prepared = self.prepare_rgb(chip_rgb, reading)
        outcome = self.verify_prepared(live_rgb, prepared)
        outcome.timings_ms = _sum_timings(prepared.timings_ms, outcome.timings_ms)
        return outcome

    def verify_prepared(self, live_rgb: np.ndarray, chip: PreparedChip) -> VerifyOutcome:
        """The live path after the capture: its stages against the prepared chip's templates,
        then :func:`decide`. ``timings_ms`` are the live path's."""
        pipeline, policies = self.pipeline, self.policies
        if chip.option != pipeline.option or chip.models != self.embedder_versions():
            raise StalePreparedChip()
        point = pipeline.operating_point
        timer = Timer()
        live_a = pipeline.analyse(live_rgb, LIVE, timer)
        chip_a = chip.analysis
        liveness = pipeline.check_liveness(live_rgb, live_a, timer)
        attack = liveness_reason(liveness, policies.liveness)
        condition = pair_condition(live_a.condition, chip_a.condition).value  # type: ignore[arg-type]
        face = FaceEvidence(None, point, tuple(live_a.reasons), tuple(chip_a.reasons), condition)
        if not (face.live_reasons or face.chip_reasons or attack):
            pipeline.embed([live_a], timer)
            with timer.stage("compare"):
                face = replace(face, score=pipeline.score(live_a, chip_a))
        if attack is not None:
            live_a.reasons.append(attack)  # shown with the live image's other reasons
        verdict = decide(face, liveness, chip.chip_auth, policies)
        return VerifyOutcome(
            decision=verdict.decision,
            score=face.score,
            display_score=pipeline.score_scale_for(condition).display(face.score),
            chip_trust=verdict.chip_trust,
            threshold=face.threshold,
            fmr=point.fmr,
            reasons=list(verdict.reasons),
            live=live_a,
            chip=chip_a,
            timings_ms=_sum_timings(timer.ms),
            models=pipeline.model_versions,
            liveness=liveness,
            chip_auth=chip.chip_auth,
            chip_image=chip.chip_image,
            condition=condition,
            operating_point=point.id,
        )

    def _chip_auth(self, reading: ChipReading | None) -> ChipAuthResult | None:
        policy = self.policies.chip_auth
        if policy is ChipAuthPolicy.OFF:
            return None
        auth = reading.auth if reading is not None else IMAGE_ONLY
        return None if auth is None else replace(auth, policy=policy)
