"""EF.SOD (ICAO 9303-10 4.6.2): tag 77 around a CMS SignedData over an LDSSecurityObject, the
hashes of the chip's data groups signed by the issuing country's Document Signer."""

from __future__ import annotations

from dataclasses import dataclass

from biometric.chip import tlv
from biometric.chip.asn1 import LDS_SECURITY_OBJECT_OID, LdsSecurityObject
from biometric.chip.errors import SodFormatError
from biometric.chip.signed_data import SignedMessage, parse_signed_data

SOD_TAG = 0x77


@dataclass(frozen=True)
class Sod:
    message: SignedMessage
    hash_algorithm: str  # asn1crypto's name ("sha256") or, when unknown, the dotted OID
    hashes: dict[int, bytes]  # data group number -> hash


def parse_sod(data: bytes) -> Sod:
    """Parse EF.SOD bytes (with or without the tag 77 wrapper); :class:`SodFormatError` names
    the tag and offset or the ASN.1 structure that is wrong."""
    if not data:
        raise SodFormatError("EF.SOD is empty (zero bytes)")
    der = tlv.read(data, 0, SodFormatError, what="EF.SOD").value if data[0] == SOD_TAG else data
    message = parse_signed_data(der, SodFormatError, "EF.SOD")
    if message.content_type != LDS_SECURITY_OBJECT_OID:
        raise SodFormatError(f"EF.SOD: signed content type {message.content_type} is not "
                             f"the LDS security object ({LDS_SECURITY_OBJECT_OID})")
    try:
        lds = LdsSecurityObject.load(message.content, strict=True)
        algorithm = lds["hash_algorithm"]["algorithm"]
        name = algorithm.native if algorithm.native != algorithm.dotted else algorithm.dotted
        hashes: dict[int, bytes] = {}
        for item in lds["data_group_hash_values"]:
            number = item["data_group_number"].native
            if not 1 <= number <= 16 or number in hashes:
                raise SodFormatError(f"EF.SOD: data group number {number} is invalid or "
                                     "repeated")
            hashes[number] = item["data_group_hash_value"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise SodFormatError(f"EF.SOD: the LDS security object is malformed: {exc}") from None
    return Sod(message, name, hashes)
