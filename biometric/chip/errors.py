"""Errors for malformed chip files and unusable trust stores (stable codes for CLI and API)."""

from __future__ import annotations

from biometric.errors import BiometricError


class ChipDataError(BiometricError):
    """A chip file (EF.DG2, EF.SOD, EF.DG1) cannot be read: the message names the tag and
    the byte offset where reading stopped."""

    code = "chip_data_malformed"


class Dg2FormatError(ChipDataError):
    code = "dg2_malformed"


class SodFormatError(ChipDataError):
    code = "sod_malformed"


class TrustStoreError(BiometricError):
    """The configured CSCA folder, master list or CRL cannot be used."""

    code = "trust_store_error"
