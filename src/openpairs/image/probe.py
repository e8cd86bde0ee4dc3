"""Read an image's size and format from its header, before any pixel is decoded."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from openpairs.core.status import Status
from openpairs.image.config import OPEN_FORMATS, ImageConfig, ImageRejected

# Our own max_pixels check replaces Pillow's warning (Pillow still raises past 2x its limit).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SNIFF_BYTES = 1024


@dataclass
class Header:
    """An opened (not decoded) image and its displayed size."""

    image: Image.Image
    format: str
    width: int  # displayed width, after EXIF orientation
    height: int
    orientation: int


def sniff_reason(body: bytes) -> str:
    """Why `body` is not an image, from its first bytes (SVG, HTML, text, unknown)."""
    head = body[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head:
        return "svg is not supported"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "html page, not an image"
    if head.startswith((b"{", b"[")):
        return "json document, not an image"
    if head.startswith(b"<?xml"):
        return "xml document, not an image"
    return "not a recognised image format"


def open_header(body: bytes) -> Header:
    """Open `body` lazily (header only); raise ImageRejected for empty, unknown or bomb headers."""
    if not body:
        raise ImageRejected(Status.DECODE_ERROR, "empty body")
    try:
        image = Image.open(io.BytesIO(body), formats=OPEN_FORMATS)
    except Image.DecompressionBombError as err:
        raise ImageRejected(Status.TOO_LARGE, f"header claims too many pixels ({err})") from err
    except UnidentifiedImageError as err:
        raise ImageRejected(Status.DECODE_ERROR, sniff_reason(body)) from err
    except Exception as err:  # Pillow raises many types on broken headers
        raise ImageRejected(Status.DECODE_ERROR, f"bad image header: {type(err).__name__}: {err}") from err
    fmt = image.format or "UNKNOWN"
    orientation = _orientation(image, body)
    width, height = image.size
    if orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    return Header(image, fmt, width, height, orientation)


def _orientation(image: Image.Image, body: bytes) -> int:
    if image.format == "PNG" and "exif" not in image.info and b"eXIf" not in body:
        return 1  # no EXIF chunk at all: Pillow's getexif() would decode the whole image to look for one
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not reject an otherwise fine image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def check_header(header: Header, config: ImageConfig) -> None:
    """Raise ImageRejected when the header size breaks max_pixels, min_side or max_aspect_ratio."""
    width, height = header.width, header.height
    if width < 1 or height < 1:
        raise ImageRejected(Status.DECODE_ERROR, f"header size {width}x{height} is empty")
    if width * height > config.max_pixels:
        raise ImageRejected(
            Status.TOO_LARGE, f"{width}x{height} = {width * height} pixels > max_pixels {config.max_pixels}"
        )
    if config.min_side and min(width, height) < config.min_side:
        raise ImageRejected(Status.BAD_SIZE, f"{width}x{height}: smallest side < min_side {config.min_side}")
    ratio = max(width, height) / min(width, height)
    if config.max_aspect_ratio and ratio > config.max_aspect_ratio:
        raise ImageRejected(
            Status.BAD_SIZE, f"{width}x{height}: aspect ratio {ratio:.2f} > {config.max_aspect_ratio}"
        )


def probe_size(body: bytes) -> tuple[int, int, str]:
    """(width, height, format) of `body` from its header, without decoding; raises ImageRejected."""
    header = open_header(body)
    header.image.close()
    return header.width, header.height, header.format
