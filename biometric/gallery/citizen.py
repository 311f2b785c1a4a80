"""Citizen ids: 12 ASCII digits (the chip-embedded citizen ID card number)."""

from __future__ import annotations

import re

from biometric.gallery.errors import InvalidCitizenId

# ASCII digits only: ``\d`` also matches full-width and other Unicode digits, which would make
# a second claimant for the same person.
CITIZEN_ID_PATTERN = r"^[0-9]{12}$"
CITIZEN_ID = re.compile(CITIZEN_ID_PATTERN)


def check_citizen_id(citizen_id: str) -> str:
    if not CITIZEN_ID.fullmatch(citizen_id or ""):
        raise InvalidCitizenId(f"citizen id must be 12 digits, got {citizen_id!r}")
    return citizen_id
