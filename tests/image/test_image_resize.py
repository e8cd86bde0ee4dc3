"""Resize modes: output sizes as img2dataset 1.47.0 produces them, borders, crops and DCT draft decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from openpairs.image import ImageConfig, probe_size, process_image
from openpairs.image.geometry import plan
from openpairs.image.process import apply_plan, decode
from tests.fixtures import images as fx

SOURCES = [(1000, 333), (333, 1000), (301, 199), (200, 100), (257, 1000), (1001, 1000)]
# Output sizes measured with img2dataset 1.47.0's Resizer(256, mode, resize_only_if_bigger=...) on SOURCES.
IMG2DATASET = {
    ("keep_ratio", False): [(769, 256), (256, 769), (301, 199), (200, 100), (256, 996), (256, 256)],
    ("keep_ratio", True): [(769, 256), (256, 769), (387, 256), (512, 256), (256, 996), (256, 256)],
    ("keep_ratio_largest", False): [(256, 85), (85, 256), (256, 169), (200, 100), (66, 256), (256, 256)],
    ("keep_ratio_largest", True): [(256, 85), (85, 256), (256, 169), (256, 128), (66, 256), (256, 256)],
    ("center_crop", False): [(256, 256), (256, 256), (301, 199), (200, 100), (256, 256), (256, 256)],
    ("center_crop", True): [(256, 256)] * 6,
    ("border", False): [(256, 256), (256, 256), (256, 256), (200, 100), (256, 256), (256, 256)],
    ("border", True): [(256, 256)] * 6,
    ("no", False): SOURCES,
    ("no", True): SOURCES,
}


@pytest.mark.parametrize(("mode", "upscale"), list(IMG2DATASET))
def test_plan_matches_img2dataset(mode: str, upscale: bool) -> None:
    config = ImageConfig(resize_mode=mode, upscale=upscale)
    sizes = [plan(w, h, config).output_size(w, h) for w, h in SOURCES]
    assert sizes == IMG2DATASET[(mode, upscale)]


@pytest.mark.parametrize(("mode", "upscale"), list(IMG2DATASET))
def test_real_images_get_the_planned_size(mode: str, upscale: bool) -> None:
    config = ImageConfig(resize_mode=mode, upscale=upscale, min_bytes=0)
    for w, h in SOURCES[:4]:
        body = fx.photo(w, h, seed=w)
        buffer = io.BytesIO()
        body.save(buffer, "JPEG", quality=90)
        result = process_image(buffer.getvalue(), config)
        expected = plan(w, h, config).output_size(w, h)
        assert (result.width, result.height) == expected
        assert probe_size(result.data)[:2] == expected


def test_border_pads_centred_with_the_border_colour() -> None:
    for colour in [(255, 255, 255), (0, 0, 0)]:
        config = ImageConfig(encode_format="png", border_color=colour)
        out = np.asarray(Image.open(io.BytesIO(process_image(fx.large_jpeg(), config).data)))
        assert out.shape == (256, 256, 3)
        # 2000x1500 -> 256x192, padded 32 rows above and below
        assert out[:32].reshape(-1, 3).tolist() == [list(colour)] * (32 * 256)
        assert out[224:].reshape(-1, 3).tolist() == [list(colour)] * (32 * 256)
        assert np.abs(out[40:216].astype(int) - np.array(colour)).max() > 60  # the photo, not padding


def test_center_crop_takes_the_middle() -> None:
    config = ImageConfig(resize_mode="center_crop", encode_format="png")
    crop = np.asarray(Image.open(io.BytesIO(process_image(fx.large_jpeg(), config).data))).astype(int)
    full = Image.open(io.BytesIO(fx.large_jpeg())).convert("RGB")
    reference = full.resize((341, 256), Image.Resampling.BOX)
    middle = np.asarray(reference)[:, 42:298].astype(int)
    assert crop.shape == (256, 256, 3)
    assert np.abs(crop - middle).mean() < 6
    assert np.abs(crop - np.asarray(reference)[:, :256].astype(int)).mean() > 2 * np.abs(crop - middle).mean()


def test_large_jpeg_is_decoded_at_reduced_dct_size() -> None:
    decoded = decode(fx.large_jpeg(), ImageConfig())
    assert decoded.image.size == (500, 375)  # 1/4 scale: the largest still >= the 256x192 target
    assert (decoded.original_width, decoded.original_height) == (2000, 1500)
    assert decode(fx.large_jpeg(), ImageConfig(image_size=1024)).image.size == (2000, 1500)
    rotated = fx.exif_rotated_jpeg()  # stored 400x200, displayed 200x400; target 64x128 -> 1/2 scale
    assert decode(rotated, ImageConfig(image_size=128)).image.size == (100, 200)


def test_draft_decoding_looks_like_a_full_decode() -> None:
    ours = process_image(fx.large_jpeg(), ImageConfig(encode_format="png"))
    full = Image.open(io.BytesIO(fx.large_jpeg())).convert("RGB").resize((256, 192), Image.Resampling.LANCZOS)
    out = np.asarray(Image.open(io.BytesIO(ours.data)))[32:224].astype(int)
    assert np.abs(out - np.asarray(full).astype(int)).mean() < 4


def test_upscale_uses_the_requested_size() -> None:
    config = ImageConfig(resize_mode="keep_ratio_largest", upscale=True, image_size=512)
    image = apply_plan(fx.photo(200, 100), plan(200, 100, config), config)
    assert image.size == (512, 256)
