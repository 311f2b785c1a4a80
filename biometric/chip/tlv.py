"""BER-TLV elements (ISO/IEC 7816-4 as used by ICAO 9303 LDS files), with their offsets.

The tag and length decoding is asn1crypto's; this module only keeps track of where each element
sits in the file, so a malformed file is reported as "tag X at offset N", and checks that every
element stays inside its parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from asn1crypto import parser

from biometric.chip.errors import ChipDataError


def tag_bytes(cls: int, constructed: int, number: int) -> int:
    """The tag as the integer of its encoded bytes (0x7F61, 0x5F2E, 0xA1...), as in ICAO 9303."""
    first = (cls << 6) | (constructed << 5)
    if number < 31:
        return first | number
    out = [first | 0x1F]
    chunks = []
    while True:
        chunks.append(number & 0x7F)
        number >>= 7
        if not number:
            break
    for k, c in enumerate(reversed(chunks)):
        out.append(c | (0x80 if k < len(chunks) - 1 else 0))
    return int.from_bytes(bytes(out), "big")


@dataclass(frozen=True)
class Tlv:
    tag: int  # encoded tag bytes as an integer, e.g. 0x7F61
    offset: int  # where the element (its tag) starts in the file
    value_offset: int  # where its value starts in the file
    value: bytes
    constructed: bool

    @property
    def end(self) -> int:
        return self.value_offset + len(self.value)

    def children(self, error: type[ChipDataError] = ChipDataError) -> Iterator[Tlv]:
        """The elements inside a constructed element, each checked to fit inside it."""
        pos = 0
        while pos < len(self.value):
            child = read(self.value, pos, error, base=self.value_offset)
            pos = child.end - self.value_offset
            yield child


def hex_tag(tag: int) -> str:
    return f"{tag:02X}" if tag < 0x100 else f"{tag:04X}" if tag < 0x10000 else f"{tag:06X}"


HUGE_NUMBER = re.compile(r"\d{13,}")  # more than a terabyte: no chip file is that long


def read(
    buf: bytes,
    pos: int,
    error: type[ChipDataError] = ChipDataError,
    expect: tuple[int, ...] = (),
    what: str = "element",
    base: int = 0,
) -> Tlv:
    """The element starting at ``buf[pos]``; ``base`` is ``buf``'s offset in the whole file.
    Raises ``error`` naming the tag and file offset when the element is truncated, its length
    runs past the end of ``buf`` (the parent), or its tag is not one of ``expect``."""
    where = base + pos
    expected = " or ".join(hex_tag(t) for t in expect) or None
    try:
        cls, method, number, header, contents, trailer = parser.parse(buf[pos:])
    except ValueError as exc:
        head = buf[pos : pos + 4].hex().upper() or "end of data"
        # A file that is not TLV (a JPEG sent as EF.DG2) decodes to a length of hundreds of
        # digits: say so instead of printing it.
        reason = HUGE_NUMBER.sub("an impossible number of", str(exc))
        raise error(f"{what} (bytes {head}): {reason}", where, expected) from None
    tag = tag_bytes(cls, method, number)
    if expect and tag not in expect:
        raise error(f"{what}: expected tag {expected}", where, hex_tag(tag))
    if trailer:  # indefinite length (BER): ICAO 9303 files use definite lengths only
        raise error("indefinite length is not allowed", where, hex_tag(tag))
    return Tlv(tag, where, where + len(header), contents, bool(method))
