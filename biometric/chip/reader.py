"""One call for what a counter sends: EF.DG2 (and EF.SOD, EF.DG1) in, the portrait and the
passive authentication result out, with the time each part took."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from biometric.chip.dg2 import Dg2, parse_dg2
from biometric.chip.passive_auth import ChipAuthResult, authenticate
from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.sod import parse_sod
from biometric.chip.trust import TrustStore


@dataclass(frozen=True)
class ChipReading:
    dg2: Dg2
    auth: ChipAuthResult | None  # None under the "off" policy
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def portrait(self) -> bytes:
        return self.dg2.portrait.image


def read_chip(
    dg2: bytes,
    sod: bytes | None = None,
    trust: TrustStore | None = None,
    dg1: bytes | None = None,
    policy: ChipAuthPolicy = ChipAuthPolicy.WARN,
) -> ChipReading:
    """Parse EF.DG2 and, unless the policy is off, authenticate it against EF.SOD. Malformed
    files raise :class:`biometric.chip.errors.ChipDataError` (tag and offset named)."""
    start = time.perf_counter()
    parsed = parse_dg2(dg2)
    timings = {"dg2_parse": (time.perf_counter() - start) * 1000.0}
    auth = None
    if policy is not ChipAuthPolicy.OFF:
        start = time.perf_counter()
        auth = authenticate(dg2, parse_sod(sod) if sod else None, trust, dg1)
        timings["chip_auth"] = (time.perf_counter() - start) * 1000.0
    return ChipReading(parsed, auth, timings)
