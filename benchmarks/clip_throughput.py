"""CLIP throughput of the clip stage's own code path, split into decode, preprocess and model (`--device`).

Models are built from their open_clip configs with RANDOM weights (throughput is the same as with real
weights; the embeddings mean nothing). Images are seeded synthetic JPEGs of 180-256 px, the size the download
stage stores, held in memory. Each figure is samples/s after one warm-up batch, with CUDA synchronised:

- decode: bytes -> uint8 pixels (tensor path: `torchvision.io.decode_jpeg` on the device, nvJPEG on CUDA, one
  call per batch; PIL path: PIL with JPEG draft mode, one thread);
- preprocess: pixels -> normalised model input (tensor path: on the device; PIL path: open_clip's transform);
- model: `encode_images` on a ready batch (fp16 on CUDA, fp32 on CPU), and `encode_text` on captions;
- end to end: `clip_io.decoded_batches` (decoding in threads, two batches ahead) feeding `encode_images`,
  which is what the clip stage runs per shard. Equal to `model` means limited by nothing but the model.
"""

from __future__ import annotations

import functools
import io
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PUBLISHED = {  # clip-retrieval's README, image inference samples/s
    "ViT-B-32": "1,500 (RTX 3080), 2,500 (A100)",
    "ViT-L-14": "312 (A100)",
}
TARGET = {"ViT-B-32": ">= 2,500 on one A100-class GPU"}
WORDS = ("red", "blue", "old", "new", "house", "car", "dog", "cat", "tree", "river", "city", "street", "cup")


def photo_like_jpeg(rng: np.random.Generator) -> bytes:
    """One seeded photo-like JPEG of 180-256 px (quality 90), drawn from `rng`."""
    from PIL import Image

    width, height = int(rng.integers(180, 257)), int(rng.integers(180, 257))
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(np.asarray(image, dtype=np.uint8) // 2 + noise * 2 + 40)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def synthetic_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """`count` seeded photo-like JPEGs of 180-256 px (quality 90)."""
    rng = np.random.default_rng(seed)
    return [photo_like_jpeg(rng) for _ in range(count)]


def captions(count: int, seed: int = 0) -> list[str]:
    """`count` seeded captions of 3-13 words."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 14)))) for _ in range(count)]


def random_encoder(model: str, device: str) -> Any:
    """A ClipEncoder of `model` with RANDOM weights (open_clip config, seed 0), as load_clip would run it."""
    import open_clip
    import torch

    from openpairs.models.clip import ClipEncoder

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None)
    net.eval()
    if device.startswith("cuda"):
        net = net.to(device).half()
    dim = int(net.text_projection.shape[1])
    return ClipEncoder(net, preprocess, open_clip.get_tokenizer(model), device, dim, model)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def rate(device: str, batches: list[Any], step: Callable[[Any], Any], warm_up: bool = True) -> float:
    """Items per second of `step` over `batches` (lists or tensors), after one warm-up call."""
    if warm_up:
        step(batches[0])
    _sync(device)
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    _sync(device)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


@dataclass
class Figures:
    """samples/s of one model on one device, stage by stage."""

    decode: float
    preprocess: float
    model: float
    text: float
    end_to_end: float
    cosine_min: float  # tensor-path vs PIL-path image embeddings of the same images


def measure(model: str, device: str, blobs: list[bytes], batch_size: int, decoder: str) -> Figures:
    """Every figure for `model` over `blobs` on `device`, with the tensor or PIL decode path."""
    from openpairs.stages import clip_gpu, clip_io

    encoder = random_encoder(model, device)
    size = encoder.model.visual.image_size
    side = int(size[0] if isinstance(size, tuple | list) else size)
    pil = clip_io.Preprocessors(clip=encoder.preprocess, clip_size=side)
    tensor = clip_gpu.TensorPreprocessors(clip_gpu.tensor_transform(encoder.transform), side, device)
    chunks = [blobs[i : i + batch_size] for i in range(0, len(blobs), batch_size)]
    decode, preprocess, ready = _split_rates(device, chunks, pil, tensor, decoder)
    model_rate = rate(device, ready, encoder.encode_images)
    texts = captions(len(blobs))
    text_batch = 256  # as the clip stage batches captions with --batch-size 0 (4 x 64)
    text = rate(
        device, [texts[i : i + text_batch] for i in range(0, len(texts), text_batch)], encoder.encode_text
    )
    batch_decoder = functools.partial(clip_gpu.decode_batch, pre=tensor) if decoder == "tensor" else None
    workers = max(2, os.cpu_count() or 2)

    def end_to_end(_: Any) -> None:
        images = ((str(i), b) for i, b in enumerate(blobs))
        for batch in clip_io.decoded_batches(images, pil, batch_size, workers, batch_decoder):
            encoder.encode_images(clip_io.stack([d.clip for d in batch.decoded], device))

    e2e = rate(device, [blobs], end_to_end, warm_up=False)  # every part is warm by now
    return Figures(
        decode, preprocess, model_rate, text, e2e, _agreement(encoder, blobs[:batch_size], pil, tensor)
    )


def _split_rates(
    device: str, chunks: list[list[bytes]], pil: Any, tensor: Any, decoder: str
) -> tuple[float, float, list[Any]]:
    """decode/s and preprocess/s of one path, and the preprocessed batches (on `device`) for the model."""
    from PIL import Image

    from openpairs.stages import clip_gpu, clip_io

    if decoder == "tensor":
        pixels = [clip_gpu.decode_jpegs(c, device) for c in chunks]
        decode = rate(device, chunks, lambda c: clip_gpu.decode_jpegs(c, device))
        preprocess = rate(device, pixels, tensor.clip.batch)
        ready = [tensor.clip.batch(p) for p in pixels]
        return decode, preprocess, ready

    def open_rgb(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (pil.clip_size, pil.clip_size))
        return image.convert("RGB")

    decoded = [[open_rgb(b) for b in c] for c in chunks]
    decode = rate(device, chunks, lambda c: [open_rgb(b) for b in c])
    preprocess = rate(device, decoded, lambda p: [pil.clip(x) for x in p])
    ready = [clip_io.stack([pil.clip(x) for x in p], device) for p in decoded]
    return decode, preprocess, ready


def _agreement(encoder: Any, blobs: list[bytes], pil: Any, tensor: Any) -> float:
    """The smallest cosine between the tensor path's and the PIL path's embedding of the same image."""
    from openpairs.stages import clip_gpu, clip_io

    mine = encoder.encode_images(
        clip_io.stack([d.clip for d in clip_gpu.decode_batch(blobs, tensor)], encoder.device)
    )
    theirs = encoder.encode_images(
        clip_io.stack([clip_io.decode_one(b, pil).clip for b in blobs], encoder.device)
    )
    return float(np.sum(mine * theirs, axis=1).min())


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's core count."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return f"CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def print_table(device: str, results: dict[str, Figures], images: int, batch_size: int, decoder: str) -> None:
    """One table: our stage-by-stage samples/s beside clip-retrieval's published figures and the target."""
    print(f"\n{images} images, batch {batch_size}, {decoder} decode, RANDOM weights, {device_name(device)}")
    header = (
        "model",
        "decode/s",
        "preprocess/s",
        "model/s",
        "text/s",
        "end-to-end/s",
        "e2e/model",
        "cos min",
    )
    print(
        f"{header[0]:10}" + "".join(f"{h:>14}" for h in header[1:]) + "   clip-retrieval published | target"
    )
    for model, f in results.items():
        cells = (f.decode, f.preprocess, f.model, f.text, f.end_to_end)
        line = f"{model:10}" + "".join(f"{c:>14,.1f}" for c in cells)
        line += f"{f.end_to_end / f.model:>14.2f}{f.cosine_min:>14.4f}"
        print(f"{line}   {PUBLISHED.get(model, '-')} | {TARGET.get(model, '-')}")
