"""Decoding and input limits. Most images here are SYNTHETIC (generated in the test) because
they test file handling, not faces; the RGBA case uses a real photo from the shared set."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from biometric.decode import DecodeLimits, decode_image, read_image
from biometric.errors import ImageDecodeError, ImageTooLarge, UnsupportedImageType


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def synthetic() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "JPEG2000", "BMP"])
def test_formats_decode_to_rgb(synthetic: np.ndarray, fmt: str) -> None:
    img = decode_image(_encode(synthetic, fmt))
    assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.uint8
    assert img.format == fmt


def test_grey_jpeg2000_chip_portrait_becomes_three_channels() -> None:
    grey = np.tile(np.arange(120, dtype=np.uint8), (160, 1))
    img = decode_image(_encode(grey, "JPEG2000", quality_mode="rates", quality_layers=[20]))
    assert img.was_grey and img.rgb.shape == (160, 120, 3)
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 2])


def test_exif_orientation_is_applied(synthetic: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    Image.fromarray(synthetic).save(buf, format="JPEG", exif=exif)
    assert decode_image(buf.getvalue()).rgb.shape == (64, 48, 3)


def test_rgba_png_from_shared_set(fr_dir) -> None:
    img = read_image(fr_dir / "edge" / "32bit_rgba.png")
    assert img.rgb.shape[2] == 3


def test_empty_input() -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnsupportedImageType):
        decode_image(b"name,citizen_id\nA,123\n")


def test_truncated_jpeg(synthetic: np.ndarray) -> None:
    data = _encode(np.repeat(np.repeat(synthetic, 8, 0), 8, 1), "JPEG")
    with pytest.raises(ImageDecodeError, match=r"truncated|corrupt"):
        decode_image(data[: len(data) // 2])


def test_corrupt_png_body(synthetic: np.ndarray) -> None:
    data = bytearray(_encode(synthetic, "PNG"))
    data[60:90] = b"\x00" * 30
    with pytest.raises(ImageDecodeError):
        decode_image(bytes(data))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_decompression_bomb_rejected_from_header() -> None:
    with pytest.raises(ImageTooLarge, match="100000x100000"):
        decode_image(_png_header_only(100_000, 100_000))


def test_too_many_bytes(synthetic: np.ndarray) -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(_encode(synthetic, "PNG"), DecodeLimits(max_bytes=100))


def test_unsupported_but_real_format(synthetic: np.ndarray) -> None:
    with pytest.raises(UnsupportedImageType, match="TIFF"):
        decode_image(_encode(synthetic, "TIFF"))


def test_gif_first_frame_decodes_to_rgb(synthetic: np.ndarray) -> None:
    """Synthetic image. A palette GIF (some web-sourced portraits are GIFs) becomes RGB."""
    decoded = decode_image(_encode(synthetic, "GIF"))
    assert decoded.format == "GIF"
    assert decoded.rgb.shape == synthetic.shape and decoded.rgb.dtype == np.uint8


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot read"):
        read_image(tmp_path / "nope.jpg")
