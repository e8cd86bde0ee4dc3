"""process_image on every fixture: statuses, conversions to RGB, EXIF, alpha, keep_original, encodings."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from openpairs.core.status import Status
from openpairs.image import ImageConfig, ImageRejected, ProcessedImage, probe_size, process_image
from tests.fixtures import images as fx

AS_IS = ImageConfig(resize_mode="no", encode_format="png")


def pixels(result: ProcessedImage) -> np.ndarray:
    """The stored image as an H x W x 3 array, checking it decodes as RGB."""
    image = Image.open(io.BytesIO(result.data))
    assert image.mode == "RGB"
    return np.asarray(image)


@pytest.mark.parametrize("name", list(fx.FIXTURES))
def test_each_fixture_gets_its_expected_status(name: str) -> None:
    body = fx.fixture_bytes(name)
    expected = fx.expected_status(name)
    if expected != Status.OK:
        with pytest.raises(ImageRejected) as info:
            process_image(body, ImageConfig())
        assert info.value.status == expected
        assert info.value.reason
        return
    result = process_image(body, ImageConfig())
    assert (result.original_width, result.original_height) == fx.SIZES[name]
    assert (result.width, result.height) == (256, 256)  # border mode, every OK fixture is > 256 on a side
    assert result.ext == "jpg" and result.mime == "image/jpeg"
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert pixels(result).shape == (256, 256, 3)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("svg", "svg is not supported"),
        ("html_page", "html page, not an image"),
        ("empty", "empty body"),
        ("garbage", "not a recognised image format"),
        ("truncated_jpeg", "truncated"),
    ],
)
def test_non_images_have_a_clear_reason(name: str, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        process_image(fx.fixture_bytes(name), ImageConfig(min_bytes=0))
    assert info.value.status == Status.DECODE_ERROR
    assert reason in info.value.reason


def test_min_bytes_zero_accepts_small_images() -> None:
    result = process_image(fx.small(), ImageConfig(min_bytes=0, resize_mode="no"))
    assert (result.width, result.height) == (32, 32)


def test_exif_orientation_is_applied() -> None:
    body = fx.exif_rotated_jpeg()
    result = process_image(body, AS_IS)
    assert (result.width, result.height) == (200, 400)
    assert (result.original_width, result.original_height) == (200, 400)
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(body))).convert("RGB")
    assert np.array_equal(pixels(result), np.asarray(reference))


def test_alpha_is_composited_on_white() -> None:
    out = pixels(process_image(fx.png_rgba(), AS_IS))
    assert out[100, 10].tolist() == [255, 255, 255]  # fully transparent left half
    source = np.asarray(Image.open(io.BytesIO(fx.png_rgba())))
    assert out[100, 250].tolist() == source[100, 250, :3].tolist()  # opaque right half unchanged


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    out = pixels(process_image(fx.png_16bit(), AS_IS))
    expected = np.asarray(fx.photo(256, 256, seed=5).convert("L"))
    assert np.array_equal(out[..., 0], expected)
    assert np.array_equal(out[..., 0], out[..., 2])
    assert out.mean() < 250  # clipping 16-bit values to 255 would give a white image


@pytest.mark.parametrize("name", ["png_palette", "cmyk_jpeg", "grayscale_jpeg"])
def test_modes_convert_like_pillow(name: str) -> None:
    body = fx.fixture_bytes(name)
    out = pixels(process_image(body, AS_IS))
    assert np.array_equal(out, np.asarray(Image.open(io.BytesIO(body)).convert("RGB")))


def test_animated_gif_keeps_the_first_frame() -> None:
    out = pixels(process_image(fx.animated_gif(), AS_IS))
    red, green, blue = out[5:20, 5:20].reshape(-1, 3).mean(axis=0)
    assert red > 150 and green < 100 and blue < 100  # frame 1 is red, frames 2-3 green and blue


def test_keep_original_returns_the_validated_bytes() -> None:
    body = fx.exif_rotated_jpeg()
    result = process_image(body, ImageConfig(keep_original=True))
    assert result.data == body
    assert (result.ext, result.mime) == ("jpg", "image/jpeg")
    assert (result.width, result.height) == (result.original_width, result.original_height) == (200, 400)
    webp = process_image(fx.webp(), ImageConfig(keep_original=True))
    assert (webp.data, webp.ext, webp.mime) == (fx.webp(), "webp", "image/webp")
    with pytest.raises(ImageRejected) as info:
        process_image(fx.truncated_jpeg(), ImageConfig(keep_original=True))
    assert info.value.status == Status.DECODE_ERROR


@pytest.mark.parametrize(("fmt", "pillow_format"), [("jpg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
def test_encode_formats(fmt: str, pillow_format: str) -> None:
    result = process_image(fx.jpeg_baseline(), ImageConfig(encode_format=fmt))
    assert result.ext == fmt
    assert probe_size(result.data) == (256, 256, pillow_format)


def test_quality_changes_the_encoding() -> None:
    high = process_image(fx.large_jpeg(), ImageConfig(encode_quality=95))
    low = process_image(fx.large_jpeg(), ImageConfig(encode_quality=40))
    assert len(low.data) < len(high.data) * 0.7


def test_min_side_and_aspect_ratio_give_bad_size() -> None:
    with pytest.raises(ImageRejected) as info:
        process_image(fx.jpeg_baseline(), ImageConfig(min_side=301))
    assert info.value.status == Status.BAD_SIZE
    process_image(fx.jpeg_baseline(), ImageConfig(min_side=300))
    with pytest.raises(ImageRejected) as info:
        process_image(fx.exif_rotated_jpeg(), ImageConfig(max_aspect_ratio=1.5))
    assert info.value.status == Status.BAD_SIZE
    process_image(fx.exif_rotated_jpeg(), ImageConfig(max_aspect_ratio=2.0))


def test_max_pixels_is_configurable() -> None:
    with pytest.raises(ImageRejected) as info:
        process_image(fx.jpeg_baseline(), ImageConfig(max_pixels=400 * 300 - 1))
    assert info.value.status == Status.TOO_LARGE
    assert process_image(fx.jpeg_baseline(), ImageConfig(max_pixels=400 * 300)).width == 256


@pytest.mark.parametrize("kwargs", [{"resize_mode": "stretch"}, {"encode_format": "gif"}, {"image_size": 0}])
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ImageConfig(**kwargs)  # type: ignore[arg-type]


def test_an_expected_hash_is_checked_before_anything_else() -> None:
    body = fx.garbage()
    right = hashlib.sha256(body).hexdigest()
    with pytest.raises(ImageRejected) as wrong:
        process_image(body, ImageConfig(), expected_sha256="0" * 64)
    assert wrong.value.status == "hash_mismatch"
    with pytest.raises(ImageRejected) as checked:
        process_image(body, ImageConfig(min_bytes=0), expected_sha256=right)
    assert checked.value.status == "decode_error"
