"""Output geometry of each resize mode (img2dataset semantics), computed from sizes only."""

from __future__ import annotations

from dataclasses import dataclass

from openpairs.image.config import ImageConfig


@dataclass(frozen=True)
class Plan:
    """What to do to a width x height image: resize to `resize`, then crop `crop`, then pad to `pad`."""

    resize: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None  # left, top, right, bottom
    pad: tuple[int, int, int, int] | None = None  # left, top, full width, full height

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The stored size of a width x height image under this plan."""
        if self.resize:
            width, height = self.resize
        if self.crop:
            width, height = self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]
        if self.pad:
            width, height = self.pad[2], self.pad[3]
        return width, height


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan(width: int, height: int, config: ImageConfig) -> Plan:
    """The resize/crop/pad plan for a displayed width x height image.

    keep_ratio: smallest side -> image_size; center_crop: keep_ratio then a centred square crop;
    keep_ratio_largest: largest side -> image_size; border: keep_ratio_largest then centred padding
    to a square. Without `upscale`, an image whose relevant side is <= image_size is left unchanged
    (img2dataset's resize_only_if_bigger: no crop or pad either).
    """
    size, mode = config.image_size, config.resize_mode
    if mode == "no":
        return Plan()
    side = min(width, height) if mode in ("keep_ratio", "center_crop") else max(width, height)
    if side <= size and not config.upscale:
        return Plan()
    resized = _scaled(width, height, size / side)
    target = None if resized == (width, height) else resized
    w, h = resized
    if mode == "center_crop":
        left, top = (w - size) // 2, (h - size) // 2
        crop = None if (w, h) == (size, size) else (left, top, left + size, top + size)
        return Plan(resize=target, crop=crop)
    if mode == "border" and (w, h) != (size, size):
        return Plan(resize=target, pad=((size - w) // 2, (size - h) // 2, size, size))
    return Plan(resize=target)
