"""Fuzzing the image path with mutated real images of every accepted format: probe, decode, convert."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from openpairs.core.status import Status
from openpairs.image import ImageConfig, ImageRejected, ProcessedImage, probe_size, process_image, webp
from openpairs.image.config import FORMATS, RESIZE_MODES
from openpairs.image.fastdecode import decode_shrunk, opencv_shrunk
from openpairs.image.probe import open_header
from openpairs.stages.download_memory import process_bounded
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.mutate import mutated
from tests.fuzz.seeds import seed_images

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt EXIF and TIFF tags
REJECTIONS = {Status.DECODE_ERROR, Status.TOO_LARGE, Status.TOO_SMALL, Status.BAD_SIZE}
CONFIGS = st.builds(
    ImageConfig,
    image_size=st.sampled_from([8, 33, 64]),
    resize_mode=st.sampled_from(RESIZE_MODES),
    upscale=st.booleans(),
    encode_format=st.sampled_from(["jpg", "webp", "png"]),
    min_bytes=st.sampled_from([0, 0, 2000]),
    max_pixels=st.sampled_from([4096, 2_000_000, 6_000_000]),  # bounded: a mutated header may claim much
    min_side=st.sampled_from([0, 0, 20]),
    max_aspect_ratio=st.sampled_from([0.0, 0.0, 2.5]),
    keep_original=st.booleans(),
)
SEEDS = seed_images()


def _check_processed(image: ProcessedImage, config: ImageConfig) -> None:
    """A stored image is what it claims: it decodes, at its stated size, in its stated format."""
    assert image.width >= 1 and image.height >= 1
    assert image.original_width >= 1 and image.original_height >= 1
    assert image.original_width * image.original_height <= config.max_pixels
    assert len(image.sha256) == 64
    with Image.open(io.BytesIO(image.data)) as stored:
        assert FORMATS[stored.format or ""][0] == image.ext
        if not config.keep_original:
            assert stored.size == (image.width, image.height)
            stored.load()


def _outcome(body: bytes, config: ImageConfig, bounded: bool) -> ProcessedImage | str:
    try:
        image = process_bounded(body, config) if bounded else process_image(body, config)
    except ImageRejected as rejected:
        assert rejected.status in REJECTIONS and rejected.reason
        return str(rejected.status)
    _check_processed(image, config)
    return image


@fuzz_settings(300)
@given(case=mutated(SEEDS), config=CONFIGS, bounded=st.booleans())
def test_any_body_is_stored_or_rejected_with_a_status(
    case: tuple[str, bytes], config: ImageConfig, bounded: bool
) -> None:
    """process_image / process_bounded on a mutated image: a valid stored image or ImageRejected, never
    another exception; probing agrees with what decoding accepted."""
    _, body = case
    outcome = _outcome(body, config, bounded)
    try:
        width, height, fmt = probe_size(body)
    except ImageRejected as rejected:
        assert rejected.status in (Status.DECODE_ERROR, Status.TOO_LARGE)
        assert not isinstance(outcome, ProcessedImage) or not body
        return
    assert width >= 1 and height >= 1 and fmt in FORMATS
    if isinstance(outcome, ProcessedImage):
        assert (outcome.original_width, outcome.original_height) == (width, height)


WEBP_SEEDS = {name: data for name, data in SEEDS.items() if data[8:12] == b"WEBP"}


@fuzz_settings(150)
@given(case=mutated(WEBP_SEEDS), width=st.integers(1, 48), height=st.integers(1, 48))
def test_fast_webp_decoders_return_pixels_or_none(case: tuple[str, bytes], width: int, height: int) -> None:
    """libwebp's scaled decode and the OpenCV path give the asked size or None, for any WebP body."""
    _, body = case
    pixels = webp.decode_scaled(body, width, height)
    assert pixels is None or pixels.shape == (height, width, 3)
    try:
        header = open_header(body)
    except ImageRejected:
        return
    for decoder in (decode_shrunk, opencv_shrunk):
        try:
            image = decoder(body, header, (width, height))
        except Exception as exc:  # what Pillow's lazy header raises is process_image's to turn into a status
            assert decoder is decode_shrunk, exc
            raise
        assert image is None or image.size in ((width, height), (height, width))
