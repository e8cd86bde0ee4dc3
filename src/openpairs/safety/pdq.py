"""PDQ perceptual hashes (Meta's algorithm, through the `pdqhash` library) and their Hamming distance.

A PDQ hash is 256 bits, written as 64 lower-case hex digits (the form hash-sharing lists use). Resizing and
re-encoding an image moves its hash by a few bits; unrelated images sit near 128 bits apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

PDQ_BITS = 256
MIN_QUALITY = 50  # below this, PDQ's own guidance: the image is too flat for its hash to mean much


@dataclass(frozen=True)
class PdqHash:
    """One image's PDQ hash (64 hex digits) and PDQ's quality score (0-100)."""

    hex: str
    quality: int


def pdq_of(image: Image.Image) -> PdqHash:
    """The PDQ hash of a decoded image (any mode; converted to RGB)."""
    import pdqhash

    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return PdqHash(bits_to_hex(np.asarray(bits, dtype=np.uint8)), int(quality))


def bits_to_hex(bits: np.ndarray) -> str:
    """256 bits (0/1, most significant first) as 64 hex digits."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def parse_pdq(text: str) -> int:
    """A PDQ hash's 64 hex digits as an int; ValueError for anything else."""
    value = text.strip().lower()
    if len(value) != PDQ_BITS // 4:
        raise ValueError(f"a PDQ hash has {PDQ_BITS // 4} hex digits, not {len(value)}: {value[:80]!r}")
    return int(value, 16)


def hamming(a: str | int, b: str | int) -> int:
    """Bits that differ between two PDQ hashes (hex strings or ints)."""
    left = parse_pdq(a) if isinstance(a, str) else a
    right = parse_pdq(b) if isinstance(b, str) else b
    return (left ^ right).bit_count()
