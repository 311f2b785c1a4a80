"""EF.DG2 (ICAO 9303-10): the encoded face, read down to the portrait image.

Layout read here, every length and count checked against the bytes that hold it::

    75  DG2
      7F61  biometric information group template (ISO/IEC 7816-11, CBEFF)
        02    number of instances
        7F60  biometric information template, one per instance
          A1    biometric header template (CBEFF: 81 type, 87 format owner, 88 format type...)
          5F2E  biometric data block (7F2E when constructed)
                ISO/IEC 19794-5:2005 facial record: 'FAC\\0', '010\\0', record length,
                image count; per image: facial information (20 bytes), feature points (8 bytes
                each), image information (12 bytes: image type, data type, width, height...),
                then the JPEG or JPEG 2000 image.

A malformed file raises :class:`Dg2FormatError` naming the tag or field and its byte offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from biometric.chip import tlv
from biometric.chip.errors import Dg2FormatError

DG2_TAG = 0x75
GROUP_TAG = 0x7F61
COUNT_TAG = 0x02
TEMPLATE_TAG = 0x7F60
HEADER_TAG = 0xA1
DATA_BLOCK_TAGS = (0x5F2E, 0x7F2E)
# CBEFF header elements (ISO/IEC 7816-11 table 9) we check: biometric type 02 = facial
# features; format owner 0x0101 = ISO/IEC JTC 1/SC 37, format type 0x0008 = face image.
BIOMETRIC_TYPE_TAG, FORMAT_OWNER_TAG, FORMAT_TYPE_TAG = 0x81, 0x87, 0x88
FACE_TYPE, SC37_OWNER, FACE_FORMAT = 0x02, 0x0101, 0x0008

FORMAT_ID = b"FAC\x00"
VERSION_2005 = b"010\x00"  # ISO/IEC 19794-5:2005, the version ICAO 9303 requires in DG2
RECORD_HEADER = struct.Struct(">4s4sIH")  # format id, version, record length, image count
FACIAL_INFO = struct.Struct(">IHBBB3sH3s3s")  # block length, feature points, gender, eyes...
FEATURE_POINT_BYTES = 8
IMAGE_INFO = struct.Struct(">BBHHBBHH")  # image type, data type, width, height, colour...
IMAGE_TYPES = {0: "basic", 1: "full_frontal", 2: "token_frontal"}
DATA_TYPES = {0: "jpeg", 1: "jpeg2000"}
MAGIC = {
    "jpeg": (b"\xff\xd8\xff",),
    # JP2 file signature box, or a bare JPEG 2000 codestream (SOC + SIZ markers).
    "jpeg2000": (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
}


@dataclass(frozen=True)
class FaceImage:
    """One ISO/IEC 19794-5 facial image and where its image data sits in the DG2 file."""

    version: str
    image_type: str
    data_type: str  # "jpeg" or "jpeg2000"
    width: int
    height: int
    feature_points: int
    image_offset: int
    image: bytes = field(repr=False)

    @property
    def image_bytes(self) -> int:
        return len(self.image)


@dataclass(frozen=True)
class Dg2:
    images: list[FaceImage]

    @property
    def portrait(self) -> FaceImage:
        return self.images[0]


def parse_dg2(data: bytes) -> Dg2:
    """Parse EF.DG2 bytes; raises :class:`Dg2FormatError` (tag/field and offset) if malformed."""
    if not data:
        raise Dg2FormatError("EF.DG2 is empty (zero bytes)")
    dg2 = tlv.read(data, 0, Dg2FormatError, (DG2_TAG,), "EF.DG2")
    group = tlv.read(dg2.value, 0, Dg2FormatError, (GROUP_TAG,), "biometric information group",
                     dg2.value_offset)
    children = list(group.children(Dg2FormatError))
    if not children or children[0].tag != COUNT_TAG:
        raise Dg2FormatError("the instance count (tag 02) must come first", group.offset,
                             "7F61")
    declared = int.from_bytes(children[0].value, "big") if children[0].value else -1
    templates = [c for c in children[1:] if c.tag == TEMPLATE_TAG]
    if declared != len(templates) or declared < 1:
        raise Dg2FormatError(f"declares {declared} instance(s); tag 7F61 holds "
                             f"{len(templates)}", children[0].offset, "02")
    images: list[FaceImage] = []
    for template in templates:
        images += _read_template(template)
    return Dg2(images)


def _read_template(template: tlv.Tlv) -> list[FaceImage]:
    parts = {c.tag: c for c in template.children(Dg2FormatError)}
    header = parts.get(HEADER_TAG)
    if header is None:
        raise Dg2FormatError("no biometric header template (tag A1)", template.offset, "7F60")
    _check_header(header)
    block = next((parts[t] for t in DATA_BLOCK_TAGS if t in parts), None)
    if block is None:
        raise Dg2FormatError("no biometric data block (tag 5F2E or 7F2E)", template.offset,
                             "7F60")
    if block.constructed and not block.value.startswith(FORMAT_ID):
        # 7F2E may wrap the record in a 5F2E element (ISO/IEC 7816-11 table 3).
        inner = {c.tag: c for c in block.children(Dg2FormatError)}
        if 0x5F2E not in inner:
            raise Dg2FormatError("no facial record inside", block.offset, "7F2E")
        block = inner[0x5F2E]
    return parse_facial_record(block.value, block.value_offset, tlv.hex_tag(block.tag))


def _check_header(header: tlv.Tlv) -> None:
    fields = {c.tag: c for c in header.children(Dg2FormatError)}

    def number(tag: int) -> int | None:
        return int.from_bytes(fields[tag].value, "big") if tag in fields else None

    kind = number(BIOMETRIC_TYPE_TAG)
    if kind is not None and kind != FACE_TYPE:
        raise Dg2FormatError(f"biometric type {kind:#04x} is not a face (0x02)",
                             fields[BIOMETRIC_TYPE_TAG].offset, "81")
    owner, fmt = number(FORMAT_OWNER_TAG), number(FORMAT_TYPE_TAG)
    if (owner, fmt) not in ((None, None), (SC37_OWNER, FACE_FORMAT)):
        raise Dg2FormatError(f"format owner/type {owner}/{fmt} is not ISO/IEC 19794-5 "
                             "(0x0101/0x0008)", header.offset, "A1")


def parse_facial_record(data: bytes, base: int = 0, tag: str | None = None) -> list[FaceImage]:
    """An ISO/IEC 19794-5:2005 facial record; ``base`` is its offset in the DG2 file, ``tag``
    the data block holding it (errors name both)."""

    def need(pos: int, size: int, what: str) -> None:
        if pos + size > len(data):
            raise Dg2FormatError(f"facial record: {what} needs {size} bytes; only "
                                 f"{max(0, len(data) - pos)} remain", base + pos, tag)

    need(0, RECORD_HEADER.size, "record header")
    fmt, version, length, count = RECORD_HEADER.unpack_from(data, 0)
    if fmt != FORMAT_ID:
        raise Dg2FormatError(f"facial record: format identifier {fmt!r} is not 'FAC\\0'",
                             base, tag)
    if version != VERSION_2005:
        raise Dg2FormatError(f"facial record: version {version!r} is not supported "
                             "(ISO/IEC 19794-5:2005 '010\\0' expected)", base + 4, tag)
    if length != len(data):
        raise Dg2FormatError(f"facial record: record length {length} but the data block holds "
                             f"{len(data)} bytes", base + 8, tag)
    if count < 1:
        raise Dg2FormatError("facial record: no facial image", base + 12, tag)
    images, pos = [], RECORD_HEADER.size
    for _ in range(count):
        need(pos, FACIAL_INFO.size, "facial information block")
        block_len, points, *_rest = FACIAL_INFO.unpack_from(data, pos)
        fixed = FACIAL_INFO.size + points * FEATURE_POINT_BYTES + IMAGE_INFO.size
        if block_len <= fixed or pos + block_len > len(data):
            raise Dg2FormatError(f"facial record: facial image declares {block_len} bytes; "
                                 f"{len(data) - pos} remain, at least {fixed + 1} needed",
                                 base + pos, tag)
        info_at = pos + FACIAL_INFO.size + points * FEATURE_POINT_BYTES
        image_type, data_type, width, height, *_ = IMAGE_INFO.unpack_from(data, info_at)
        if data_type not in DATA_TYPES:
            raise Dg2FormatError(f"facial record: image data type {data_type} is neither JPEG "
                                 "(0) nor JPEG 2000 (1)", base + info_at + 1, tag)
        if width == 0 or height == 0:
            raise Dg2FormatError(f"facial record: image size {width}x{height} is empty",
                                 base + info_at + 2, tag)
        start = info_at + IMAGE_INFO.size
        image = data[start : pos + block_len]
        kind = DATA_TYPES[data_type]
        if not image.startswith(MAGIC[kind]):
            raise Dg2FormatError(f"facial record: image data is not {kind.upper()} as its "
                                 f"header (offset {base + info_at + 1}) declares", base + start,
                                 tag)
        images.append(FaceImage(
            version=version[:3].decode("ascii"),
            image_type=IMAGE_TYPES.get(image_type, f"reserved_{image_type}"),
            data_type=kind,
            width=width,
            height=height,
            feature_points=points,
            image_offset=base + start,
            image=image,
        ))
        pos += block_len
    if pos != len(data):
        raise Dg2FormatError(f"facial record: {len(data) - pos} stray bytes", base + pos, tag)
    return images
