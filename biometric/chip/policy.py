"""How far a verification trusts the chip check: ``BIOMETRIC_CHIP_AUTH=off|warn|block``.

Only the names live here; what each does to a decision is decided in
:func:`biometric.verification.decide` (the chip package knows nothing of verification)."""

from __future__ import annotations

from enum import StrEnum


class ChipAuthPolicy(StrEnum):
    OFF = "off"  # not checked at all (the chip shows as not verified)
    # Checked, reported and audited: a chip that fails is never a match (chip_untrusted); one
    # that could not be checked keeps the face decision, marked "chip not verified".
    WARN = "warn"
    BLOCK = "block"  # as warn, and a chip that could not be checked is refused
