"""Errors for malformed chip files and unusable trust stores (stable codes for CLI and API)."""

from __future__ import annotations

from biometric.errors import BiometricError


class ChipDataError(BiometricError):
    """A chip file (EF.DG2, EF.SOD, EF.DG1) cannot be read: the message names the tag and
    the byte offset where reading stopped."""

    code = "chip_data_malformed"

    def __init__(self, message: str, offset: int | None = None, tag: str | None = None) -> None:
        self.offset = offset  # byte offset in the file where reading stopped
        self.tag = tag  # the BER-TLV tag (hex, as ICAO writes it) or record field concerned
        where = " ".join(p for p in (f"tag {tag}" if tag else "",
                                     f"at offset {offset}" if offset is not None else "") if p)
        super().__init__(f"{where}: {message}" if where else message)

    def location(self) -> dict[str, int | str]:
        """``offset`` and ``tag`` for a problem document, where known."""
        return {k: v for k, v in (("offset", self.offset), ("tag", self.tag)) if v is not None}


class Dg2FormatError(ChipDataError):
    code = "dg2_malformed"


class SodFormatError(ChipDataError):
    code = "sod_malformed"


class TrustStoreError(BiometricError):
    """The configured CSCA folder, master list or CRL cannot be used."""

    code = "trust_store_error"
