"""WebP through libwebp (scaled) or OpenCV, alpha resized before compositing: same pixels as Pillow."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from openpairs.image import ImageConfig, ImageRejected, fastdecode, process_image, webp
from openpairs.image.probe import open_header
from tests.fixtures import images as fx

CONFIG = ImageConfig(encode_format="png", min_bytes=0)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _reference(body: bytes, size: tuple[int, int]) -> np.ndarray:
    """Full Pillow decode, composite on white, BOX resize: what the output must look like."""
    image: Image.Image = Image.open(io.BytesIO(body))
    image = image.convert("RGBA") if "A" in image.mode or "transparency" in image.info else image
    rgba = image.convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return np.asarray(white.resize(size, Image.Resampling.BOX)).astype(int)


@pytest.mark.parametrize(
    ("mode", "fmt", "params"),
    [
        ("RGB", "PNG", {}),
        ("L", "PNG", {}),
        ("P", "PNG", {}),
        ("RGB", "WEBP", {"quality": 90}),
        ("RGB", "WEBP", {"lossless": True}),
    ],
)
def test_opencv_path_matches_pillow(mode: str, fmt: str, params: dict[str, object]) -> None:
    body = _encode(fx.photo(1000, 500, seed=3, mode=mode), fmt, **params)
    assert fastdecode.applies(open_header(body)) == (fmt == "WEBP")
    out = _pixels(process_image(body, CONFIG).data)
    assert out.shape == (256, 256, 3)
    assert np.abs(out[64:192] - _reference(body, (256, 128))).mean() < 2
    assert (out[:64] == 255).all() and (out[192:] == 255).all()


def test_alpha_is_composited_after_the_resize_with_the_same_pixels() -> None:
    photo = fx.photo(1000, 500, seed=5)
    alpha = Image.linear_gradient("L").resize((1000, 500))
    photo.putalpha(alpha)
    for fmt in ("PNG", "WEBP"):
        body = _encode(photo, fmt, lossless=True) if fmt == "WEBP" else _encode(photo, fmt)
        assert not fastdecode.applies(open_header(body))
        out = _pixels(process_image(body, CONFIG).data)
        assert np.abs(out[64:192] - _reference(body, (256, 128))).mean() < 2


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_rotated_images_are_rotated_after_the_resize(fmt: str) -> None:
    image = fx.photo(800, 400, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: 400x800
    body = _encode(image, fmt, exif=exif.tobytes(), lossless=True)
    result = process_image(body, CONFIG)
    assert (result.original_width, result.original_height) == (400, 800)
    out = _pixels(result.data)
    reference = _reference(body, (256, 128)).transpose(1, 0, 2)[:, ::-1]  # rotate 90 clockwise
    assert np.abs(out[:, 64:192] - reference).mean() < 2


def test_png_without_exif_is_not_decoded_to_read_the_header() -> None:
    header = open_header(_encode(fx.photo(600, 400), "PNG"))
    assert header.orientation == 1
    assert header.image._im is None  # Pillow's getexif() would have loaded the pixels


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_truncated_bodies_are_still_decode_errors(fmt: str) -> None:
    body = _encode(fx.photo(1000, 500, seed=7), fmt)
    with pytest.raises(ImageRejected) as rejected:
        process_image(body[: len(body) // 2], CONFIG)
    assert rejected.value.status == "decode_error"


def test_libwebp_scaled_decoding_is_used_here_and_matches_opencv() -> None:
    assert webp.available()  # Debian libwebp7, installed by scripts/ensure_system_deps.sh
    body = _encode(fx.photo(1200, 800, seed=11), "WEBP", quality=90)
    header = open_header(body)
    scaled = webp.decode_scaled(body, 256, 171)
    assert scaled is not None and scaled.shape == (171, 256, 3)
    opencv = fastdecode.opencv_shrunk(body, header, (256, 171))
    assert opencv is not None
    assert np.abs(scaled.astype(int) - np.asarray(opencv).astype(int)).mean() < 2
    assert np.abs(scaled.astype(int) - _reference(body, (256, 171))).mean() < 2


@pytest.mark.parametrize("cut", [0, 12, 100, 2])  # empty, header only, first bytes, most of the body
def test_libwebp_refuses_broken_bodies_without_crashing(cut: int) -> None:
    body = _encode(fx.photo(640, 480, seed=4), "WEBP", quality=80)
    broken = body[: len(body) // cut] if cut == 2 else body[:cut]
    assert webp.decode_scaled(broken, 128, 96) is None
    assert webp.decode_scaled(b"RIFF\x00\x00\x00\x00WEBPVP8 garbage" * 3, 128, 96) is None


def test_threads_decoding_their_first_webp_at_once_all_use_libwebp() -> None:
    """libwebp loads lazily: threads that ask for it while it loads must wait for it, not take the OpenCV
    path (other pixels: a rerun, or a resumed run, would store other bytes)."""
    script = """
import threading, sys
from openpairs.image import webp
from tests.fixtures import images as fx
body, start, results = fx.webp(), threading.Barrier(8), []
def decode():
    start.wait()
    results.append(webp.decode_scaled(body, 64, 64))
threads = [threading.Thread(target=decode) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
missing = sum(result is None for result in results)
print(missing, len({result.tobytes() for result in results if result is not None}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "1"]  # every thread decoded, to the same pixels
