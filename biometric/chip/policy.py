"""What the chip check does to a verification: ``BIOMETRIC_CHIP_AUTH=off|warn|block``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus
from biometric.decide import Decision, Reason, reason_message

if TYPE_CHECKING:
    from biometric.chip.reader import ChipReading
    from biometric.pipeline import VerifyResult


class ChipAuthPolicy(StrEnum):
    OFF = "off"  # not checked at all
    WARN = "warn"  # checked, reported and audited; the face decision stands
    BLOCK = "block"  # anything but "verified" refuses the verification


# Staff texts: catalogue keys reason.<code> (biometric/i18n), in every language.
REFUSAL_CODE = "chip_auth_failed"
NOT_CHECKED_CODE = "chip_auth_not_checked"


def refusal(result: ChipAuthResult | None, policy: ChipAuthPolicy) -> tuple[str, str] | None:
    """(code, staff text) when the policy refuses this result, else None. Under ``block`` a
    chip that did not verify is refused: a card without EF.SOD must not slip through."""
    if policy is not ChipAuthPolicy.BLOCK:
        return None
    if result is None or result.status is ChipAuthStatus.NOT_CHECKED:
        return NOT_CHECKED_CODE, reason_message(NOT_CHECKED_CODE)
    if result.status is not ChipAuthStatus.VERIFIED:
        return REFUSAL_CODE, reason_message(REFUSAL_CODE)
    return None


IMAGE_ONLY = ChipAuthResult(
    ChipAuthStatus.NOT_CHECKED,
    "a portrait image was sent, not the chip files (EF.DG2 and EF.SOD): the chip's signature "
    "was not checked",
)


def apply(result: VerifyResult, reading: ChipReading | None,
          policy: ChipAuthPolicy) -> VerifyResult:
    """Attach the chip check to a face verification (``reading`` None: only a portrait image was
    sent). Under ``block`` a chip that did not verify turns the decision into a refusal. The
    face comparison still ran: its score stays in the result and the audit (a forged chip
    usually carries the presenter's own face)."""
    auth = reading.auth if reading is not None else None
    if reading is None and policy is not ChipAuthPolicy.OFF:
        auth = IMAGE_ONLY
    result.chip_auth = None if auth is None else {**auth.to_dict(), "policy": policy.value}
    for stage, ms in (reading.timings_ms.items() if reading is not None else ()):
        result.timings_ms[stage] = ms
        result.timings_ms["total"] = result.timings_ms.get("total", 0.0) + ms
    refused = refusal(auth, policy)
    if refused is not None:
        result.decision = Decision.REFUSED
        result.reasons.insert(0, Reason(code=refused[0], image="chip", message=refused[1]))
    return result
