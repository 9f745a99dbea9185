"""The width and height of a JPEG or PNG image from the first bytes of its file, without decoding it.

Lambdas do not carry an imaging library; the size is all that is needed (turning a detector's normalised corners
into pixels, or a tool's percent boxes). Layouts: PNG, the ``IHDR`` chunk right after the 8-byte signature (width
and height as big-endian 32-bit integers, PNG specification §11.2.2); JPEG, the first start-of-frame marker
(``SOF0``-``SOF15`` except ``DHT``/``JPG``/``DAC``: ``C4``, ``C8``, ``CC``), whose segment holds precision, height,
width (ITU-T T.81 §B.2.2), found by walking the marker segments from the start.

:data:`HEADER_BYTES` is enough for almost every file (EXIF thumbnails are where JPEG headers grow); when the frame
header lies further in, :func:`image_size` raises :class:`NeedMoreBytesError` and the caller reads the whole file.
"""

from __future__ import annotations

import struct

HEADER_BYTES = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-RST7, SOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


class ImageHeaderError(ValueError):
    """The bytes are not a JPEG or PNG image with a readable size."""


class NeedMoreBytesError(ImageHeaderError):
    """The header ends before the size: read more of the file."""


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG or JPEG image from (a prefix of) its bytes."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24:
            raise NeedMoreBytesError("the PNG header is cut short")
        if data[12:16] != b"IHDR":
            raise ImageHeaderError("a PNG file must start with its IHDR chunk")
        width, height = struct.unpack(">II", data[16:24])
        return _checked(width, height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    raise ImageHeaderError("not a JPEG or PNG image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    position = 2
    while True:
        # Markers may be preceded by fill bytes 0xFF.
        while position < len(data) and data[position] == 0xFF:
            position += 1
        if position >= len(data):
            raise NeedMoreBytesError("no JPEG frame header in the bytes read")
        marker = data[position]
        position += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xD9 or marker == 0xDA:
            raise ImageHeaderError("the JPEG image data starts before any frame header")
        if position + 2 > len(data):
            raise NeedMoreBytesError("a JPEG segment is cut short")
        (length,) = struct.unpack(">H", data[position : position + 2])
        if length < 2:
            raise ImageHeaderError("a JPEG segment has an impossible length")
        if marker in _SOF_MARKERS:
            if position + 7 > len(data):
                raise NeedMoreBytesError("the JPEG frame header is cut short")
            height, width = struct.unpack(">HH", data[position + 3 : position + 7])
            return _checked(width, height)
        position += length


def _checked(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise ImageHeaderError(f"the image header gives an empty size {width}x{height}")
    return width, height
