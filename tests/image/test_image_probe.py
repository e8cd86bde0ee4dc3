"""Header probing: sizes and formats before decoding, and decompression bombs refused from the header."""

from __future__ import annotations

import resource

import pytest

from openpairs.core.status import Status
from openpairs.image import ImageConfig, ImageRejected, probe_size, process_image
from tests.fixtures import images as fx

FORMATS = {"png_rgb": "PNG", "webp": "WEBP", "animated_gif": "GIF", "cmyk_jpeg": "JPEG"}


@pytest.mark.parametrize("name", fx.OK_NAMES)
def test_probe_reads_the_displayed_size(name: str) -> None:
    width, height, fmt = probe_size(fx.fixture_bytes(name))
    assert (width, height) == fx.SIZES[name]
    assert fmt == FORMATS.get(name, fmt)


@pytest.mark.parametrize("name", ["garbage", "html_page", "svg", "empty"])
def test_probe_refuses_non_images(name: str) -> None:
    with pytest.raises(ImageRejected) as info:
        probe_size(fx.fixture_bytes(name))
    assert info.value.status == Status.DECODE_ERROR


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("body", "pixels"),
    [
        (fx.huge_header_png(), 30000 * 30000),
        (fx.bomb_png(10000, 9000), 10000 * 9000),  # under Pillow's own error limit: our check decides
        (fx.bomb_jpeg(10000, 9000), 10000 * 9000),
        (fx.bomb_jpeg(60000, 60000), 60000 * 60000),
    ],
)
def test_bombs_are_refused_from_the_header(body: bytes, pixels: int) -> None:
    assert len(body) < 100_000
    before = _max_rss_mib()
    with pytest.raises(ImageRejected) as info:
        process_image(body, ImageConfig())
    assert info.value.status == Status.TOO_LARGE
    assert _max_rss_mib() - before < 100  # decoding would need >= 270 MB of pixels
    if pixels < 2 * 89_478_485:
        assert probe_size(body)[:2] == (10000, 9000)
