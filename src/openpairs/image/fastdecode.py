"""OpenCV decoding of PNG/WebP bodies straight to the planned size: 3 bytes a pixel, area resize.

Pillow has no reduced-size decoding for these formats: it decodes the full image at 4 bytes a pixel
(WebP twice: the frame, then the image). OpenCV decodes them faster (libpng/libwebp into BGR) and its
INTER_AREA resize is the area average that Pillow's BOX filter gives. Only opaque, single-frame, 8-bit
colour or grey images take this path; anything else (alpha, 16-bit grey, animation, a decode failure)
returns None and goes through Pillow, which also gives the precise rejection reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from openpairs.image.probe import SWAPPING_ORIENTATIONS, Header

FAST_FORMATS = frozenset({"PNG", "WEBP"})
_cv2: Any = None


def _opencv() -> Any:
    """cv2 with one thread (workers are processes already), or False when it is not installed."""
    global _cv2
    if _cv2 is None:
        try:
            import cv2

            cv2.setNumThreads(1)
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            _cv2 = cv2
        except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
            _cv2 = False
    return _cv2


def applies(header: Header) -> bool:
    """Whether `header`'s image can take the OpenCV path (opaque 8-bit PNG/WebP, one frame)."""
    image = header.image
    if header.format not in FAST_FORMATS or getattr(image, "n_frames", 1) != 1:
        return False
    opaque_palette = image.mode == "P" and "transparency" not in image.info
    return image.mode in ("RGB", "L") or opaque_palette


def decode_shrunk(body: bytes, header: Header, size: tuple[int, int]) -> Image.Image | None:
    """`body` decoded and area-resized to `size` (displayed orientation, before EXIF rotation is applied),
    as an RGB or L image in stored orientation; None when the OpenCV path does not apply."""
    cv2 = _opencv()
    if not cv2 or not applies(header):
        return None
    grey = header.image.mode == "L"
    flags = (cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        array = cv2.imdecode(np.frombuffer(body, np.uint8), flags)
    except cv2.error:
        return None
    if array is None or array.shape[:2] != (header.image.height, header.image.width):
        return None
    width, height = size
    if header.orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    array = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
    return Image.fromarray(array if grey else cv2.cvtColor(array, cv2.COLOR_BGR2RGB))
