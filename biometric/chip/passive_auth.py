"""Passive authentication (ICAO 9303-11 5.1): is the chip's data what the issuing country signed?

1. EF.SOD's signature checks out with the Document Signer (DS) certificate it carries;
2. the DS certificate was issued by a CSCA in the trust store and is not revoked (CRLs);
3. the DS and CSCA certificates are within their validity dates;
4. the hashes of DG2 (and DG1 when given) equal those in EF.SOD.

Every check runs and is reported; the result code is the most serious failure, in the order
``bad_signature`` (EF.SOD itself is not genuine), ``hash_mismatch`` (the data differs from what
was signed), ``untrusted_signer``, ``expired``, then ``not_checked`` (no EF.SOD, or no trust
store to judge the signer by) and ``verified``. A check that cannot be done for want of an
algorithm fails, so an attacker gains nothing by naming an exotic one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import NameOID

from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.signatures import HASHES, UnsupportedAlgorithm
from biometric.chip.signed_data import SignatureCheckFailed
from biometric.chip.sod import Sod
from biometric.chip.trust import TrustStore


class ChipAuthStatus(StrEnum):
    VERIFIED = "verified"
    HASH_MISMATCH = "hash_mismatch"
    BAD_SIGNATURE = "bad_signature"
    UNTRUSTED_SIGNER = "untrusted_signer"
    EXPIRED = "expired"
    NOT_CHECKED = "not_checked"


# Most serious first: the result code is the first status among the failed checks.
SEVERITY = (
    ChipAuthStatus.BAD_SIGNATURE,
    ChipAuthStatus.HASH_MISMATCH,
    ChipAuthStatus.UNTRUSTED_SIGNER,
    ChipAuthStatus.EXPIRED,
    ChipAuthStatus.NOT_CHECKED,
)


@dataclass(frozen=True)
class Check:
    name: str  # signature, signer_trust, revocation, validity, dg2_hash, dg1_hash
    status: ChipAuthStatus  # VERIFIED when it passed
    detail: str


@dataclass(frozen=True)
class ChipAuthResult:
    status: ChipAuthStatus
    message: str
    issuer: str | None = None  # the DS certificate's issuer (the CSCA), RFC 4514
    country: str | None = None  # that issuer's country code
    signer: str | None = None  # the DS certificate's subject
    hash_algorithm: str | None = None
    checks: list[Check] = field(default_factory=list)
    policy: ChipAuthPolicy | None = None  # the policy a verification judged it under

    @property
    def failed(self) -> bool:
        return self.status not in (ChipAuthStatus.VERIFIED, ChipAuthStatus.NOT_CHECKED)


def _country(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(attrs[0].value) if attrs else None


def authenticate(
    dg2: bytes,
    sod: Sod | None,
    trust: TrustStore | None,
    dg1: bytes | None = None,
    now: datetime | None = None,
) -> ChipAuthResult:
    """Run passive authentication over the raw EF.DG2 (and EF.DG1) bytes."""
    if sod is None:
        return ChipAuthResult(ChipAuthStatus.NOT_CHECKED,
                              "no EF.SOD given: the chip photo's origin was not checked")
    now = now or datetime.now(UTC)
    ds = sod.message.signer
    checks = [_check_signature(sod, ds)]
    checks += _check_hashes(sod, {2: dg2, **({1: dg1} if dg1 is not None else {})})
    if ds is not None:
        checks += _check_signer(ds, trust, now)
    failed = [c for c in checks if c.status is not ChipAuthStatus.VERIFIED]
    status = next((s for s in SEVERITY if any(c.status is s for c in failed)),
                  ChipAuthStatus.VERIFIED)
    message = next((c.detail for c in failed if c.status is status),
                   "EF.SOD is signed by a trusted Document Signer and matches the chip data")
    return ChipAuthResult(
        status=status,
        message=message,
        issuer=ds.issuer.rfc4514_string() if ds is not None else None,
        country=_country(ds.issuer) if ds is not None else None,
        signer=ds.subject.rfc4514_string() if ds is not None else None,
        hash_algorithm=sod.hash_algorithm,
        checks=checks,
    )


def _check_signature(sod: Sod, ds: x509.Certificate | None) -> Check:
    if ds is None:
        return Check("signature", ChipAuthStatus.BAD_SIGNATURE,
                     "EF.SOD does not include the Document Signer certificate it names")
    try:
        sod.message.verify(ds)
    except (SignatureCheckFailed, UnsupportedAlgorithm) as exc:
        return Check("signature", ChipAuthStatus.BAD_SIGNATURE,
                     f"EF.SOD's signature does not verify with its Document Signer: {exc}")
    return Check("signature", ChipAuthStatus.VERIFIED, "EF.SOD signature verified")


def _check_hashes(sod: Sod, groups: dict[int, bytes]) -> list[Check]:
    checks = []
    for number, data in sorted(groups.items(), reverse=True):
        name = f"dg{number}_hash"
        if sod.hash_algorithm not in HASHES:
            checks.append(Check(name, ChipAuthStatus.HASH_MISMATCH,
                                f"EF.SOD uses hash algorithm {sod.hash_algorithm}, which this "
                                f"service cannot compute ({', '.join(HASHES)}): DG{number} "
                                "cannot be matched"))
        elif number not in sod.hashes:
            checks.append(Check(name, ChipAuthStatus.HASH_MISMATCH,
                                f"EF.SOD holds no hash for DG{number}"))
        elif hashlib.new(sod.hash_algorithm, data).digest() != sod.hashes[number]:
            checks.append(Check(name, ChipAuthStatus.HASH_MISMATCH,
                                f"DG{number} differs from what EF.SOD signed "
                                f"({sod.hash_algorithm} mismatch)"))
        else:
            checks.append(Check(name, ChipAuthStatus.VERIFIED,
                                f"DG{number} {sod.hash_algorithm} matches EF.SOD"))
    return checks


def _check_signer(ds: x509.Certificate, trust: TrustStore | None, now: datetime) -> list[Check]:
    who = ds.issuer.rfc4514_string()
    if trust is None:
        return [Check("signer_trust", ChipAuthStatus.NOT_CHECKED,
                      f"no CSCA trust store configured: the signer (issuer {who}) was not "
                      "checked")]
    issuers = trust.issuers(ds)
    if not issuers:
        # Same name, wrong key: a forger's own "CSCA" copying the real one's name, or a CSCA
        # key this service cannot use (e.g. explicit EC parameters, which cryptography refuses).
        named = any(c.subject == ds.issuer for c in trust.cscas)
        why = (f"a CSCA named {who} is in the trust store but its key does not verify the "
               "Document Signer certificate" if named else
               f"the Document Signer certificate's issuer ({who}) is not a CSCA in the trust "
               "store")
        return [Check("signer_trust", ChipAuthStatus.UNTRUSTED_SIGNER, why)]
    checks = [Check("signer_trust", ChipAuthStatus.VERIFIED, f"issued by CSCA {who}")]
    revoked = [d for d in (trust.revoked(ds, c) for c in issuers) if d is not None]
    if revoked:
        checks.append(Check("revocation", ChipAuthStatus.UNTRUSTED_SIGNER,
                            f"the Document Signer certificate was revoked on "
                            f"{revoked[0]:%Y-%m-%d} (CRL of {who})"))
    valid = [c for c in issuers if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
    if not ds.not_valid_before_utc <= now <= ds.not_valid_after_utc:
        checks.append(Check("validity", ChipAuthStatus.EXPIRED,
                            f"the Document Signer certificate is valid "
                            f"{ds.not_valid_before_utc:%Y-%m-%d} to "
                            f"{ds.not_valid_after_utc:%Y-%m-%d}, not on {now:%Y-%m-%d}"))
    elif not valid:
        checks.append(Check("validity", ChipAuthStatus.EXPIRED,
                            f"the CSCA certificate ({who}) is outside its validity dates"))
    else:
        checks.append(Check("validity", ChipAuthStatus.VERIFIED, "certificates within dates"))
    return checks
