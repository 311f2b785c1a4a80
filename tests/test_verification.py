"""The decision of a verification as a pure function of the face evidence, the liveness check,
the chip's passive authentication and the policies: every combination, no model loaded.
Inputs are constructed values (labelled: no photo is involved)."""

from __future__ import annotations

import pickle

import pytest

from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus
from biometric.chip.policy import ChipAuthPolicy
from biometric.decide import (
    ChipTrust,
    Decision,
    OperatingPoint,
    RetakeReason,
    chip_problems,
    reason,
)
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
    chip_trust,
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
    (-0.2, Decision.NO_MATCH), (None, Decision.MANUAL_CHECK)])
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
def test_policy_off_ignores_the_chip(auth: ChipAuthResult | None) -> None:
    for score, expected in ((0.9, Decision.MATCH), (0.1, Decision.NO_MATCH)):
        verdict = decide(FaceEvidence(score, POINT), None, auth,
                         Policies(chip_auth=ChipAuthPolicy.OFF))
        assert verdict.decision is expected and verdict.reasons == ()
        assert verdict.chip_trust is ChipTrust.NOT_VERIFIED
    assert chip_refusal(auth, ChipAuthPolicy.OFF) is None


@pytest.mark.parametrize("auth", FAILED, ids=lambda a: a.status.value)
@pytest.mark.parametrize("policy", [ChipAuthPolicy.WARN, ChipAuthPolicy.BLOCK])
def test_a_chip_that_failed_is_never_a_match(auth: ChipAuthResult, policy: ChipAuthPolicy) -> None:
    """A forged or altered chip (the presenter's own face in it) under the default policy too."""
    for score in (0.9, 0.1, None):
        verdict = decide(FaceEvidence(score, POINT), None, auth, Policies(chip_auth=policy))
        assert verdict.decision is Decision.CHIP_UNTRUSTED
        assert verdict.chip_trust is ChipTrust.FAILED
        assert (verdict.reasons[0].code, verdict.reasons[0].image) == (CHIP_REFUSED, "chip")


@pytest.mark.parametrize("auth", [NOT_CHECKED, None])
def test_warn_keeps_the_face_decision_of_an_unchecked_chip_marked_not_verified(
        auth: ChipAuthResult | None) -> None:
    for score, expected in ((0.9, Decision.MATCH), (0.1, Decision.NO_MATCH)):
        verdict = decide(FaceEvidence(score, POINT), None, auth, Policies())
        assert verdict.decision is expected and verdict.reasons == ()
        assert verdict.chip_trust is ChipTrust.NOT_VERIFIED
    verified = decide(FaceEvidence(0.9, POINT), None, VERIFIED, Policies())
    assert verified.chip_trust is ChipTrust.VERIFIED
    assert chip_trust(VERIFIED) is ChipTrust.VERIFIED


@pytest.mark.parametrize("auth", [NOT_CHECKED, None])
def test_block_refuses_a_chip_that_was_not_checked(auth: ChipAuthResult | None) -> None:
    verdict = decide(FaceEvidence(0.9, POINT), None, auth, Policies(chip_auth=ChipAuthPolicy.BLOCK))
    assert verdict.decision is Decision.REFUSED
    assert [r.code for r in verdict.reasons] == [CHIP_NOT_CHECKED]


def test_a_failed_chip_keeps_the_face_reasons_after_its_own() -> None:
    face = FaceEvidence(None, POINT, (DARK,))
    verdict = decide(face, None, FAILED[0], Policies(chip_auth=ChipAuthPolicy.BLOCK))
    assert verdict.decision is Decision.CHIP_UNTRUSTED
    assert [r.code for r in verdict.reasons] == [CHIP_REFUSED, "too_dark"]
    assert decide(FaceEvidence(0.9, POINT), None, VERIFIED,
                  Policies(chip_auth=ChipAuthPolicy.BLOCK)).decision is Decision.MATCH


def test_chip_portrait_problems_are_not_retakes() -> None:
    """Pose and lighting of a chip portrait are no reason; no usable face is a manual check."""
    assert chip_problems(["head_turned", "head_tilted_up_down", "too_dark"]) == []
    unusable = chip_problems(["no_face"])
    assert [(r.code, r.image) for r in unusable] == [("chip_no_face", "chip")]
    verdict = decide(FaceEvidence(None, POINT, (), tuple(unusable)), None, VERIFIED, Policies())
    assert verdict.decision is Decision.MANUAL_CHECK
    assert [r.code for r in verdict.reasons] == ["chip_no_face"]
    assert "thủ công" in verdict.reasons[0].text("vi")  # staff check by hand
    # A live problem is still a retake: the citizen can fix that one first.
    face = FaceEvidence(None, POINT, (DARK,), tuple(unusable))
    assert decide(face, None, VERIFIED, Policies()).decision is Decision.RETAKE


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


def test_display_score_is_fifty_at_the_decision_threshold_on_either_scale() -> None:
    """The staff score: 50 at the threshold of the decision's FMR whatever the raw scale (the
    fusion's z-scores, a cosine), ten times rarer impostors per 50/3 points at FMR 1e-3."""
    from biometric.decide import ScoreScale

    fused = ScoreScale(tuple(OperatingPoint(t, f) for f, t in
                             ((1e-2, 2.08), (1e-3, 2.363), (1e-4, 2.52), (1e-5, 2.52))), 1e-3)
    cosine = ScoreScale(tuple(OperatingPoint(t, f) for f, t in
                              ((1e-2, 0.547), (1e-3, 0.613), (1e-4, 0.657))), 1e-3)
    assert fused.display(2.363) == 50 and cosine.display(0.613) == 50
    assert fused.display(2.08) == 33 and fused.display(2.52) == 67  # 1e-2, 1e-4 (tie: 1e-4)
    assert cosine.display(0.547) == 33 and cosine.display(0.657) == 67
    raw = [-1.0, 0.0, 1.0, 2.0, 2.2, 2.4, 2.6, 3.0, 9.0]
    shown = [fused.display(r) for r in raw]
    assert shown == sorted(shown) and shown[0] == 0 and shown[-1] == 100
    assert fused.display(None) is None
    assert ScoreScale((OperatingPoint(0.5, 1e-3),), 1e-3).display(0.7) is None  # no slope
    assert ScoreScale(cosine.points, 1e-2).display(0.547) == 50  # another operating point
