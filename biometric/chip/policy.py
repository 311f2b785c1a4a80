"""What the chip check does to a verification: ``BIOMETRIC_CHIP_AUTH=off|warn|block``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus
from biometric.decide import ChipTrust, Decision, OperatingPoint, Reason, decide, reason_message

if TYPE_CHECKING:
    from biometric.chip.reader import ChipReading
    from biometric.pipeline import VerifyResult


class ChipAuthPolicy(StrEnum):
    OFF = "off"  # not checked at all (the chip shows as not verified)
    # Checked, reported and audited: a chip that fails is never a match (chip_untrusted); one
    # that could not be checked keeps the face decision, marked "chip not verified".
    WARN = "warn"
    BLOCK = "block"  # as warn, and a chip that could not be checked is refused


# Staff texts: catalogue keys reason.<code> (biometric/i18n), in every language.
REFUSAL_CODE = "chip_auth_failed"
NOT_CHECKED_CODE = "chip_auth_not_checked"


def trust(result: ChipAuthResult | None) -> ChipTrust:
    """What the decision needs to know of a passive authentication result."""
    if result is None or result.status is ChipAuthStatus.NOT_CHECKED:
        return ChipTrust.NOT_VERIFIED
    return ChipTrust.VERIFIED if result.status is ChipAuthStatus.VERIFIED else ChipTrust.FAILED


def refusal(result: ChipAuthResult | None, policy: ChipAuthPolicy) -> tuple[str, str] | None:
    """(code, staff text) of the chip reason this result gives under ``policy``, else None: a
    chip that failed (under warn or block), or one that could not be checked (under block: a
    card without EF.SOD must not slip through)."""
    if policy is ChipAuthPolicy.OFF:
        return None
    state = trust(result)
    if state is ChipTrust.FAILED:
        return REFUSAL_CODE, reason_message(REFUSAL_CODE)
    if state is ChipTrust.NOT_VERIFIED and policy is ChipAuthPolicy.BLOCK:
        return NOT_CHECKED_CODE, reason_message(NOT_CHECKED_CODE)
    return None


IMAGE_ONLY = ChipAuthResult(
    ChipAuthStatus.NOT_CHECKED,
    "a portrait image was sent, not the chip files (EF.DG2 and EF.SOD): the chip's signature "
    "was not checked",
)


def apply(result: VerifyResult, reading: ChipReading | None,
          policy: ChipAuthPolicy) -> VerifyResult:
    """Attach the chip check to a face verification (``reading`` None: only a portrait image was
    sent) and decide again with it (:func:`biometric.decide.decide`): a chip that failed is
    ``chip_untrusted``, under ``block`` one that could not be checked is ``refused``. The face
    comparison still ran: its score stays in the result and the audit (a forged chip usually
    carries the presenter's own face)."""
    auth = reading.auth if reading is not None else None
    if reading is None and policy is not ChipAuthPolicy.OFF:
        auth = IMAGE_ONLY
    result.chip_auth = None if auth is None else {**auth.to_dict(), "policy": policy.value}
    for stage, ms in (reading.timings_ms.items() if reading is not None else ()):
        result.timings_ms[stage] = ms
        result.timings_ms["total"] = result.timings_ms.get("total", 0.0) + ms
    result.chip_trust = ChipTrust.NOT_VERIFIED if policy is ChipAuthPolicy.OFF else trust(auth)
    result.decision = decide(
        result.score,
        OperatingPoint(result.threshold, result.fmr),
        result.live.reasons,
        result.chip.reasons,
        result.chip_trust,
        require_verified_chip=policy is ChipAuthPolicy.BLOCK,
    )
    refused = refusal(auth, policy)
    if refused is not None and result.decision in (Decision.CHIP_UNTRUSTED, Decision.REFUSED):
        result.reasons.insert(0, Reason(code=refused[0], image="chip", message=refused[1]))
    return result
