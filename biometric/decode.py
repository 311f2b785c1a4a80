"""Decode image bytes or files into RGB uint8 arrays, refusing anything unsafe or broken.

Chip portraits (ICAO 9303 DG2) are small JPEG or JPEG 2000 files, sometimes grey; counter
cameras give JPEG or PNG. Everything is normalised to 3-channel RGB so the models never see a
different layout. The pixel limit is checked from the header, before any pixel is decoded, so a
small file that declares a huge canvas (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from biometric.errors import ImageDecodeError, ImageTooLarge, UnsupportedImageType

# PGM/PPM (PIL's "PPM") is accepted because the Yale B research set uses it; BMP for old cameras;
# GIF (first frame) because scanned and web-sourced enrolment photos come as GIF (one of the
# asian_celeb portraits is a GIF behind a .jpg name).
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "JPEG2000", "PPM", "BMP", "GIF"})
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Pixels decoded per image, which bounds memory per request (about 3 bytes per pixel for the
# RGB array, and as much again while Pillow decodes): 4000x3000, the largest frame of the
# document cameras we expect at counters; a 4K webcam gives 8.3 Mpx, a chip portrait ~0.2 Mpx.
# (It was 40 Mpx: 8 concurrent 39.6 Mpx PNGs took the service from 612 MB to 1.9 GB, issue 12.)
DEFAULT_MAX_PIXELS = 12_000_000
# A larger JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, no full-size
# buffer) to fit the pixel limit, so it is accepted up to 64 times the limit; other formats
# cannot be decoded reduced and are refused above it.
JPEG_MAX_REDUCTION = 8

# Our own limits are enforced first; this only keeps Pillow from warning before we get there.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, RGB, EXIF orientation applied
    format: str
    was_grey: bool

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes, limits: DecodeLimits | None = None) -> DecodedImage:
    """Decode bytes to RGB. Raises a subclass of :class:`ImageDecodeError` saying what is wrong."""
    limits = limits or DecodeLimits()
    if not data:
        raise ImageDecodeError("empty input: zero bytes")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedImageType("not a recognised image format") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"unreadable image header: {exc}") from exc
    if img.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageType(
            f"image format {img.format} is not accepted; use one of {sorted(SUPPORTED_FORMATS)}"
        )
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image declares an empty canvas ({width}x{height})")
    if img.format == "JPEG" and width * height > limits.max_pixels:
        _reduce_jpeg(img, limits.max_pixels)
        width, height = img.size  # the size it will decode at
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"image declares {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_pixels}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow warns (not raises) on some corrupt data
            img.load()
    except (OSError, ValueError, SyntaxError, Warning, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"corrupt or truncated {img.format} image: {exc}") from exc
    fmt = img.format
    img = ImageOps.exif_transpose(img) or img
    was_grey = img.mode in ("L", "LA", "I", "I;16", "1", "F")
    if img.mode in ("I", "I;16", "F"):
        # 16-bit grey (some JPEG 2000 portraits): scale to 8 bits rather than clipping.
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), mode="L")
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return DecodedImage(rgb=np.ascontiguousarray(rgb), format=str(fmt), was_grey=was_grey)


def _reduce_jpeg(img: Image.Image, max_pixels: int) -> None:
    """Ask libjpeg to decode at the mildest 1/2^k scale that fits ``max_pixels`` (if any)."""
    width, height = img.size
    for reduction in (2, 4, JPEG_MAX_REDUCTION):
        w, h = -(-width // reduction), -(-height // reduction)
        if w * h <= max_pixels:
            img.draft(img.mode if img.mode in ("L", "RGB") else "RGB", (w, h))
            return


def read_image(path: str | Path, limits: DecodeLimits | None = None) -> DecodedImage:
    """Decode an image file; the size limit is checked before the file is read into memory."""
    limits = limits or DecodeLimits()
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {p}: {exc.strerror}") from exc
    if size > limits.max_bytes:
        raise ImageTooLarge(f"{p} is {size} bytes; the limit is {limits.max_bytes}")
    return decode_image(p.read_bytes(), limits)
