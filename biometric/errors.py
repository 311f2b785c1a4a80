"""Typed errors with a stable machine-readable code, so the CLI and API can explain them."""

from __future__ import annotations


class BiometricError(Exception):
    """Base class: ``code`` is stable and safe to show to clients."""

    code = "biometric_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageDecodeError(BiometricError):
    """The bytes are not an image we can read (corrupt, truncated, empty, unknown type)."""

    code = "image_decode_error"


class UnsupportedImageType(ImageDecodeError):
    code = "unsupported_image_type"


class ImageTooLarge(ImageDecodeError):
    """Too many bytes or too many pixels (decompression bombs)."""

    code = "image_too_large"


class ModelError(BiometricError):
    """Models are missing, do not match the manifest, or cannot be built."""

    code = "model_error"
