"""Memory per request is bounded by the pixel limit (issue 12): large JPEGs decode at reduced
scale, other formats above the limit are refused from the header. Synthetic images (flat
colour, and a header-only PNG), labelled so: the test is about sizes, not content."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from biometric.decode import (
    DECODE_BUDGET_BYTES_PER_PIXEL,
    DEFAULT_MAX_PIXELS,
    DecodeLimits,
    decode_image,
)
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


# -- decompression bombs of every accepted format (issue 21) -----------------------------------
# Synthetic, labelled: small real encodings (flat colour) whose headers are patched to declare a
# huge canvas, as an attacker would. Each is decoded in a fresh process and its peak RSS growth
# measured: the memory a request can cost is decided from the header, whatever it claims.


def _encode(fmt: str, size: tuple[int, int], **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, fmt, **kw)
    return buf.getvalue()


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    for sof in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(sof)
        if at > 0:
            return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    raise AssertionError("no SOF marker")


def _webp_canvas(width: int, height: int) -> bytes:
    """A VP8X (extended) WebP declaring a width x height canvas around a tiny real frame."""
    small = _encode("WEBP", (16, 16), lossless=True)
    vp8l = small[12:]  # the VP8L chunk of the simple file
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _gif_frame(width: int, height: int) -> bytes:
    """A GIF whose logical screen is 10x10 and whose first frame declares width x height."""
    head = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b"\x3b"


def _j2k_size(width: int, height: int) -> bytes:
    """A JPEG 2000 codestream whose SIZ marker declares width x height (one tile)."""
    data = _encode("JPEG2000", (64, 64), no_jp2=True)
    at = data.find(b"\xff\x51")
    siz = struct.pack(">IIIIII", width, height, 0, 0, width, height)
    return data[: at + 6] + siz + data[at + 30 :]


BOMBS = {
    # the case: a real-size progressive JPEG declaring 20000 x 20000
    "jpeg_progressive_20000": lambda: _patch_jpeg_size(
        _encode("JPEG", (640, 480), progressive=True), 20000, 20000),
    "jpeg_baseline_20000": lambda: _patch_jpeg_size(_encode("JPEG", (640, 480)), 20000, 20000),
    "png_100000": lambda: _png_header_only(100_000, 100_000),
    "webp_16384_canvas": lambda: _webp_canvas(16384, 16384),
    "webp_4000x4000": lambda: _encode("WEBP", (4000, 4000), lossless=True, method=0),
    "gif_frame_30000": lambda: _gif_frame(30000, 30000),
    "jpeg2000_20000": lambda: _j2k_size(20000, 20000),
    "jpeg2000_3000x2000": lambda: _encode("JPEG2000", (3000, 2000), no_jp2=True),
    "jpeg_baseline_12mpx": lambda: _encode("JPEG", (4000, 3000)),
}

PROBE = r"""
import sys
from biometric.decode import decode_image
from biometric.errors import ImageDecodeError

def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current RSS
before = kb("VmRSS:")
try:
    d = decode_image(data)
    outcome = f"decoded {d.width}x{d.height}"
except ImageDecodeError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(f"{(kb('VmHWM:') - before) // 1024}|{outcome}")
"""
# Peak RSS growth allowed per decode: the decode budget at the default 12 Mpx (114 MiB) and
# 16 MiB for the interpreter's own allocations.
MAX_GROWTH_MB = DEFAULT_MAX_PIXELS * DECODE_BUDGET_BYTES_PER_PIXEL // 2**20 + 16


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_costs_bounded_memory(name: str, tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / name
    path.write_bytes(BOMBS[name]())
    run = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    grown, outcome = run.stdout.strip().split("|", 1)
    print(f"\n{name} ({path.stat().st_size} bytes): +{grown} MB peak RSS, {outcome}")
    assert int(grown) < MAX_GROWTH_MB, outcome


def test_twelve_megapixel_photos_still_decode() -> None:
    """The bound refuses nothing a counter camera sends: a 12 Mpx baseline JPEG decodes whole,
    a 12 Mpx progressive one at half scale (its full-size coefficients count against the
    budget)."""
    assert decode_image(_encode("JPEG", (4000, 3000))).rgb.shape == (3000, 4000, 3)
    progressive = decode_image(_encode("JPEG", (4000, 3000), progressive=True))
    assert progressive.rgb.shape == (1500, 2000, 3)
    assert decode_image(_encode("PNG", (4000, 3000))).rgb.shape == (3000, 4000, 3)
