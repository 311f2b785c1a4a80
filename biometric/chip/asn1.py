"""ASN.1 types of ICAO 9303-10/-12 not in asn1crypto, declared with asn1crypto's core classes."""

from __future__ import annotations

from typing import ClassVar

from asn1crypto import algos, core, x509

# ICAO 9303-10 (LDS security object) and 9303-12 (CSCA master list) content types.
LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"
CSCA_MASTER_LIST_OID = "2.23.136.1.1.2"


class DataGroupHash(core.Sequence):
    _fields: ClassVar[list] = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    _fields: ClassVar[list] = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):
    """LDSSecurityObject ::= SEQUENCE { version, hashAlgorithm, dataGroupHashValues,
    ldsVersionInfo OPTIONAL (v1 only) }."""

    _fields: ClassVar[list] = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


class CertificateSet(core.SetOf):
    _child_spec = x509.Certificate


class CscaMasterList(core.Sequence):
    """CscaMasterList ::= SEQUENCE { version, certList SET OF Certificate }."""

    _fields: ClassVar[list] = [("version", core.Integer), ("cert_list", CertificateSet)]
