"""Pure image checks and conversions for the download stage: header probe, decode, resize, encode."""

from openpairs.image.config import ImageConfig, ImageRejected, ProcessedImage
from openpairs.image.probe import probe_size
from openpairs.image.process import process_image

__all__ = ["ImageConfig", "ImageRejected", "ProcessedImage", "probe_size", "process_image"]
