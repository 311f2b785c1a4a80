"""ICAO 9303 chip files: DG2 parsing, passive authentication and `biometric chip inspect`, on
SYNTHETIC chip files (a test PKI made here) around a real shared photo."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from chip_specimens import Specimens, build

from biometric.chip import synthetic
from biometric.chip.dg2 import parse_dg2
from biometric.chip.errors import Dg2FormatError, SodFormatError, TrustStoreError
from biometric.chip.passive_auth import ChipAuthStatus, authenticate
from biometric.chip.sod import parse_sod
from biometric.chip.trust import TrustStore
from biometric.decide import reason_message
from biometric.decode import decode_image


@pytest.fixture(scope="module")
def specimens(fr_dir: Path, tmp_path_factory) -> Specimens:
    return build(fr_dir, tmp_path_factory.mktemp("chip"))


@pytest.fixture(scope="module")
def trust(specimens: Specimens) -> TrustStore:
    return TrustStore.load(specimens.csca_dir)


def _auth(variant, trust: TrustStore):
    sod = parse_sod(variant.sod.read_bytes()) if variant.sod else None
    return authenticate(variant.dg2.read_bytes(), sod, trust)


def test_dg2_portrait_is_the_photo(specimens: Specimens, fr_dir: Path) -> None:
    face = parse_dg2(specimens.dg2_bytes).portrait
    assert (face.version, face.data_type, face.image_type) == ("010", "jpeg", "token_frontal")
    assert face.image_offset == specimens.image_offset
    decoded = decode_image(face.image)
    assert (decoded.width, decoded.height) == (face.width, face.height)


def test_every_variant_gets_its_code(specimens: Specimens, trust: TrustStore) -> None:
    for v in specimens.variants.values():
        if v.expected == "dg2_malformed":
            with pytest.raises(Dg2FormatError, match="offset 0"):
                parse_dg2(v.dg2.read_bytes())
            continue
        result = _auth(v, trust)
        assert result.status == v.expected, (v.name, result.message)
        if v.name == "ds_not_under_csca":  # a forged CSCA with the genuine one's name
            assert "its key does not verify" in result.message
        if v.sod is not None:
            assert result.issuer and "CSCA" in result.issuer and result.country == "VN"
        assert result.failed == (v.expected not in ("verified", "not_checked"))


@pytest.mark.parametrize(
    ("kind", "oid"),
    [
        ("rsa_pkcs1v15", None),
        ("rsa_pss", None),
        ("rsa_pkcs1v15", "1.2.840.113549.1.1.1"),  # bare rsaEncryption
        ("ecdsa", "1.2.840.10045.2.1"),  # bare id-ecPublicKey
    ],
)
def test_signature_algorithms(kind: str, oid: str | None, specimens: Specimens) -> None:
    csca = synthetic.make_party("SYNTHETIC CSCA", kind)
    ds = synthetic.make_party("SYNTHETIC DS", kind, issuer=csca)
    dg2 = specimens.dg2_bytes
    sod = parse_sod(synthetic.make_sod({2: dg2}, ds, digest="sha384", signature_oid=oid))
    assert authenticate(dg2, sod, TrustStore([csca.cert])).status is ChipAuthStatus.VERIFIED
    unknown = parse_sod(synthetic.make_sod({2: dg2}, ds, signature_oid="1.3.6.1.4.1.99999.2"))
    result = authenticate(dg2, unknown, TrustStore([csca.cert]))
    assert result.status is ChipAuthStatus.BAD_SIGNATURE and "not supported" in result.message


def test_bad_signature_dg1_and_no_trust_store(specimens: Specimens, trust: TrustStore) -> None:
    csca_ds = synthetic.make_party("SYNTHETIC DS", issuer=synthetic.make_party("x"))
    dg2, dg1 = specimens.dg2_bytes, b"\x61\x5b\x5f\x1f\x58" + b"P<VNM" * 17 + b"<<<"
    sod_bytes = synthetic.make_sod({1: dg1, 2: dg2}, csca_ds)
    # A hash inside the signed content changed after signing: the signature no longer covers it.
    digest = synthetic.hashlib.sha256(dg2).digest()
    forged = sod_bytes.replace(digest, synthetic.hashlib.sha256(b"other").digest())
    result = authenticate(dg2, parse_sod(forged), trust)
    assert result.status is ChipAuthStatus.BAD_SIGNATURE, result.message
    store = TrustStore([csca_ds.cert])  # trusting the DS itself is not enough: it is no CSCA
    untrusted = authenticate(dg2, parse_sod(sod_bytes), store)
    assert untrusted.status == "untrusted_signer" and "not a CSCA" in untrusted.message
    genuine = parse_sod(sod_bytes)
    assert authenticate(dg2, genuine, None, dg1=dg1).status is ChipAuthStatus.NOT_CHECKED
    assert authenticate(dg2, genuine, None, dg1=dg1 + b"x").status == "hash_mismatch"


def test_signer_found_by_name_or_key_identifier(specimens: Specimens, trust) -> None:
    sod = parse_sod(specimens.variants["genuine"].sod.read_bytes())
    message = sod.message
    ski = message.asn1_certificates[0].key_identifier
    info = cms.SignerInfo.load(message.signer_info.dump())
    info["sid"] = cms.SignerIdentifier({"subject_key_identifier": ski})
    by_ski = dataclasses.replace(message, signer_info=info)
    assert by_ski.signer == message.signer is not None
    # The same issuer name encoded differently (PrintableString): found by X.520 matching.
    issuer = message.asn1_certificates[0].issuer
    reencoded = asn1_x509.Name.build(dict(issuer.native), use_printable=True)
    assert reencoded.dump() != issuer.dump()
    info["sid"] = cms.SignerIdentifier({"issuer_and_serial_number": {
        "issuer": reencoded, "serial_number": message.asn1_certificates[0].serial_number}})
    assert dataclasses.replace(message, signer_info=info).signer == message.signer
    info["sid"] = cms.SignerIdentifier({"subject_key_identifier": b"\0" * 20})
    assert dataclasses.replace(message, signer_info=info).signer is None
    unsigned = dataclasses.replace(sod, message=dataclasses.replace(message, signer_info=info))
    assert authenticate(specimens.dg2_bytes, unsigned, trust).status == "bad_signature"


def test_master_list_and_crl(specimens: Specimens, tmp_path: Path) -> None:
    csca = synthetic.make_party("SYNTHETIC CSCA")
    ds = synthetic.make_party("SYNTHETIC DS", issuer=csca)
    ml_signer = synthetic.make_party("SYNTHETIC master list signer", issuer=csca)
    master_list = synthetic.make_master_list([csca.cert], ml_signer)
    (tmp_path / "countries.ml").write_bytes(master_list)
    dg2 = specimens.dg2_bytes
    sod = parse_sod(synthetic.make_sod({2: dg2}, ds))
    store = TrustStore.load(tmp_path)
    assert authenticate(dg2, sod, store).status is ChipAuthStatus.VERIFIED
    (tmp_path / "csca.crl").write_bytes(synthetic.make_crl(csca, [ds.cert]))
    revoked = authenticate(dg2, sod, TrustStore.load(tmp_path))
    assert revoked.status is ChipAuthStatus.UNTRUSTED_SIGNER and "revoked" in revoked.message
    edited = bytearray(master_list)
    edited[len(edited) // 3] ^= 0x01
    (tmp_path / "countries.ml").write_bytes(bytes(edited))
    with pytest.raises(TrustStoreError):
        TrustStore.load(tmp_path)


def test_csca_expiry_and_clock(specimens: Specimens, trust: TrustStore) -> None:
    v = specimens.variants["genuine"]
    sod = parse_sod(v.sod.read_bytes())
    later = datetime.now(UTC) + timedelta(days=3700)
    assert authenticate(specimens.dg2_bytes, sod, trust, now=later).status == "expired"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d[:3], "offset 0"),
        (lambda d: d.replace(b"FAC\x00", b"FAX\x00"), "format identifier"),
        (lambda d: d.replace(b"010\x00", b"030\x00"), "version"),
        (lambda d: d.replace(b"\x02\x01\x01\x7f\x60", b"\x02\x01\x02\x7f\x60"), "tag 02"),
        (lambda d: d.replace(b"\xff\xd8\xff", b"\x00\xd8\xff", 1), "not JPEG"),
        (lambda d: b"\x76" + d[1:], "tag 76 at offset 0: EF.DG2: expected tag 75"),
    ],
)
def test_malformed_dg2_names_tag_and_offset(specimens: Specimens, edit, match: str) -> None:
    with pytest.raises(Dg2FormatError, match=match) as info:
        parse_dg2(edit(specimens.dg2_bytes))
    assert info.value.offset is not None and info.value.tag
    assert f"at offset {info.value.offset}" in str(info.value)


def test_random_damage_never_crashes(specimens: Specimens) -> None:
    """Random truncations and byte changes in the headers: parsed, or a Dg2FormatError."""
    rng = random.Random(14)
    data = specimens.dg2_bytes
    header = specimens.image_offset + 4
    refused = 0
    for _ in range(400):
        damaged = bytearray(data[: rng.randrange(1, len(data) + 1)])
        for _ in range(rng.randrange(0, 3)):
            k = rng.randrange(min(header, len(damaged)))
            damaged[k] = rng.randrange(256)
        try:
            assert parse_dg2(bytes(damaged)).portrait.image
        except Dg2FormatError as exc:
            assert "offset" in str(exc)
            refused += 1
    assert refused > 300  # nearly every cut or change in the headers is caught
    for junk in (b"", b"\x77", b"\x77\x82\xff\xff", b"\x30\x03\x02\x01\x00"):
        with pytest.raises(SodFormatError):
            parse_sod(junk)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "biometric.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_cli_chip_inspect_every_variant(specimens: Specimens) -> None:
    """In-process (typer's runner): a subprocess per variant costs seconds of imports each."""
    from typer.testing import CliRunner

    from biometric.cli import app

    runner = CliRunner()
    for v in specimens.variants.values():
        args = ["chip", "inspect", str(v.dg2), "--csca", str(specimens.csca_dir), "--json"]
        if v.sod:
            args += ["--sod", str(v.sod)]
        proc = runner.invoke(app, args)
        if v.expected == "dg2_malformed":
            assert proc.exit_code == 2 and "dg2_malformed" in proc.stderr
            assert "offset 0" in proc.stderr
            continue
        assert proc.exit_code == (1 if v.expected not in ("verified", "not_checked") else 0)
        out = json.loads(proc.stdout)
        assert out["chip_auth"]["status"] == v.expected, (v.name, out["chip_auth"])


def test_cli_verify_dg2(specimens: Specimens, fr_dir: Path) -> None:
    live = str(fr_dir / "identities/kit_harington/john1.jpeg")
    common = ["--csca", str(specimens.csca_dir), "--json"]
    genuine = specimens.variants["genuine"]
    proc = _cli("verify", live, "--dg2", str(genuine.dg2), "--sod", str(genuine.sod), *common)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"] == "match" and result["chip_auth"]["status"] == "verified"
    assert "chip_auth" in result["timings_ms"]
    assert result["chip_trust"] == "verified"
    # An altered portrait (image bytes changed after signing; or a SOD signed over another
    # DG2) is never a match, under the default policy (warn) as under block, although the
    # faces match: the decision is chip_untrusted with the agency's instruction.
    for name, policy in (("image_byte_changed", "warn"), ("sod_for_other_dg2", "block")):
        bad = specimens.variants[name]
        proc = _cli("verify", live, "--dg2", str(bad.dg2), "--sod", str(bad.sod), *common,
                    "--chip-auth", policy)
        result = json.loads(proc.stdout)
        assert result["decision"] == "chip_untrusted", (name, policy, result["decision"])
        assert result["reasons"][0]["message"] == reason_message("chip_auth_failed")
        assert result["chip_auth"]["status"] == "hash_mismatch" and result["chip_trust"] == "failed"
        assert result["score"] is not None  # the faces were still compared, for the audit
    # Not checked (no EF.SOD) under warn: the face decision, marked not verified.
    proc = _cli("verify", live, "--dg2", str(genuine.dg2), *common)
    result = json.loads(proc.stdout)
    assert result["decision"] == "match" and result["chip_trust"] == "not_verified"
