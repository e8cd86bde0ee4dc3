"""The clip parquet of one shard: its schema, the per-row image results, and the table built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openpairs.core.schemas import CLIP_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.models.nsfw_tags import tag_nsfw
from openpairs.stages import clip_io
from openpairs.stages.clip_models import WorkerModels


def output_schema() -> Any:
    """The clip parquet schema: the contract columns plus status and phash (image dedup's groups are
    dataset-wide: clip/dup_groups/, stages/image_dedup.py)."""
    import pyarrow as pa

    extra = [("status", pa.string()), ("phash", pa.string())]
    return pa.schema(list(CLIP_SCHEMA) + [pa.field(n, t) for n, t in extra])


@dataclass
class ShardImages:
    """Per-row image results of a shard (rows in ShardRows order)."""

    emb: np.ndarray
    has_image: np.ndarray
    decode_error: np.ndarray
    pwatermark: np.ndarray
    phash: list[str | None]


def annotate(
    keep_phash: bool,
    models: WorkerModels,
    rows: clip_io.ShardRows,
    images: ShardImages,
    text_emb: np.ndarray,
    has_text: np.ndarray,
    stats: ShardStats,
) -> Any:
    """The shard's clip table: similarity, statuses (counted in `stats`), heads, NSFW tag, watermark, pHash."""
    import pyarrow as pa

    both = images.has_image & has_text
    similarity = np.where(both, np.sum(images.emb * text_emb, axis=1, dtype=np.float64), -1.0)
    statuses = [_row_status(i, images, has_text) for i in range(len(rows.keys))]
    for status in statuses:
        stats.count(status)
    scored = int(images.has_image.sum())
    if models.heads.note and scored:
        stats.error(models.heads.note, scored)  # the rows it concerns; the report lists it
    null = ~images.has_image
    # The heads score the image embeddings as written (float16), as LAION scored its released ones: the NSFW
    # detector's categorical dims hold float16 values, and anyone can recompute the scores from img_emb/.
    stored = images.emb.astype(np.float16).astype(np.float32)
    columns = {
        "key": pa.array(rows.keys, pa.string()),
        "similarity": pa.array(similarity, pa.float64()),
        "punsafe": _head_column(models.heads.punsafe, stored, null),
        "nsfw": pa.array(
            tag_nsfw(images.emb, models.prompt_emb, models.sexual, images.has_image), pa.string()
        ),
        "pwatermark": pa.array(images.pwatermark, pa.float32(), mask=np.isnan(images.pwatermark)),
        "aesthetic": _head_column(models.heads.aesthetic, stored, null),
        "status": pa.array(statuses, pa.string()),
        "phash": pa.array(images.phash if keep_phash else [None] * len(rows.keys), pa.string()),
    }
    return pa.table(columns, schema=output_schema())


def _row_status(i: int, images: ShardImages, has_text: np.ndarray) -> str:
    if not images.has_image[i]:
        return Status.DECODE_ERROR if images.decode_error[i] else Status.MISSING_IMAGE
    return Status.OK if has_text[i] else Status.EMPTY_CAPTION


def _head_column(head: Any, emb: np.ndarray, null: np.ndarray) -> Any:
    import pyarrow as pa

    if head is None:
        return pa.nulls(len(emb), pa.float32())
    values = head(emb) if len(emb) else np.zeros(0, dtype=np.float32)
    return pa.array(values.astype(np.float32), pa.float32(), mask=null)
