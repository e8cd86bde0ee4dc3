"""atheris harness: bytes as a downloaded image body through the probe, decode, resize and encode path."""

from __future__ import annotations

from collections.abc import Iterator

from harness import fuzz, instrumented

with instrumented():
    from openpairs.core.status import Status
    from openpairs.image import ImageConfig, ImageRejected
    from openpairs.image.config import RESIZE_MODES
    from openpairs.stages.download_memory import process_bounded
    from tests.fuzz.seeds import seed_images

# The first byte picks a configuration: resize mode, output format, keep_original (the rest is the body).
CONFIGS = [
    ImageConfig(
        image_size=48,
        resize_mode=mode,
        encode_format=fmt,
        keep_original=keep,
        min_bytes=0,
        max_pixels=16_000_000,
    )
    for mode in RESIZE_MODES
    for fmt in ("jpg", "webp", "png")
    for keep in (False, True)
]
REJECTIONS = {Status.DECODE_ERROR, Status.TOO_LARGE, Status.TOO_SMALL, Status.BAD_SIZE}


def seeds() -> Iterator[tuple[str, bytes]]:
    """Every seed image (each format and flavour the download accepts), behind a configuration byte."""
    for number, (name, data) in enumerate(sorted(seed_images().items())):
        yield name, bytes([number % len(CONFIGS)]) + data


def one_input(data: bytes) -> None:
    """A stored image, or ImageRejected with one of the image statuses: nothing else may escape."""
    if not data:
        return
    config = CONFIGS[data[0] % len(CONFIGS)]
    try:
        image = process_bounded(data[1:], config)
    except ImageRejected as rejected:
        if rejected.status not in REJECTIONS or not rejected.reason:
            raise AssertionError(f"unexpected rejection {rejected.status}: {rejected.reason!r}") from None
        return
    if not image.data or image.width < 1 or image.height < 1:
        raise AssertionError(f"empty stored image: {image.width}x{image.height}, {len(image.data)} bytes")


if __name__ == "__main__":
    fuzz("images", one_input, seeds())
