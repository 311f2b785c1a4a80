"""Check one signature with ``cryptography``: RSA PKCS#1 v1.5, RSA-PSS and ECDSA, the algorithms
ICAO 9303-12 allows for EF.SOD. Unknown algorithms are refused, never skipped: a check that
cannot be done has failed."""

from __future__ import annotations

from asn1crypto import algos
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

EC_PUBLIC_KEY = "1.2.840.10045.2.1"


class UnsupportedAlgorithm(Exception):
    """The signature or hash algorithm is not one this service can check."""


def hash_for(name: str) -> hashes.HashAlgorithm:
    if name not in HASHES:
        raise UnsupportedAlgorithm(f"hash algorithm {name!r} is not supported "
                                   f"({', '.join(HASHES)} are)")
    return HASHES[name]()


def verify(public_key, signature: bytes, data: bytes, algorithm: algos.SignedDigestAlgorithm,
           digest: str) -> None:
    """Raise :class:`InvalidSignature` if ``signature`` over ``data`` is wrong,
    :class:`UnsupportedAlgorithm` if it cannot be checked. ``digest`` is the signer's digest
    algorithm (used where the signature algorithm names none, as bare rsaEncryption does)."""
    oid = algorithm["algorithm"].dotted
    try:
        # Some issuers name the key type (id-ecPublicKey) instead of an ECDSA-with-hash OID.
        kind = "ecdsa" if oid == EC_PUBLIC_KEY else algorithm.signature_algo
    except ValueError:
        raise UnsupportedAlgorithm(f"signature algorithm {oid} is not supported") from None
    if kind == "rsassa_pss":
        params = algorithm["parameters"]
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature("RSA-PSS signature but the signer's key is not RSA")
        pss = padding.PSS(mgf=padding.MGF1(hash_for(mgf_hash)),
                          salt_length=params["salt_length"].native)
        public_key.verify(signature, data, pss, hash_for(hash_name))
        return
    try:
        hash_name = digest if oid == EC_PUBLIC_KEY else algorithm.hash_algo
    except ValueError:  # bare rsaEncryption: the signer's digest algorithm says
        hash_name = digest
    if kind == "rsassa_pkcs1v15":
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature("RSA signature but the signer's key is not RSA")
        public_key.verify(signature, data, padding.PKCS1v15(), hash_for(hash_name))
    elif kind == "ecdsa":
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InvalidSignature("ECDSA signature but the signer's key is not EC")
        public_key.verify(signature, data, ec.ECDSA(hash_for(hash_name)))
    else:
        raise UnsupportedAlgorithm(f"signature algorithm {kind} ({oid}) is not supported")
