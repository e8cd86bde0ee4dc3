"""Check, decode, convert, resize and encode one downloaded image body."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from openpairs.core.status import Status
from openpairs.image import fastdecode
from openpairs.image.config import FORMATS, ImageConfig, ImageRejected, ProcessedImage
from openpairs.image.geometry import Plan, plan
from openpairs.image.probe import SWAPPING_ORIENTATIONS, Header, check_header, open_header

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_MIME = {"jpg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
Inspect = Callable[[Image.Image], None]
INSPECT_SIDE = 512  # with keep_original, an inspect hook still sees the image at least this size (or whole)


@dataclass
class Decoded:
    """A decoded RGB image (maybe DCT-reduced), its displayed original size and source format."""

    image: Image.Image
    original_width: int
    original_height: int
    format: str
    plan: Plan


def _draft(header: Header, target: tuple[int, int]) -> None:
    """Ask libjpeg for reduced-size DCT decoding at the largest scale still >= target."""
    if header.format not in ("JPEG", "MPO"):
        return
    width, height = target
    if header.orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    header.image.draft(None, (width, height))


def to_resizable(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> L, LA, RGB or RGBA: 16-bit scaled to 8, palette expanded, CMYK etc. converted.

    Alpha stays: Pillow resizes LA/RGBA premultiplied, so compositing on white after the resize gives
    the same pixels as before it, on a 256 px image instead of a full-size one.
    """
    if image.mode in _SIXTEEN_BIT:
        array = np.asarray(image).astype(np.uint32) >> 8
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if image.mode in ("PA", "La", "RGBa"):
        return image.convert("RGBA")
    return image.convert("L" if image.mode == "1" else "RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: alpha composited on white, 16-bit scaled to 8, CMYK/palette converted."""
    image = to_resizable(image)
    if image.mode in ("RGBA", "LA"):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image if image.mode == "RGB" else image.convert("RGB")


def decode(
    body: bytes, config: ImageConfig, header: Header | None = None, inspected: bool = False
) -> Decoded:
    """Header checks, then decode the first frame (maybe DCT-reduced, maybe already resized by OpenCV)
    to L, LA, RGB or RGBA; `apply_plan` finishes the resize and converts to RGB. `header`: `body`'s,
    when the caller already opened it; `inspected`: an inspect hook will look at the pixels."""
    header = header or open_header(body)
    check_header(header, config)
    todo = plan(header.width, header.height, config)
    if config.keep_original:  # validation only: the smallest DCT scale still decodes every block
        _draft(header, (INSPECT_SIDE, INSPECT_SIDE) if inspected else (1, 1))
    elif todo.resize:
        _draft(header, todo.resize)
    shrink = todo.resize if todo.resize and todo.resize[0] < header.width else None
    try:
        image = None
        if shrink and not config.keep_original:
            image = fastdecode.decode_shrunk(body, header, shrink)
        if image is None:
            header.image.load()
            image = header.image
        if header.orientation in _TRANSPOSE:
            image = image.transpose(_TRANSPOSE[header.orientation])
        image = to_resizable(image)
    except Image.DecompressionBombError as err:
        raise ImageRejected(Status.TOO_LARGE, str(err)) from err
    except Exception as err:  # truncated data, corrupt streams, decoder errors
        raise ImageRejected(Status.DECODE_ERROR, f"cannot decode: {type(err).__name__}: {err}") from err
    return Decoded(image, header.width, header.height, header.format, todo)


def apply_plan(image: Image.Image, todo: Plan, config: ImageConfig) -> Image.Image:
    """Resize (area-like downscale, Lanczos upscale), convert to RGB, centre-crop and pad."""
    if todo.resize and image.size != todo.resize:
        shrinking = todo.resize[0] < image.size[0]
        if shrinking:
            # area averaging, like INTER_AREA; an exact integer box reduce() first while the image is
            # over twice the target (PNG: 2.07 -> 1.22 ms, mean difference 0.11 levels)
            image = image.resize(todo.resize, Image.Resampling.BOX, reducing_gap=2.0)
        else:
            image = image.resize(todo.resize, Image.Resampling.LANCZOS)
    image = to_rgb(image)
    if todo.crop:
        image = image.crop(todo.crop)
    if todo.pad:
        left, top, width, height = todo.pad
        canvas = Image.new("RGB", (width, height), config.border_color)
        canvas.paste(image, (left, top))
        image = canvas
    return image


def encode(image: Image.Image, config: ImageConfig) -> bytes:
    """Encode an RGB image as jpg, webp or png at the configured quality."""
    buffer = io.BytesIO()
    if config.encode_format == "jpg":
        image.save(buffer, "JPEG", quality=config.encode_quality)
    elif config.encode_format == "webp":
        image.save(buffer, "WEBP", quality=config.encode_quality)
    else:
        level = config.encode_quality if config.encode_quality <= 9 else 6
        image.save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


def process_image(
    body: bytes,
    config: ImageConfig,
    header: Header | None = None,
    expected_sha256: str | None = None,
    inspect: Inspect | None = None,
) -> ProcessedImage:
    """Check and convert one downloaded body (`header`: its opened header, if the caller has it); raises
    ImageRejected (hash_mismatch against `expected_sha256` (lower-case hex), too_small, too_large,
    bad_size, decode_error). `inspect` sees the decoded image (displayed orientation, maybe DCT-reduced,
    not yet resized to the target) and may raise ImageRejected itself."""
    digest = hashlib.sha256(body).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise ImageRejected(Status.HASH_MISMATCH, f"sha256 {digest} is not the expected {expected_sha256}")
    if body and len(body) < config.min_bytes:
        raise ImageRejected(Status.TOO_SMALL, f"{len(body)} bytes < min_bytes {config.min_bytes}")
    decoded = decode(body, config, header, inspect is not None)
    if inspect is not None:
        inspect(decoded.image)
    width, height = decoded.original_width, decoded.original_height
    if config.keep_original:
        ext, mime = FORMATS[decoded.format]
        return ProcessedImage(body, ext, mime, width, height, width, height, digest)
    image = apply_plan(decoded.image, decoded.plan, config)
    data = encode(image, config)
    ext = config.encode_format
    return ProcessedImage(data, ext, _MIME[ext], image.width, image.height, width, height, digest)
