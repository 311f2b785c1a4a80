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
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

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
# A larger JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) to fit the pixel
# limit, so it is accepted up to 64 times the limit when its decode memory fits (below); other
# formats cannot be decoded reduced and are refused above it.
JPEG_MAX_REDUCTION = 8
# Decode memory is decided from the declared size before any pixel is decoded (issue 21: a 79 KB
# progressive JPEG declaring 20000x20000 took +1.1 GB at 1/8 scale). The estimate is bytes per
# decoded pixel times the pixels decoded, plus, for a JPEG that libjpeg must buffer whole
# (progressive or multi-scan), 2 bytes per declared DCT coefficient, at full size whatever the
# scale. The budget per image is DECODE_BUDGET_BYTES_PER_PIXEL x max_pixels (114 MiB at 12 Mpx),
# so any format decodes up to the pixel limit.
DECODE_BUDGET_BYTES_PER_PIXEL = 10
# Peak bytes per decoded pixel: 9.6 measured for a 12 Mpx baseline JPEG (Pillow's 4-byte RGBX
# image, the 3-byte array and libjpeg's buffers; tests/test_decode_limits.py's RSS probe).
# JPEG 2000 adds OpenJPEG's 4-byte sample per component.
DEFAULT_BYTES_PER_PIXEL = 10
BYTES_PER_PIXEL = {"JPEG2000": DEFAULT_BYTES_PER_PIXEL + 4 * 4}

# Our own limits are enforced first; this only keeps Pillow from warning before we get there.
Image.MAX_IMAGE_PIXELS = None
# Compressed PNG text and ICC chunks are inflated whatever the canvas: Pillow's defaults allow a
# 1 MB chunk and 64 MB of text per image; a face photo needs neither.
PngImagePlugin.MAX_TEXT_CHUNK = 256 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 1024 * 1024


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
    budget = limits.max_pixels * DECODE_BUDGET_BYTES_PER_PIXEL
    buffered = 0  # bytes libjpeg holds at full size (whole-image coefficient buffers)
    if img.format == "JPEG":
        buffered = _jpeg_buffered_bytes(data, width, height)
        if width * height > limits.max_pixels or buffered:
            _reduce_jpeg(img, limits.max_pixels, budget - buffered)
            width, height = img.size  # the size it will decode at
    needed = buffered + width * height * BYTES_PER_PIXEL.get(img.format, DEFAULT_BYTES_PER_PIXEL)
    if width * height > limits.max_pixels and not buffered:
        raise ImageTooLarge(
            f"image declares {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_pixels}"
        )
    if needed > budget or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"decoding this {img.format} image ({img.size[0]}x{img.size[1]} as declared) would "
            f"take about {needed >> 20} MB; the limit is {budget >> 20} MB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow warns (not raises) on some corrupt data
            img.load()
    except (OSError, ValueError, SyntaxError, Warning, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"corrupt or truncated {img.format} image: {exc}") from exc
    fmt = img.format
    # In place and no same-mode convert: each copy of a 12 Mpx image is another 48 MB
    # (measured: 161 MB peak for a 12 Mpx JPEG with both copies).
    ImageOps.exif_transpose(img, in_place=True)
    was_grey = img.mode in ("L", "LA", "I", "I;16", "1", "F")
    if img.mode in ("I", "I;16", "F"):
        # 16-bit grey (some JPEG 2000 portraits): scale to 8 bits rather than clipping.
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) or 1.0
        img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), mode="L")
    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.asarray(img, dtype=np.uint8)
    del img
    return DecodedImage(rgb=np.ascontiguousarray(rgb), format=str(fmt), was_grey=was_grey)


def _reduce_jpeg(img: Image.Image, max_pixels: int, budget: int) -> None:
    """Ask libjpeg to decode at the mildest 1/2^k scale whose pixels fit ``max_pixels`` and
    whose output fits ``budget`` bytes (if any; the caller refuses what still does not fit)."""
    width, height = img.size
    for reduction in (1, 2, 4, JPEG_MAX_REDUCTION):
        w, h = -(-width // reduction), -(-height // reduction)
        if w * h <= max_pixels and w * h * DEFAULT_BYTES_PER_PIXEL <= budget:
            if reduction > 1:
                img.draft(img.mode if img.mode in ("L", "RGB") else "RGB", (w, h))
            return


# Start-of-frame markers: SOF0/SOF1 are sequential Huffman (decoded in one pass when the first
# scan holds every component); every other SOF (progressive, lossless, arithmetic) is buffered.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_buffered_bytes(data: bytes, width: int, height: int) -> int:
    """Bytes libjpeg allocates at full size for this JPEG, from its markers: 0 for a sequential
    JPEG whose first scan interleaves every component (decoded one MCU row at a time), else its
    whole-image DCT coefficient buffers (2 bytes per coefficient, per component with its
    sampling), which libjpeg needs for progressive and multi-scan images even when it outputs a
    reduced scale."""
    pos, sof, components = 2, None, []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return 0  # not where Pillow found its markers; Pillow refuses or decodes sequentially
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        if marker in _SOF and len(segment) >= 6:
            sof = marker
            n = segment[5]
            components = [(segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15) for i in range(n)
                          if 8 + 3 * i < len(segment)]
        elif marker == 0xDA:  # start of scan: the first scan decides
            in_scan = segment[0] if segment else 0
            if sof in (0xC0, 0xC1) and in_scan == len(components):
                return 0
            break
        pos += 2 + length
    if not components:
        return 0
    hmax = max(h for h, _ in components) or 1
    vmax = max(v for _, v in components) or 1
    return sum(
        2 * -(-width * h // hmax) * -(-height * v // vmax) for h, v in components
    )


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
