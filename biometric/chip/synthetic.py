"""SYNTHETIC chip documents for tests, benchmarks and demonstrations: a test CSCA and Document
Signer made with ``cryptography``, an EF.DG2 wrapped around a real photo, and an EF.SOD signed
over it. Nothing here is a real country's key or certificate; every name says "SYNTHETIC"."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from PIL import Image

from biometric.chip import dg2 as dg2mod
from biometric.chip.asn1 import (
    CSCA_MASTER_LIST_OID,
    LDS_SECURITY_OBJECT_OID,
    CscaMasterList,
    LdsSecurityObject,
)
from biometric.chip.signatures import HASHES

KEY_KINDS = ("ecdsa", "rsa_pkcs1v15", "rsa_pss")


@dataclass(frozen=True)
class Party:
    """A key and its certificate (a CSCA or a Document Signer)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    kind: str  # one of KEY_KINDS: how this party signs

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common: str, country: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SYNTHETIC test PKI (not a real issuer)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common),
    ])


def _key(kind: str):
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(key, kind: str, data: bytes, digest: str = "sha256") -> bytes:
    algorithm = HASHES[digest]()
    if kind == "ecdsa":
        return key.sign(data, ec.ECDSA(algorithm))
    if kind == "rsa_pss":
        pss = padding.PSS(mgf=padding.MGF1(HASHES[digest]()), salt_length=algorithm.digest_size)
        return key.sign(data, pss, algorithm)
    return key.sign(data, padding.PKCS1v15(), algorithm)


def _signature_algorithm(kind: str, digest: str = "sha256") -> dict:
    if kind == "ecdsa":
        return {"algorithm": f"{digest}_ecdsa"}
    if kind == "rsa_pss":
        return {"algorithm": "rsassa_pss", "parameters": {
            "hash_algorithm": {"algorithm": digest},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": digest}},
            "salt_length": HASHES[digest]().digest_size,
            "trailer_field": "trailer_field_bc",
        }}
    return {"algorithm": f"{digest}_rsa"}


def make_party(common: str, kind: str = "ecdsa", issuer: Party | None = None,
               country: str = "VN", not_before: datetime | None = None,
               days: int = 3650) -> Party:
    """A CSCA (self-signed, ``issuer`` None) or a Document Signer issued by ``issuer``."""
    key = _key(kind)
    start = not_before or datetime.now(UTC) - timedelta(days=30)
    name = _name(common, country)
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    ca = issuer is None
    builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                                    critical=True)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False), critical=True)
    signer = issuer or Party(key, None, kind)  # type: ignore[arg-type]
    rsa_padding = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                   if signer.kind == "rsa_pss" else None)
    cert = builder.sign(signer.key, hashes.SHA256(), rsa_padding=rsa_padding)
    return Party(key, cert, kind)


def portrait_jpeg(photo: bytes, height: int = 320, quality: int = 85) -> tuple[bytes, int, int]:
    """A real photo re-encoded as a chip-sized JPEG (DG2 portraits are ~240x320, 10-20 KB)."""
    img = Image.open(io.BytesIO(photo)).convert("RGB")
    img = img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue(), img.width, img.height


def _element(tag: int, value: bytes) -> bytes:
    """A BER-TLV element (asn1crypto's encoder) from ICAO's tag bytes (0x7F61, 0x5F2E, 0x02)."""
    first = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    cls, method, number = first[0] >> 6, (first[0] >> 5) & 1, first[0] & 0x1F
    if number == 0x1F:
        number = first[1] & 0x7F  # one-byte tag numbers suffice for DG2's tags
    return core.Asn1Value(class_=cls, tag=number, method=method, contents=value).dump()


def make_dg2(image: bytes, width: int, height: int, data_type: str = "jpeg") -> bytes:
    """EF.DG2 holding one ISO/IEC 19794-5:2005 facial record (token frontal, no points)."""
    code = {v: k for k, v in dg2mod.DATA_TYPES.items()}[data_type]
    facial_info_len = dg2mod.FACIAL_INFO.size + dg2mod.IMAGE_INFO.size + len(image)
    record_body = (
        dg2mod.FACIAL_INFO.pack(facial_info_len, 0, 0, 0, 0, b"\0\0\0", 0, b"\0\0\0", b"\0\0\0")
        + dg2mod.IMAGE_INFO.pack(2, code, width, height, 1, 2, 0, 0)
        + image
    )
    record = dg2mod.RECORD_HEADER.pack(
        dg2mod.FORMAT_ID, dg2mod.VERSION_2005, dg2mod.RECORD_HEADER.size + len(record_body), 1
    ) + record_body
    header = b"".join(_element(t, v) for t, v in (
        (0x80, b"\x01\x01"), (0x81, b"\x02"), (0x87, b"\x01\x01"), (0x88, b"\x00\x08")))
    template = _element(0x7F60, _element(0xA1, header) + _element(0x5F2E, record))
    return _element(0x75, _element(0x7F61, _element(0x02, b"\x01") + template))


def make_sod(groups: dict[int, bytes], signer: Party, digest: str = "sha256",
             hash_oid: str | None = None, signature_oid: str | None = None) -> bytes:
    """EF.SOD over the given data groups, signed by ``signer`` (a Document Signer).
    ``hash_oid`` labels the LDS hash algorithm with another OID (an unknown-algorithm test);
    ``signature_oid`` names the signature algorithm by a bare key-type OID, as some issuers do."""
    lds = LdsSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": hash_oid or digest},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": hashlib.new(digest, d).digest()}
            for n, d in sorted(groups.items())
        ],
    })
    return _element(0x77, _signed_data(LDS_SECURITY_OBJECT_OID, lds.dump(), signer, digest,
                                       signature_oid))


def make_master_list(cscas: list[x509.Certificate], signer: Party) -> bytes:
    """An ICAO CSCA master list of ``cscas``, signed by ``signer`` (a master list signer)."""
    content = CscaMasterList({
        "version": 0,
        "cert_list": [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
                      for c in cscas],
    })
    return _signed_data(CSCA_MASTER_LIST_OID, content.dump(), signer, "sha256")


def make_crl(csca: Party, revoked: list[x509.Certificate]) -> bytes:
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(csca.cert.subject)
               .last_update(now - timedelta(days=1)).next_update(now + timedelta(days=30)))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(now - timedelta(hours=1)).build())
    return builder.sign(csca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _signed_data(content_type: str, content: bytes, signer: Party, digest: str,
                 signature_oid: str | None = None) -> bytes:
    cert = asn1_x509.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
    attrs = cms.CMSAttributes([
        {"type": "content_type", "values": [content_type]},
        {"type": "message_digest", "values": [hashlib.new(digest, content).digest()]},
    ])
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": {"issuer_and_serial_number": {"issuer": cert.issuer,
                                             "serial_number": cert.serial_number}},
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": attrs,
        "signature_algorithm": ({"algorithm": signature_oid} if signature_oid
                                else _signature_algorithm(signer.kind, digest)),
        "signature": _sign(signer.key, signer.kind, attrs.dump(), digest),
    })
    signed = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": digest}],
        "encap_content_info": {"content_type": content_type, "content": content},
        "certificates": [cert],
        "signer_infos": [signer_info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
