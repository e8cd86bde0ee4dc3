"""Tensor decode path of the clip stage: JPEGs decoded by torchvision (nvJPEG on CUDA), preprocessed on the
device, with a per-image PIL fallback.

`decode_batch` turns a batch's encoded images into the same `Decoded` records as `clip_io.decode_one`, but the
CLIP (and watermark) inputs are computed from a uint8 tensor on `device`: `torchvision.io.decode_jpeg` in one
call for the batch's JPEGs, then the model's own preprocessing (resize of the short side, centre crop, scale to
[0, 1], mean/std) replayed with torchvision's tensor ops. PNG, WebP, GIF, a JPEG the decoder refuses, one over
PIL's pixel limit and any image whose header PIL cannot read go through PIL (`Decoded.via == "pil_fallback"`), and geometry, scaling and
normalisation are still the tensor ops. A failure stays the image's own `decode_error`, never the batch's.
The same code runs with device="cpu" (libjpeg-turbo), which is how it is tested without a GPU.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openpairs.models.clip import to_device
from openpairs.stages.clip_io import BatchDecoder, Decoded, Preprocessors, decode_error_message, draft_target

if TYPE_CHECKING:
    from openpairs.stages.clip_models import WorkerModels

DECODERS = ("auto", "tensor", "pil")
# torchvision 0.29 warns on every decode call that TorchCodec will take image decoding over; same calls there.
warnings.filterwarnings(
    "ignore", "The image decoding and encoding capabilities of TorchVision", DeprecationWarning
)
TENSOR_MODES = frozenset({"RGB", "L", "CMYK"})  # JPEG colour modes the tensor decoder converts like PIL


class TensorPreprocessError(ValueError):
    """A torchvision transform with a step the tensor path cannot replay."""


@dataclass(frozen=True)
class TensorTransform:
    """A torchvision Compose (Resize, CenterCrop, ToTensor, Normalize) replayed on uint8 image tensors.

    The geometry (resize, crop) runs per image in uint8, rounded like PIL's; scaling and mean/std run once on
    the stacked batch (one kernel for the batch instead of one per image).
    """

    geometry: tuple[tuple[str, Any], ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def shape(self, image: Any) -> Any:
        """(3, H, W) uint8 tensor on any device -> resized and cropped uint8 on the same device."""
        from torchvision.transforms.v2 import functional as F

        for name, arg in self.geometry:
            if name == "resize":
                image = F.resize(image, arg[0], interpolation=arg[1], antialias=True)
            else:
                image = F.center_crop(image, arg)
        return image

    def finish(self, batch: Any) -> Any:
        """(N, 3, S, S) uint8 from `shape` -> the float32 model input: scaled to [0, 1], mean/std."""
        from torchvision.transforms.v2 import functional as F

        x = batch.float().div_(255.0)
        return F.normalize(x, list(self.mean), list(self.std)) if self.mean and self.std else x

    def batch(self, images: list[Any]) -> Any:
        """(3, H, W) uint8 images of any sizes -> the (N, 3, S, S) float32 model input."""
        import torch

        return self.finish(torch.stack([self.shape(image) for image in images]))

    def __call__(self, image: Any) -> Any:
        """One (3, H, W) uint8 image -> its float32 model input."""
        return self.batch([image])[0]


def tensor_transform(compose: Any) -> TensorTransform:
    """The tensor replay of a torchvision Compose; TensorPreprocessError names a step it cannot replay."""
    geometry: list[tuple[str, Any]] = []
    scaled, normalize = False, None
    for step in getattr(compose, "transforms", [compose]):
        kind = type(step).__name__
        if kind in ("Resize", "CenterCrop") and not scaled and getattr(step, "max_size", None) is None:
            size = [step.size] if isinstance(step.size, int) else list(step.size)
            geometry.append(("resize", (size, step.interpolation)) if kind == "Resize" else ("crop", size))
        elif kind in ("ToTensor", "MaybeToTensor") and not scaled:
            scaled = True
        elif kind == "Normalize" and scaled and normalize is None:
            normalize = (tuple(step.mean), tuple(step.std))
        elif kind not in ("MaybeConvertMode", "_convert_to_rgb"):  # decoded images are RGB already
            raise TensorPreprocessError(f"the tensor decode path cannot replay the preprocessing step {step}")
    if not scaled:
        raise TensorPreprocessError(f"the preprocessing {compose} does not end in a tensor")
    return TensorTransform(tuple(geometry), *(normalize or (None, None)))


@dataclass(frozen=True)
class TensorPreprocessors:
    """What the tensor path computes per image, and where."""

    clip: TensorTransform
    clip_size: int
    device: str
    watermark: TensorTransform | None = None
    phash: bool = False


def check_decoder(decoder: str) -> None:
    """Raise ValueError unless `decoder` is one of DECODERS."""
    if decoder not in DECODERS:
        raise ValueError(f"image_decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")


def use_tensor_decode(decoder: str, device: str) -> bool:
    """Whether the clip stage decodes with the tensor path: `auto` means on CUDA only."""
    return decoder == "tensor" or (decoder == "auto" and device.startswith("cuda"))


def batch_decoder(decoder: str, models: WorkerModels, pre: Preprocessors) -> BatchDecoder | None:
    """The clip stage's tensor batch decoder for this config, or None for the PIL path.

    `auto` uses the tensor path on CUDA when the model's preprocessing can be replayed on tensors (else PIL);
    `tensor` asks for it on any device and raises TensorPreprocessError when it cannot be replayed.
    """
    if not use_tensor_decode(decoder, models.clip.device):
        return None
    try:
        tensor_pre = TensorPreprocessors(
            clip=tensor_transform(models.clip.transform),
            clip_size=pre.clip_size,
            device=models.clip.device,
            watermark=tensor_transform(pre.watermark) if pre.watermark is not None else None,
            phash=pre.phash,
        )
    except TensorPreprocessError:
        if decoder == "tensor":
            raise
        return None
    return functools.partial(decode_batch, pre=tensor_pre)


def decode_batch(blobs: list[bytes], pre: TensorPreprocessors) -> list[Decoded]:
    """Decode and preprocess a batch of encoded images on `pre.device`; one Decoded per blob, in order."""
    jpegs = [i for i, data in enumerate(blobs) if _tensor_decodable(data)]
    pixels: list[Any] = [None] * len(blobs)
    for i, image in zip(jpegs, decode_jpegs([blobs[i] for i in jpegs], pre.device), strict=True):
        pixels[i] = image
    out = [
        _shaped(image, pre, "tensor") if image is not None else _pil_fallback(data, pre)
        for image, data in zip(pixels, blobs, strict=True)
    ]
    _finish_batch(out, pre)
    if pre.device.startswith("cuda"):
        import torch

        torch.cuda.current_stream(pre.device).synchronize()  # ready before the model's thread reads it
    return out


def _finish_batch(decoded: list[Decoded], pre: TensorPreprocessors) -> None:
    """Scale and normalise the batch's shaped uint8 inputs in one go (each Decoded gets its row)."""
    import torch

    good = [d for d in decoded if d.error is None]
    if not good:
        return
    for d, row in zip(good, pre.clip.finish(torch.stack([d.clip for d in good])).unbind(0), strict=True):
        d.clip = row
    if pre.watermark is not None:
        batch = pre.watermark.finish(torch.stack([d.watermark for d in good]))
        for d, row in zip(good, batch.unbind(0), strict=True):
            d.watermark = row


def _tensor_decodable(data: bytes) -> bool:
    """A JPEG whose header PIL reads (the same pixel-count limit as the PIL path) in a mode the decoder handles."""
    from PIL import Image

    try:
        header = Image.open(io.BytesIO(data))
    except Exception:
        return False  # PIL itself will report the error
    return header.format == "JPEG" and header.mode in TENSOR_MODES


def decode_jpegs(blobs: list[bytes], device: str) -> list[Any]:
    """(3, H, W) uint8 tensors on `device`, one call for the batch; None where the decoder refuses an image."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    if not blobs:
        return []
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
    except Exception:  # torchvision raises RuntimeError; any failure is retried image by image
        return [_decode_jpeg_or_none(d, device) for d in data]  # find the image(s) the decoder refuses


def _decode_jpeg_or_none(data: Any, device: str) -> Any:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except Exception:
        return None  # PIL decodes it, or reports the error


def _pil_fallback(data: bytes, pre: TensorPreprocessors) -> Decoded:
    """PIL decodes (JPEG draft mode as in the PIL path); the tensor ops preprocess; errors stay per image."""
    import numpy as np
    import torch
    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(data))
        if opened.format == "JPEG":
            target = draft_target(pre.clip_size, pre.watermark is not None)
            opened.draft("RGB", (target, target))
        pixels = np.array(opened.convert("RGB"), dtype=np.uint8)
        image = to_device(torch.from_numpy(pixels).permute(2, 0, 1), pre.device)
    except Exception as exc:
        return Decoded(error=decode_error_message(exc), via="pil_fallback")
    return _shaped(image, pre, "pil_fallback")


def _shaped(image: Any, pre: TensorPreprocessors, via: str) -> Decoded:
    """Resize and crop one decoded (3, H, W) uint8 tensor for every consumer (pHash from the full image)."""
    try:
        out = Decoded(clip=pre.clip.shape(image), via=via)
        if pre.watermark is not None:
            out.watermark = pre.watermark.shape(image)
        if pre.phash:
            out.phash = _phash(image)
        return out
    except Exception as exc:
        return Decoded(error=decode_error_message(exc), via=via)


def _phash(image: Any) -> str:
    """imagehash's pHash of the decoded image (a host copy: pHash is computed by PIL)."""
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.fromarray(image.permute(1, 2, 0).cpu().numpy())))
