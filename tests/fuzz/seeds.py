"""Seed images for mutation: one real, small file of every format and flavour the download accepts."""

from __future__ import annotations

import functools
import io

from PIL import Image

from tests.fixtures.images import fixture_bytes, photo

FIXTURE_SEEDS = (
    "jpeg_baseline",
    "jpeg_progressive",
    "cmyk_jpeg",
    "grayscale_jpeg",
    "exif_rotated_jpeg",
    "png_rgba",
    "png_16bit",
    "png_palette",
    "webp",
    "animated_gif",
)


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _rgba(width: int, height: int, seed: int) -> Image.Image:
    image = photo(width, height, seed=seed).convert("RGBA")
    image.putalpha(photo(width, height, seed=seed + 1, mode="L"))
    return image


def _made() -> dict[str, bytes]:
    """Formats and flavours the shared fixtures lack, small so that mutations stay fast."""
    small = photo(96, 64, seed=40)
    frames = [photo(64, 64, seed=41 + i) for i in range(3)]
    return {
        "webp_lossless_alpha": _save(_rgba(80, 60, 44), "WEBP", lossless=True),
        "webp_animated": _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50),
        "webp_grey": _save(photo(64, 96, seed=45, mode="L"), "WEBP", quality=80),
        "gif_still": _save(small.quantize(64), "GIF"),
        "bmp": _save(small, "BMP"),
        "bmp_rle8": _save(small.quantize(16), "BMP", compression=1),
        "tiff_lzw": _save(small, "TIFF", compression="tiff_lzw"),
        "tiff_jpeg_cmyk": _save(small.convert("CMYK"), "TIFF", compression="jpeg"),
        "tiff_multipage": _save(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "ico": _save(small, "ICO", sizes=[(32, 32), (64, 64)]),
        "avif": _save(small, "AVIF", quality=60),
        "mpo": _save(frames[0], "MPO", save_all=True, append_images=frames[1:2]),
        "png_interlaced_la": _save(photo(64, 48, seed=46, mode="LA"), "PNG", optimize=False, interlace=1),
        "png_1bit": _save(photo(64, 48, seed=47, mode="1"), "PNG"),
    }


@functools.cache
def seed_images() -> dict[str, bytes]:
    """Every seed image by name: the shared fixtures of each format plus the flavours made here."""
    return {**{name: fixture_bytes(name) for name in FIXTURE_SEEDS}, **_made()}
