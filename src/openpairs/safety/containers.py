"""Where an image file keeps its metadata: XMP packets and C2PA manifest stores in JPEG, PNG and WebP.

A walk over the container's own structure (JPEG segments, PNG chunks, RIFF chunks), never a search of the
whole body: a marker inside pixel data is not metadata. Every read is bounded (segments walked, packet
size, decompressed size); a truncated or malformed structure ends the walk with what was found before it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

MAX_PARTS = 10_000  # segments or chunks walked per file: a real file has far fewer
MAX_XMP_BYTES = 1024 * 1024  # one XMP packet, after decompression
MAX_PACKETS = 8

JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Embedded:
    """The metadata found in one body: its XMP packets, and whether it carries a C2PA manifest store."""

    mime: str | None = None  # image/jpeg, image/png, image/webp; None for any other format
    xmp: list[bytes] = field(default_factory=list)
    c2pa: bool = False

    def add_xmp(self, packet: bytes) -> None:
        """Keep one XMP packet (at most MAX_PACKETS, each at most MAX_XMP_BYTES)."""
        if len(self.xmp) < MAX_PACKETS and len(packet) <= MAX_XMP_BYTES:
            self.xmp.append(packet)


def scan(body: bytes) -> Embedded:
    """The XMP packets and C2PA presence of a JPEG, PNG or WebP body (nothing for other formats)."""
    if body.startswith(b"\xff\xd8"):
        return _jpeg(body)
    if body.startswith(PNG_SIGNATURE):
        return _png(body)
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return _webp(body)
    return Embedded()


def _jpeg(body: bytes) -> Embedded:
    """APP1 segments with the XMP header; APP11 segments holding JUMBF (C2PA). Stops at the first scan."""
    found = Embedded("image/jpeg")
    pos = 2
    for _ in range(MAX_PARTS):
        if pos + 4 > len(body) or body[pos] != 0xFF:
            break
        marker = body[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte, standalone markers
            pos += 1 if marker == 0xFF else 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            break
        end = pos + 2 + int.from_bytes(body[pos + 2 : pos + 4], "big")
        if end < pos + 4 or end > len(body):
            break
        start = pos + 4
        if marker == 0xE1 and body.startswith(JPEG_XMP, start):
            found.add_xmp(body[start + len(JPEG_XMP) : end])
        elif marker == 0xEB and body.startswith(b"JP", start):  # JPEG XT box (ISO 19566-5): JUMBF
            found.c2pa = True
        pos = end
    return found


def _png(body: bytes) -> Embedded:
    """iTXt chunks keyed `XML:com.adobe.xmp` (maybe compressed); `caBX` chunks (C2PA)."""
    found = Embedded("image/png")
    pos = len(PNG_SIGNATURE)
    for _ in range(MAX_PARTS):
        if pos + 8 > len(body):
            break
        size = int.from_bytes(body[pos : pos + 4], "big")
        kind = body[pos + 4 : pos + 8]
        if pos + 8 + size > len(body) or kind == b"IEND":
            break
        if kind == b"iTXt" and body.startswith(PNG_XMP_KEYWORD + b"\x00", pos + 8):
            packet = _itxt_text(body[pos + 9 + len(PNG_XMP_KEYWORD) : pos + 8 + size])
            if packet is not None:
                found.add_xmp(packet)
        elif kind == b"caBX":
            found.c2pa = True
        pos += 12 + size
    return found


def _itxt_text(rest: bytes) -> bytes | None:
    """The text of an iTXt chunk after its keyword (flag, method, language, translated keyword, text)."""
    if len(rest) < 2:
        return None
    compressed, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) < 3:
        return None
    text = parts[2]
    if not compressed:
        return text
    if method != 0:
        return None
    inflater = zlib.decompressobj()
    try:
        packet = inflater.decompress(text, MAX_XMP_BYTES + 1)
    except zlib.error:
        return None
    return packet if len(packet) <= MAX_XMP_BYTES else None


def _webp(body: bytes) -> Embedded:
    """RIFF chunks `XMP ` and `C2PA`."""
    found = Embedded("image/webp")
    pos = 12
    for _ in range(MAX_PARTS):
        if pos + 8 > len(body):
            break
        kind = body[pos : pos + 4]
        size = int.from_bytes(body[pos + 4 : pos + 8], "little")
        if pos + 8 + size > len(body):
            break
        if kind == b"XMP ":
            found.add_xmp(body[pos + 8 : pos + 8 + size])
        elif kind == b"C2PA":
            found.c2pa = True
        pos += 8 + size + (size & 1)
    return found
