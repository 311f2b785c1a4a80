"""CMS SignedData (RFC 5652) as ICAO uses it for EF.SOD and CSCA master lists: parsed with
asn1crypto, the single signer's signature checked with :mod:`biometric.chip.signatures`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from biometric.chip import signatures
from biometric.chip.errors import ChipDataError
from biometric.chip.signatures import UnsupportedAlgorithm


class SignatureCheckFailed(Exception):
    """The signature, or the message digest it covers, does not match."""


@dataclass(frozen=True)
class SignedMessage:
    content_type: str  # dotted OID of the encapsulated content
    content: bytes  # the encapsulated content (DER), exactly as signed
    certificates: list[x509.Certificate]
    signer_info: cms.SignerInfo
    asn1_certificates: list[asn1_x509.Certificate]  # the same, as asn1crypto parsed them

    @property
    def signer(self) -> x509.Certificate | None:
        """The certificate among ``certificates`` that the signer info names (issuer and serial
        number, compared with X.520 name matching, or subject key identifier)."""
        sid = self.signer_info["sid"]
        for cert, parsed in zip(self.certificates, self.asn1_certificates, strict=True):
            if sid.name == "issuer_and_serial_number":
                ias = sid.chosen
                # Byte equality first; X.520 matching (stringprep, slow) only if the encodings
                # differ, e.g. PrintableString here and UTF8String there.
                if parsed.serial_number == ias["serial_number"].native and (
                        parsed.issuer.dump() == ias["issuer"].dump()
                        or parsed.issuer == ias["issuer"]):
                    return cert
            elif parsed.key_identifier == sid.chosen.native:
                return cert
        return None

    def verify(self, cert: x509.Certificate) -> None:
        """Check the signed attributes' message digest and the signature with ``cert``'s key.
        Raises :class:`SignatureCheckFailed` or :class:`UnsupportedAlgorithm`."""
        info = self.signer_info
        digest = info["digest_algorithm"]["algorithm"].native
        attrs = info["signed_attrs"]
        if attrs.native is None or len(attrs) == 0:
            signed = self.content  # no signed attributes: the content itself is signed
        else:
            values = {a["type"].native: a["values"] for a in attrs}
            if "message_digest" not in values or "content_type" not in values:
                raise SignatureCheckFailed("signed attributes lack the message digest or "
                                           "content type")
            if values["content_type"][0].dotted != self.content_type:
                raise SignatureCheckFailed("signed content type differs from the content's")
            if digest not in signatures.HASHES:
                raise UnsupportedAlgorithm(f"digest algorithm {digest!r} is not supported")
            if hashlib.new(digest, self.content).digest() != values["message_digest"][0].native:
                raise SignatureCheckFailed("the message digest does not match the content")
            signed = attrs.untag().dump()  # signed as a SET (RFC 5652 5.4), original bytes
        try:
            signatures.verify(cert.public_key(), info["signature"].native, signed,
                              info["signature_algorithm"], digest)
        except InvalidSignature as exc:
            raise SignatureCheckFailed(str(exc) or "the signature does not verify") from None


def parse_signed_data(der: bytes, error: type[ChipDataError], what: str) -> SignedMessage:
    """Parse a DER ContentInfo holding SignedData with exactly one signer (ICAO 9303-10 4.6.2)."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise error(f"{what}: content type {info['content_type'].dotted} is not SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content = encap["content"]
        if content.native is None:
            raise error(f"{what}: SignedData carries no content")
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise error(f"{what}: {len(signer_infos)} signers; exactly one expected")
        included = signed["certificates"]  # optional: absent, the signer cannot be found
        parsed = ([] if isinstance(included, core.Void)
                  else [c.chosen for c in included if c.name == "certificate"])
        certs = [x509.load_der_x509_certificate(c.dump()) for c in parsed]
        message = SignedMessage(encap["content_type"].dotted, content.contents, certs,
                                signer_infos[0], parsed)
        _ = message.signer_info["signature_algorithm"]["algorithm"].dotted  # parse now
    except (ValueError, TypeError, KeyError) as exc:
        raise error(f"{what}: not a valid CMS SignedData structure: {exc}") from None
    return message
