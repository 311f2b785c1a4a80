"""How far a verification trusts the chip check: ``BIOMETRIC_CHIP_AUTH=off|warn|block``.

Only the names live here; what each does to a decision is decided in
:func:`biometric.verification.decide` (the chip package knows nothing of verification)."""

from __future__ import annotations

from enum import StrEnum


class ChipAuthPolicy(StrEnum):
    OFF = "off"  # not checked at all
    WARN = "warn"  # checked, reported and audited; the face decision stands
    BLOCK = "block"  # anything but "verified" refuses the verification
