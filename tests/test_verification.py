"""The decision of a verification as a pure function of the face evidence, the liveness check,
the chip's passive authentication and the policies: every combination, no model loaded.
Inputs are constructed values (labelled: no photo is involved)."""

from __future__ import annotations

import pickle

import pytest

from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus
from biometric.chip.policy import ChipAuthPolicy
from biometric.decide import Decision, OperatingPoint, RetakeReason, reason
from biometric.errors import ImageDecodeError
from biometric.liveness import LivenessCheck, LivenessPolicy
from biometric.verification import (
    CHIP_NOT_CHECKED,
    CHIP_REFUSED,
    ChipFiles,
    FaceEvidence,
    ImageRejected,
    InvalidRequest,
    Policies,
    VerifyRequest,
    chip_refusal,
    decide,
    liveness_reason,
)

POINT = OperatingPoint(threshold=0.5, fmr=1e-3)
VERIFIED = ChipAuthResult(ChipAuthStatus.VERIFIED, "ok")
NOT_CHECKED = ChipAuthResult(ChipAuthStatus.NOT_CHECKED, "no EF.SOD")
FAILED = [ChipAuthResult(s, "x") for s in ChipAuthStatus
          if s not in (ChipAuthStatus.VERIFIED, ChipAuthStatus.NOT_CHECKED)]
DARK = reason(RetakeReason.TOO_DARK, "live")
NO_FACE = reason(RetakeReason.NO_FACE, "chip")


def _live(is_live: bool, policy: LivenessPolicy = LivenessPolicy.BLOCK) -> LivenessCheck:
    return LivenessCheck(0.9 if is_live else 0.001, is_live, None, 0.01, True, "minifasnet",
                         policy)


@pytest.mark.parametrize(("score", "expected"), [
    (0.7, Decision.MATCH), (0.5, Decision.MATCH), (0.4999, Decision.NO_MATCH),
    (-0.2, Decision.NO_MATCH), (None, Decision.RETAKE)])
def test_the_score_against_the_threshold(score: float | None, expected: Decision) -> None:
    verdict = decide(FaceEvidence(score, POINT), None, VERIFIED, Policies())
    assert verdict.decision is expected and verdict.reasons == ()


def test_an_unusable_image_is_a_retake_with_every_reason_in_order() -> None:
    face = FaceEvidence(None, POINT, (DARK,), (NO_FACE,))
    verdict = decide(face, None, VERIFIED, Policies())
    assert verdict.decision is Decision.RETAKE
    assert [r.code for r in verdict.reasons] == ["too_dark", "no_face"]
    assert [r.image for r in verdict.reasons] == ["live", "chip"]


@pytest.mark.parametrize("policy", list(LivenessPolicy))
def test_liveness_blocks_only_under_block(policy: LivenessPolicy) -> None:
    face = FaceEvidence(0.9, POINT)
    verdict = decide(face, _live(False, policy), VERIFIED, Policies(liveness=policy))
    if policy is LivenessPolicy.BLOCK:
        assert verdict.decision is Decision.RETAKE
        assert [r.code for r in verdict.reasons] == ["presentation_attack_suspected"]
    else:
        assert verdict.decision is Decision.MATCH
    assert decide(face, _live(True), VERIFIED, Policies(liveness=LivenessPolicy.BLOCK)
                  ).decision is Decision.MATCH
    assert liveness_reason(None, LivenessPolicy.BLOCK) is None  # no model ran: nothing to act on


def test_the_attack_reason_sits_with_the_live_image_reasons() -> None:
    face = FaceEvidence(None, POINT, (DARK,), (NO_FACE,))
    verdict = decide(face, _live(False), VERIFIED, Policies(liveness=LivenessPolicy.BLOCK))
    assert [r.code for r in verdict.reasons] == [
        "too_dark", "presentation_attack_suspected", "no_face"]


@pytest.mark.parametrize("auth", [VERIFIED, NOT_CHECKED, *FAILED, None])
@pytest.mark.parametrize("policy", [ChipAuthPolicy.OFF, ChipAuthPolicy.WARN])
def test_the_chip_never_changes_the_decision_under_off_or_warn(
        auth: ChipAuthResult | None, policy: ChipAuthPolicy) -> None:
    for score, expected in ((0.9, Decision.MATCH), (0.1, Decision.NO_MATCH)):
        verdict = decide(FaceEvidence(score, POINT), None, auth, Policies(chip_auth=policy))
        assert verdict.decision is expected and verdict.reasons == ()
    assert chip_refusal(auth, policy) is None


@pytest.mark.parametrize("auth", FAILED, ids=lambda a: a.status.value)
def test_block_refuses_a_chip_that_failed_whatever_the_face(auth: ChipAuthResult) -> None:
    for score in (0.9, 0.1, None):
        verdict = decide(FaceEvidence(score, POINT), None, auth,
                         Policies(chip_auth=ChipAuthPolicy.BLOCK))
        assert verdict.decision is Decision.REFUSED
        assert (verdict.reasons[0].code, verdict.reasons[0].image) == (CHIP_REFUSED, "chip")


@pytest.mark.parametrize("auth", [NOT_CHECKED, None])
def test_block_refuses_a_chip_that_was_not_checked(auth: ChipAuthResult | None) -> None:
    verdict = decide(FaceEvidence(0.9, POINT), None, auth, Policies(chip_auth=ChipAuthPolicy.BLOCK))
    assert verdict.decision is Decision.REFUSED
    assert [r.code for r in verdict.reasons] == [CHIP_NOT_CHECKED]


def test_block_keeps_the_face_reasons_after_the_refusal() -> None:
    face = FaceEvidence(None, POINT, (DARK,))
    verdict = decide(face, None, FAILED[0], Policies(chip_auth=ChipAuthPolicy.BLOCK))
    assert verdict.decision is Decision.REFUSED
    assert [r.code for r in verdict.reasons] == [CHIP_REFUSED, "too_dark"]
    assert decide(FaceEvidence(0.9, POINT), None, VERIFIED,
                  Policies(chip_auth=ChipAuthPolicy.BLOCK)).decision is Decision.MATCH


def test_a_request_has_exactly_one_chip_source() -> None:
    VerifyRequest(b"live", portrait=b"chip")
    VerifyRequest(b"live", chip_files=ChipFiles(b"dg2", b"sod"))
    for bad in ({}, {"portrait": b"chip", "chip_files": ChipFiles(b"dg2")}):
        with pytest.raises(InvalidRequest) as exc:
            VerifyRequest(b"live", **bad)
        assert exc.value.code == "missing_image"


def test_a_rejected_image_is_named_and_crosses_a_process_boundary() -> None:
    rejected = ImageRejected(ImageDecodeError("truncated"), "chip")
    assert rejected.code == "image_decode_error" and rejected.message == "chip image: truncated"
    back = pickle.loads(pickle.dumps(rejected))
    assert (back.image, back.code, back.message) == ("chip", rejected.code, rejected.message)
