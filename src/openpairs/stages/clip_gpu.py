"""Tensor decode path of the clip stage: JPEGs decoded by torchvision (nvJPEG on CUDA), preprocessed on the
device, with a per-image PIL fallback.

`decode_batch` turns a batch's encoded images into the same `Decoded` records as `clip_io.decode_one`, but the
CLIP (and watermark) inputs are computed from a uint8 tensor on `device`: `torchvision.io.decode_jpeg` in one
call for the batch's JPEGs, then the model's own preprocessing (resize of the short side, centre crop, scale to
[0, 1], mean/std) replayed with torchvision's tensor ops. PNG, WebP, GIF, a JPEG the decoder refuses and any
image whose header PIL cannot read go through PIL (`Decoded.via == "pil_fallback"`), and geometry, scaling and
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
    """A torchvision Compose (Resize, CenterCrop, ToTensor, Normalize) replayed on a (3, H, W) uint8 tensor."""

    steps: tuple[tuple[str, Any], ...]

    def __call__(self, image: Any) -> Any:
        """(3, H, W) uint8 tensor on any device -> the float32 model input on the same device."""
        from torchvision.transforms.v2 import functional as F

        x = image
        for name, arg in self.steps:
            if name == "resize":
                x = F.resize(x, arg[0], interpolation=arg[1], antialias=True)  # uint8 in, rounded uint8 out
            elif name == "crop":
                x = F.center_crop(x, arg)
            elif name == "scale":
                x = x.float().div_(255.0)
            else:
                x = F.normalize(x, arg[0], arg[1])
        return x


def tensor_transform(compose: Any) -> TensorTransform:
    """The tensor replay of a torchvision Compose; TensorPreprocessError names a step it cannot replay."""
    steps: list[tuple[str, Any]] = []
    for step in getattr(compose, "transforms", [compose]):
        kind = type(step).__name__
        if kind == "Resize" and step.max_size is None:
            size = [step.size] if isinstance(step.size, int) else list(step.size)
            steps.append(("resize", (size, step.interpolation)))
        elif kind == "CenterCrop":
            steps.append(("crop", list(step.size)))
        elif kind in ("ToTensor", "MaybeToTensor"):
            steps.append(("scale", None))
        elif kind == "Normalize":
            steps.append(("normalize", (list(step.mean), list(step.std))))
        elif kind not in ("MaybeConvertMode", "_convert_to_rgb"):  # decoded images are RGB already
            raise TensorPreprocessError(f"the tensor decode path cannot replay the preprocessing step {step}")
    return TensorTransform(tuple(steps))


@dataclass(frozen=True)
class TensorPreprocessors:
    """What the tensor path computes per image, and where."""

    clip: TensorTransform
    clip_size: int
    device: str
    watermark: TensorTransform | None = None
    phash: bool = False


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
    decoded: list[Decoded | None] = [None] * len(blobs)
    for i, image in zip(jpegs, _decode_jpegs([blobs[i] for i in jpegs], pre.device), strict=True):
        decoded[i] = _finish(image, pre, "tensor") if image is not None else None
    out = [d if d is not None else _pil_fallback(data, pre) for d, data in zip(decoded, blobs, strict=True)]
    if pre.device.startswith("cuda"):
        import torch

        torch.cuda.current_stream(
            pre.device
        ).synchronize()  # the batch is ready before another thread uses it
    return out


def _tensor_decodable(data: bytes) -> bool:
    """A JPEG whose header PIL reads (the same pixel-count limit as the PIL path) in a mode the decoder handles."""
    from PIL import Image

    try:
        header = Image.open(io.BytesIO(data))
    except Exception:
        return False  # PIL itself will report the error
    return header.format == "JPEG" and header.mode in TENSOR_MODES


def _decode_jpegs(blobs: list[bytes], device: str) -> list[Any]:
    """(3, H, W) uint8 tensors on `device`, one call for the batch; None where the decoder refuses an image."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    if not blobs:
        return []
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        return [_decode_jpeg_or_none(d, device) for d in data]  # find the image(s) the decoder refuses


def _decode_jpeg_or_none(data: Any, device: str) -> Any:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return None


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
    return _finish(image, pre, "pil_fallback")


def _finish(image: Any, pre: TensorPreprocessors, via: str) -> Decoded:
    """Preprocess one decoded (3, H, W) uint8 tensor for every consumer."""
    try:
        out = Decoded(clip=pre.clip(image), via=via)
        if pre.watermark is not None:
            out.watermark = pre.watermark(image)
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
