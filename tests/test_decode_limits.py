"""Memory per request is bounded by the pixel limit (issue 12): large JPEGs decode at reduced
scale, other formats above the limit are refused from the header. Synthetic images (flat
colour, and a header-only PNG), labelled so: the test is about sizes, not content."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from biometric.decode import DEFAULT_MAX_PIXELS, DecodeLimits, decode_image
from biometric.errors import ImageTooLarge


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))


def test_png_just_under_the_old_limit_is_refused_from_its_header() -> None:
    # 6300 x 6290 = 39.6 Mpx, the 115 KB PNG of the issue that took RSS to 1.9 GB.
    with pytest.raises(ImageTooLarge, match="39627000 pixels"):
        decode_image(_png_header_only(6300, 6290))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_large_jpeg_is_decoded_reduced_within_the_limit(mode: str) -> None:
    buf = io.BytesIO()
    Image.new(mode, (6000, 4000), 120).save(buf, "JPEG")  # 24 Mpx, a DSLR frame
    decoded = decode_image(buf.getvalue())
    assert decoded.rgb.shape == (2000, 3000, 3)  # 1/2 scale: the mildest that fits 12 Mpx
    assert decoded.width * decoded.height <= DEFAULT_MAX_PIXELS
    small = DecodeLimits(max_pixels=400_000)
    assert decode_image(buf.getvalue(), small).rgb.shape == (500, 750, 3)  # 1/8
    with pytest.raises(ImageTooLarge):
        decode_image(buf.getvalue(), DecodeLimits(max_pixels=300_000))  # beyond 1/8
