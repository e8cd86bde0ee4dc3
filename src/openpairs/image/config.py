"""Settings, results and the rejection error of the image checks and conversions."""

from __future__ import annotations

from dataclasses import dataclass

from openpairs.core.status import Status

RESIZE_MODES = ("no", "keep_ratio", "keep_ratio_largest", "center_crop", "border")
ENCODE_FORMATS = ("jpg", "webp", "png")

# Pillow format name -> (file extension, MIME type) of the formats we accept.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "ICO": ("ico", "image/x-icon"),
    "AVIF": ("avif", "image/avif"),
}
OPEN_FORMATS = [name for name in FORMATS if name != "MPO"]  # the JPEG plugin opens MPO files


@dataclass(frozen=True)
class ImageConfig:
    """How images are checked, resized and encoded (img2dataset's options, LAION's limits)."""

    image_size: int = 256
    resize_mode: str = "border"  # no | keep_ratio | keep_ratio_largest | center_crop | border
    upscale: bool = False  # False: resize only down (img2dataset's resize_only_if_bigger=True)
    encode_format: str = "jpg"  # jpg | webp | png
    encode_quality: int = 95  # jpg/webp quality; for png the zlib level when 0-9, else Pillow's default
    min_bytes: int = 5000  # LAION's 5 KB
    max_pixels: int = 89_478_484  # LAION-5B's decompression-bomb limit (w*h)
    min_side: int = 0  # 0 = off
    max_aspect_ratio: float = 0.0  # 0 = off
    keep_original: bool = False  # store the original bytes (still validated)
    border_color: tuple[int, int, int] = (255, 255, 255)  # img2dataset 1.47 pads with white

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}"
            )
        if self.encode_format not in ENCODE_FORMATS:
            raise ValueError(f"encode_format must be one of {', '.join(ENCODE_FORMATS)}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if not 0 <= self.encode_quality <= 100:
            raise ValueError(f"encode_quality must be in 0..100, got {self.encode_quality}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")


class ImageRejected(Exception):
    """A body that is not stored: `.status` is a Status value, `.reason` says why, `.signal` names the
    opt-out signal of an `opted_out` body."""

    def __init__(self, status: Status, reason: str, signal: str | None = None) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.signal = signal


@dataclass(frozen=True)
class ProcessedImage:
    """A checked, converted image ready to store, with its original and stored sizes."""

    data: bytes
    ext: str
    mime: str
    width: int
    height: int
    original_width: int  # displayed size: after EXIF orientation
    original_height: int
    sha256: str  # hex sha256 of the ORIGINAL bytes
