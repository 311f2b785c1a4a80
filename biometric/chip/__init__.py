"""ICAO 9303 chip data: read the portrait in EF.DG2 and check EF.SOD (passive authentication).

Modules, one job each: ``tlv`` (BER-TLV elements with offsets), ``dg2`` (CBEFF and the
ISO/IEC 19794-5 facial record), ``lds`` (the LDSSecurityObject ASN.1), ``sod`` (EF.SOD as CMS
SignedData), ``signatures`` (RSA PKCS#1 v1.5 / PSS and ECDSA checks), ``trust`` (CSCA
certificates, master lists, CRLs), ``passive_auth`` (the checks and their result) and
``policy`` (what a failed check does to a verification).
"""
