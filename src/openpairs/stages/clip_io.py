"""Clip stage input: the downloaded rows of a shard, and its tar's images decoded in parallel threads.

Decoding (PIL, with JPEG draft-mode downscaling) and preprocessing run in a thread pool one batch ahead
of inference, so the CPU or GPU never waits for JPEG decoding.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import fs as ofs

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp"})
PREFETCH_BATCHES = 2


@dataclass
class ShardRows:
    """The rows of a download shard that were downloaded (status ok), in parquet order."""

    keys: list[str]
    captions: list[str]
    languages: list[str]

    @property
    def position(self) -> dict[str, int]:
        """key -> row index."""
        return {key: i for i, key in enumerate(self.keys)}


def read_downloaded_rows(parquet_path: str, stats: ShardStats) -> ShardRows:
    """Rows with download status ok; the others are only counted (`not_downloaded` counter)."""
    import pyarrow.parquet as pq

    with ofs.open_file(parquet_path, "rb") as handle:
        table = pq.read_table(handle)
    missing = {"key", "status", "caption"} - set(table.column_names)
    if missing:
        raise ValueError(
            f"{parquet_path} is not a download-stage parquet: missing column(s) {sorted(missing)}"
        )
    status = table.column("status").to_pylist()
    keep = [i for i, s in enumerate(status) if s == Status.OK]
    stats.bump("not_downloaded", len(status) - len(keep))
    keys = table.column("key").to_pylist()
    captions = table.column("caption").to_pylist()
    langs = table.column("language").to_pylist() if "language" in table.column_names else [""] * len(keys)
    return ShardRows(
        keys=[str(keys[i]) for i in keep],
        captions=[captions[i] or "" for i in keep],
        languages=[langs[i] or "" for i in keep],
    )


def iter_tar_images(tar_path: str, stats: ShardStats) -> Iterator[tuple[str, bytes]]:
    """(key, encoded image bytes) for every image member of a webdataset tar, streaming.

    A missing tar is an error (the download shard is incomplete); a truncated or corrupt tar ends the
    stream with a counted error, so the images after the damage become `missing_image` rows.
    """
    if not ofs.exists(tar_path):
        raise FileNotFoundError(f"{tar_path} is missing: the download shard is incomplete (rerun download)")
    try:
        with ofs.open_file(tar_path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
            for member in tar:
                stem, _, ext = posixpath.basename(member.name).rpartition(".")
                if not member.isfile() or ext.lower() not in IMAGE_EXTENSIONS:
                    continue
                data = tar.extractfile(member)
                if data is not None:
                    yield stem, data.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        stats.bump("tar_read_errors")
        stats.error(f"tar read error in {posixpath.basename(tar_path)}: {type(exc).__name__}: {exc}")


@dataclass
class Decoded:
    """One decoded image: CLIP input, optional watermark input and pHash, or the decode error."""

    clip: Any = None
    watermark: Any = None
    phash: str | None = None
    error: str | None = None
    via: str | None = None  # tensor path only: "tensor" (torchvision/nvJPEG) or "pil_fallback"


@dataclass
class Preprocessors:
    """What to compute per image: CLIP preprocessing (+ watermark input, + pHash)."""

    clip: Callable[[Any], Any]
    clip_size: int
    watermark: Callable[[Any], Any] | None = None
    phash: bool = False


def decode_one(data: bytes, pre: Preprocessors) -> Decoded:
    """Decode and preprocess one image; any failure becomes `Decoded.error`."""
    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(data))
        target = draft_target(pre.clip_size, pre.watermark is not None)
        if opened.format == "JPEG":
            opened.draft("RGB", (target, target))  # DCT-domain downscale, still >= target
        image = opened.convert("RGB")
        out = Decoded(clip=pre.clip(image))
        if pre.watermark is not None:
            out.watermark = pre.watermark(image)
        if pre.phash:
            import imagehash

            out.phash = str(imagehash.phash(image))
        return out
    except Exception as exc:
        return Decoded(error=decode_error_message(exc))


def draft_target(clip_size: int, watermark: bool) -> int:
    """The smallest side a JPEG may be DCT-downscaled to: what the CLIP (and watermark) inputs need."""
    return max(clip_size, 256 if watermark else 0)


def decode_error_message(exc: BaseException) -> str:
    """A decode failure as a short message without object addresses (so equal errors count together)."""
    return re.sub(r" ?<[^>]* at 0x[0-9a-f]+>", "", f"{type(exc).__name__}: {exc}")[:200]


@dataclass
class ImageBatch:
    """A decoded batch: keys, per-key Decoded, and the stacked CLIP/watermark inputs of the good ones."""

    keys: list[str]
    decoded: list[Decoded]

    def good(self) -> list[int]:
        """Positions that decoded."""
        return [i for i, d in enumerate(self.decoded) if d.error is None]


BatchDecoder = Callable[[list[bytes]], list[Decoded]]


def decoded_batches(
    images: Iterator[tuple[str, bytes]],
    pre: Preprocessors,
    batch_size: int,
    workers: int,
    batch_decoder: BatchDecoder | None = None,
) -> Iterator[ImageBatch]:
    """Batches of decoded images, decoding up to PREFETCH_BATCHES batches ahead in `workers` threads.

    Without `batch_decoder` each image is one `decode_one` task; with it (the tensor path) each batch is one
    task. The batch boundaries are the same either way: `batch_size` images in tar order.
    """
    pending: deque[tuple[list[str], list[Future[list[Decoded]]]]] = deque()
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="clip-decode") as pool:
        for chunk in _chunks(images, batch_size):
            blobs = [data for _, data in chunk]
            if batch_decoder is None:
                futures = [pool.submit(_decode_as_list, data, pre) for data in blobs]
            else:
                futures = [pool.submit(batch_decoder, blobs)]
            pending.append(([k for k, _ in chunk], futures))
            if len(pending) > PREFETCH_BATCHES:
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())


def _decode_as_list(data: bytes, pre: Preprocessors) -> list[Decoded]:
    return [decode_one(data, pre)]


def _collect(keys: list[str], futures: list[Future[list[Decoded]]]) -> ImageBatch:
    return ImageBatch(keys=keys, decoded=[d for f in futures for d in f.result()])


def _chunks(items: Iterator[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stack(tensors: list[Any], device: str = "cpu") -> Any:
    """Stack preprocessed tensors into a batch on `device` (pinned, non-blocking copy from the CPU to CUDA)."""
    import torch

    from openpairs.models.clip import to_device

    first = tensors[0].device
    return to_device(torch.stack([t.to(first) for t in tensors]), device)


def zeros(n: int, dim: int) -> np.ndarray:
    """An (n, dim) float32 zero matrix (rows without an image or a caption stay zero)."""
    return np.zeros((n, dim), dtype=np.float32)
