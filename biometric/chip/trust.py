"""The trust store: the CSCA certificates a country publishes (a folder of certificate files, or
an ICAO CSCA master list) and, when configured, their CRLs.

A folder may hold ``.pem``/``.crt``/``.cer``/``.der`` certificates, ``.ml`` master lists and
``.crl`` revocation lists (DER or PEM). A master list is loaded only if its own signature checks
out and its signer is issued by a CSCA in the list: a damaged or edited file is refused at
start-up rather than silently trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from biometric.chip.asn1 import CSCA_MASTER_LIST_OID, CscaMasterList
from biometric.chip.errors import TrustStoreError
from biometric.chip.signatures import UnsupportedAlgorithm
from biometric.chip.signed_data import SignatureCheckFailed, parse_signed_data

CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
MASTER_LIST_SUFFIXES = {".ml"}
CRL_SUFFIXES = {".crl"}


def _load_certs(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN X509 CRL-----" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Issuer name matches and ``issuer``'s key verifies the certificate's signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def load_master_list(data: bytes, name: str = "master list") -> list[x509.Certificate]:
    """The CSCA certificates of an ICAO master list, after checking its signature."""
    message = parse_signed_data(data, TrustStoreError, name)
    if message.content_type != CSCA_MASTER_LIST_OID:
        raise TrustStoreError(f"{name}: content type {message.content_type} is not a CSCA "
                              f"master list ({CSCA_MASTER_LIST_OID})")
    try:
        certs = [x509.load_der_x509_certificate(c.dump())
                 for c in CscaMasterList.load(message.content, strict=True)["cert_list"]]
    except ValueError as exc:
        raise TrustStoreError(f"{name}: malformed certificate list: {exc}") from None
    signer = message.signer
    if signer is None:
        raise TrustStoreError(f"{name}: the signer's certificate is not included")
    if not any(issued_by(signer, csca) for csca in certs):
        raise TrustStoreError(f"{name}: its signer ({signer.subject.rfc4514_string()}) is not "
                              "issued by a CSCA in the list")
    try:
        message.verify(signer)
    except (SignatureCheckFailed, UnsupportedAlgorithm) as exc:
        raise TrustStoreError(f"{name}: signature check failed: {exc}") from None
    return certs


@dataclass
class TrustStore:
    cscas: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, *paths: Path) -> TrustStore:
        """Read every certificate, master list and CRL in the given files and folders."""
        store = cls()
        for path in paths:
            if not path.exists():
                raise TrustStoreError(f"trust store {path} does not exist")
            files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
            for f in files:
                store._add_file(f)
        if not store.cscas:
            raise TrustStoreError(f"no CSCA certificate found in {', '.join(map(str, paths))}")
        return store

    def _add_file(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix not in CERT_SUFFIXES | MASTER_LIST_SUFFIXES | CRL_SUFFIXES:
            return
        data = path.read_bytes()
        try:
            if suffix in MASTER_LIST_SUFFIXES:
                self.cscas += load_master_list(data, path.name)
            elif suffix in CRL_SUFFIXES:
                self.crls.append(_load_crl(data))
            else:
                self.cscas += _load_certs(data)
        except ValueError as exc:
            raise TrustStoreError(f"{path}: not a readable certificate or CRL: {exc}") from None
        self.sources.append(str(path))

    def issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """CSCA certificates that really issued ``cert`` (name and signature)."""
        return [c for c in self.cscas if c.subject == cert.issuer and issued_by(cert, c)]

    def revoked(self, cert: x509.Certificate, issuer: x509.Certificate) -> datetime | None:
        """When ``cert`` was revoked, per a CRL of ``issuer`` whose signature checks out."""
        for crl in self.crls:
            if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return entry.revocation_date_utc
        return None
