"""What the chip check does to a verification: ``BIOMETRIC_CHIP_AUTH=off|warn|block``."""

from __future__ import annotations

from enum import StrEnum

from biometric.chip.passive_auth import ChipAuthResult, ChipAuthStatus


class ChipAuthPolicy(StrEnum):
    OFF = "off"  # not checked at all
    WARN = "warn"  # checked, reported and audited; the face decision stands
    BLOCK = "block"  # anything but "verified" refuses the verification


REFUSAL_CODE = "chip_auth_failed"
REFUSAL_TEXT = ("The chip's data failed its signature check: the card may have been altered. "
                "Do not accept it; refer to a supervisor.")
NOT_CHECKED_CODE = "chip_auth_not_checked"
NOT_CHECKED_TEXT = ("The chip's signature could not be checked (no security data from the chip, "
                    "or no CSCA trust store). Read the card's chip again; if it happens again, "
                    "refer to a supervisor.")


def refusal(result: ChipAuthResult | None, policy: ChipAuthPolicy) -> tuple[str, str] | None:
    """(code, staff text) when the policy refuses this result, else None. Under ``block`` a
    chip that did not verify is refused: a card without EF.SOD must not slip through."""
    if policy is not ChipAuthPolicy.BLOCK:
        return None
    if result is None or result.status is ChipAuthStatus.NOT_CHECKED:
        return NOT_CHECKED_CODE, NOT_CHECKED_TEXT
    if result.status is not ChipAuthStatus.VERIFIED:
        return REFUSAL_CODE, REFUSAL_TEXT
    return None
