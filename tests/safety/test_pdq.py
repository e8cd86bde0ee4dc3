"""PDQ hashes of real demo images: stable under resize and re-encode, far apart for unrelated images."""

from __future__ import annotations

import io

from PIL import Image

from openpairs.demo.generate import encode, make_image
from openpairs.safety.pdq import hamming, parse_pdq, pdq_of


def _reencoded(image: Image.Image, size: tuple[int, int], fmt: str) -> Image.Image:
    return Image.open(io.BytesIO(encode(image.resize(size), fmt)))


def test_pdq_survives_resize_and_reencode_and_separates_unrelated_images() -> None:
    original = make_image(3, 640, 480)
    reference = pdq_of(original)
    assert len(reference.hex) == 64 and reference.quality > 0
    variants = [_reencoded(original, (320, 240), "jpeg"), _reencoded(original, (500, 375), "webp")]
    near = [hamming(reference.hex, pdq_of(v).hex) for v in variants]
    unrelated = [hamming(reference.hex, pdq_of(make_image(i, 640, 480)).hex) for i in range(10, 14)]
    assert max(near) <= 16, near
    assert min(unrelated) > 40, unrelated


def test_parse_pdq_refuses_wrong_lengths() -> None:
    assert parse_pdq("f" * 64) == (1 << 256) - 1
    for bad in ("", "ab", "g" * 64):
        try:
            parse_pdq(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")
