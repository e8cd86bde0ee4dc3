"""Evaluation sets for `openpairs decontaminate`: read their images, embed them with the dataset's own CLIP
exactly as the clip stage embeds images, and hash them with PDQ.

An evaluation set is a folder of images (searched recursively; an item is named by its path inside the
folder), or a webdataset: one `.tar` or a folder of `.tar` shards (an item is `<tar name>/<member key>`).
Each set is one task: `decontaminate/eval/<j>.parquet` (eval_set, eval_item, status, pdq, pdq_quality) with
`decontaminate/eval/emb/<j>.npy` (float16, L2-normalised, row order = parquet order; zero rows for images
that did not decode, whose status says why).
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import clip_io
from openpairs.stages.clip import ClipConfig, image_batches, preload
from openpairs.stages.runner import ShardTask

EVAL_STAGE = "decontaminate/eval"
EVAL_SCHEMA = pa.schema(
    [
        ("eval_set", pa.string()),
        ("eval_item", pa.string()),
        ("status", pa.string()),
        ("pdq", pa.string()),
        ("pdq_quality", pa.int32()),
    ]
)


class EvalSetError(ValueError):
    """An evaluation set path that is neither a folder of images nor a webdataset."""


@dataclass(frozen=True)
class EvalSet:
    """One named evaluation set and where its images are."""

    name: str
    path: str


@dataclass(frozen=True)
class EvalEmbedConfig:
    """The dataset's clip config (the model recorded for its clip stage) and the evaluation sets."""

    clip: ClipConfig
    sets: tuple[EvalSet, ...]


def eval_set_name(path: str) -> str:
    """The default name of an evaluation set: its folder's or file's stem."""
    base = posixpath.basename(path.rstrip("/"))
    return base.removesuffix(".tar") if base.endswith(".tar") else base


def eval_tasks(out: str, sets: tuple[EvalSet, ...]) -> list[ShardTask]:
    """One task per evaluation set (index = its position on the command line)."""
    return [ShardTask(stage=EVAL_STAGE, index=j, inputs=(s.path,), out=out) for j, s in enumerate(sets)]


def iter_eval_images(path: str, stats: ShardStats) -> Iterator[tuple[str, bytes]]:
    """(item name, encoded bytes) of every image of an evaluation set, in a stable order."""
    if path.endswith(".tar"):
        if not ofs.exists(path):
            raise EvalSetError(f"evaluation set {path} does not exist")
        yield from _tar_items(path, stats)
        return
    fs, root = ofs.filesystem(path)
    if not fs.isdir(root):
        raise EvalSetError(f"evaluation set {path} is neither a folder of images nor a .tar webdataset")
    tars = ofs.list_files(path, ".tar")
    if tars:
        for tar in tars:
            yield from _tar_items(tar, stats)
        return
    prefix = root.rstrip("/") + "/"
    for found in sorted(fs.find(root), key=ofs.natural_order):
        name = str(found)[len(prefix) :]
        if name.rpartition(".")[2].lower() in clip_io.IMAGE_EXTENSIONS:
            with fs.open(found, "rb") as handle:
                yield name, handle.read()


def _tar_items(tar: str, stats: ShardStats) -> Iterator[tuple[str, bytes]]:
    shard = posixpath.basename(tar)
    for key, data in clip_io.iter_tar_images(tar, stats):
        yield f"{shard}/{key}", data


def run_eval_set(config: EvalEmbedConfig, task: ShardTask) -> ShardStats:
    """Embed and PDQ-hash one evaluation set; writes its parquet and embeddings atomically."""
    stats = ShardStats(stage=EVAL_STAGE, shard=task.index)
    eval_set = config.sets[task.index]
    models = preload(config.clip)
    position: dict[str, int] = {}
    hashes: list[Any] = []
    vectors: dict[int, np.ndarray] = {}
    errors: dict[str, str] = {}
    images = _hashed(iter_eval_images(eval_set.path, stats), position, hashes)
    for batch in image_batches(config.clip, models, images):
        for key, decoded in zip(batch.keys, batch.decoded, strict=True):
            if decoded.error is not None:
                errors[key] = decoded.error
        good = batch.good()
        if good:
            tensors = clip_io.stack([batch.decoded[i].clip for i in good], models.clip.device)
            encoded = models.clip.encode_images(tensors)
            vectors.update((position[batch.keys[i]], v) for i, v in zip(good, encoded, strict=True))
    if not position:
        raise EvalSetError(f"evaluation set {eval_set.name!r} ({eval_set.path}) holds no image")
    emb = clip_io.zeros(len(position), models.clip.dim)
    for row, vector in vectors.items():
        emb[row] = vector
    buffer = io.BytesIO()
    np.save(buffer, emb.astype(np.float16))
    commit.write_bytes_atomic(task.paths.file("npy", "emb"), buffer.getvalue())
    commit.write_parquet_atomic(
        _eval_table(eval_set.name, list(position), hashes, errors, stats), task.paths.file("parquet")
    )
    return stats


def _hashed(
    images: Iterator[tuple[str, bytes]], position: dict[str, int], hashes: list[Any]
) -> Iterator[tuple[str, bytes]]:
    """Pass the images on, numbering each item and keeping its PDQ hash (None when it does not decode)."""
    for name, data in images:
        if name in position:
            raise EvalSetError(f"evaluation set item {name!r} appears twice")
        position[name] = len(position)
        hashes.append(image_pdq(data))
        yield name, data


def _eval_table(
    name: str, items: list[str], hashes: list[Any], errors: dict[str, str], stats: ShardStats
) -> Any:
    """One row per item: its status (ok or decode_error, counted) and its PDQ hash and quality."""
    rows: dict[str, list[Any]] = {field: [] for field in EVAL_SCHEMA.names}
    for item, pdq in zip(items, hashes, strict=True):
        error = errors.get(item) or (None if pdq else "no PDQ hash")
        status = Status.DECODE_ERROR if error else Status.OK
        stats.count(status)
        if error:
            stats.error(f"decode_error: {error} ({item})")
        values = (name, item, status, pdq.hex if pdq else None, pdq.quality if pdq else None)
        for field, value in zip(EVAL_SCHEMA.names, values, strict=True):
            rows[field].append(value)
    return pa.table(rows, schema=EVAL_SCHEMA)


def image_pdq(data: bytes) -> Any:
    """The PDQ hash of encoded image bytes (safety.pdq.PdqHash), or None when they do not decode."""
    from PIL import Image

    from openpairs.safety.pdq import pdq_of

    try:
        with Image.open(io.BytesIO(data)) as image:
            return pdq_of(image)
    except Exception:
        return None


def read_eval_set(out: str, index: int) -> tuple[Any, np.ndarray]:
    """An embedded evaluation set: its table and its float32 embeddings."""
    paths = ShardTask(stage=EVAL_STAGE, index=index, inputs=(), out=out).paths
    table = ofs.read_parquet(paths.file("parquet"))
    with ofs.open_file(paths.file("npy", "emb"), "rb") as handle:
        emb = np.load(handle).astype(np.float32)
    return table, emb
