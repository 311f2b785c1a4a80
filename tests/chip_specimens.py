"""SYNTHETIC chip files for the chip tests (library, CLI, API, page): a test CSCA and Document
Signer, EF.DG2 wrapped around a real shared photo, EF.SOD signed over it, and the tampered
variants each with the passive authentication result it must get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from biometric.chip import synthetic

CHIP_PHOTO = "identities/kit_harington/john2.jpeg"  # matches john1.jpeg (the live capture)
OTHER_PHOTO = "identities/obama/obama.jpg"


@dataclass(frozen=True)
class Variant:
    name: str
    dg2: Path
    sod: Path | None
    expected: str  # passive authentication status, or "dg2_malformed" (a problem, no status)


@dataclass(frozen=True)
class Specimens:
    csca_dir: Path
    variants: dict[str, Variant]
    dg2_bytes: bytes
    image_offset: int
    portrait: bytes  # the JPEG inside the genuine DG2


def build(fr_dir: Path, out: Path) -> Specimens:
    out.mkdir(parents=True, exist_ok=True)
    csca = synthetic.make_party("SYNTHETIC CSCA Viet Nam")
    ds = synthetic.make_party("SYNTHETIC Document Signer", issuer=csca)
    rogue = synthetic.make_party("SYNTHETIC CSCA Viet Nam")  # the real one's name, another key
    rogue_ds = synthetic.make_party("SYNTHETIC Document Signer", issuer=rogue)
    old = datetime.now(UTC) - timedelta(days=400)
    expired_ds = synthetic.make_party("SYNTHETIC expired DS", issuer=csca, not_before=old,
                                      days=365)
    image, w, h = synthetic.portrait_jpeg((fr_dir / CHIP_PHOTO).read_bytes())
    dg2 = synthetic.make_dg2(image, w, h)
    other_image, ow, oh = synthetic.portrait_jpeg((fr_dir / OTHER_PHOTO).read_bytes())
    other_dg2 = synthetic.make_dg2(other_image, ow, oh)
    offset = len(dg2) - len(image)
    flipped = bytearray(dg2)
    flipped[offset + len(image) // 2] ^= 0x01  # one byte of the image changed
    csca_dir = out / "csca"
    csca_dir.mkdir(exist_ok=True)
    (csca_dir / "csca.pem").write_bytes(csca.pem())
    files = {
        "genuine": (dg2, synthetic.make_sod({2: dg2}, ds), "verified"),
        "image_byte_changed": (bytes(flipped), synthetic.make_sod({2: dg2}, ds),
                               "hash_mismatch"),
        "sod_for_other_dg2": (dg2, synthetic.make_sod({2: other_dg2}, ds), "hash_mismatch"),
        "ds_not_under_csca": (dg2, synthetic.make_sod({2: dg2}, rogue_ds), "untrusted_signer"),
        "expired_ds": (dg2, synthetic.make_sod({2: dg2}, expired_ds), "expired"),
        "unknown_hash_algorithm": (dg2, synthetic.make_sod({2: dg2}, ds,
                                                           hash_oid="1.3.6.1.4.1.99999.1"),
                                   "hash_mismatch"),
        "truncated_tlv": (dg2[: len(dg2) // 2], synthetic.make_sod({2: dg2}, ds),
                          "dg2_malformed"),
        "no_sod": (dg2, None, "not_checked"),
    }
    variants = {}
    for name, (dg2_data, sod_data, expected) in files.items():
        (out / f"{name}.dg2").write_bytes(dg2_data)
        sod_path = None
        if sod_data is not None:
            sod_path = out / f"{name}.sod"
            sod_path.write_bytes(sod_data)
        variants[name] = Variant(name, out / f"{name}.dg2", sod_path, expected)
    return Specimens(csca_dir, variants, dg2, offset, image)
