"""TFDS export: the `manual_dir` that TFDS's own `laion400m` builder (tensorflow-datasets 4.9.10) reads.

Part j (evenly sized, like every export) is, under the builder's own names:
- `{j:05d}.tar` (the `images` config): members `<row>.<jpg|webp|png>`, `<row>.txt` and `<row>.json`, where
  `<row>` is the sample's row in the part's parquet: the builder looks each image up by
  `metadata.iloc[int(stem)]`, so sample keys cannot name the members;
- `{j:05d}.parquet`: the columns the builder reads (`caption`, `url`, `NSFW`, `LICENSE`, `similarity`,
  `original_width`, `original_height`) plus our `key` and the stored `width` and `height`;
- `img_emb_{j}.npy`, `text_emb_{j}.npy` (float16, (n, 512)) and `metadata_{j}.parquet` (the same rows) for
  the `embeddings` config, whose builder asks for them by LAION's URLs: `checksums/{j:05d}.txt` lists each
  URL with the file's size, sha256 and name, so TFDS takes the file from `manual_dir` instead of the web
  once that folder is registered (`tfds.download.add_checksums_dir`). They are written only for 512-d
  embeddings (ViT-B/32's width), the only shape that config accepts.
The builder's `num_shards` must be set to the number of parts: `_manifest.json` records it (`tfds`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core import crashpoints
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import export_join as join
from openpairs.stages.export_webdataset import add_member, iter_samples

# The builder's `_EMBEDDINGS_URL` and `_CLIP_EMBEDDING_SHAPE` (tensorflow_datasets/vision_language/laion400m).
EMBEDDINGS_URL = "https://deploy.laion.ai/8f83b608504d46bb81708ec86e912220/embeddings/"
EMBEDDING_DIM = 512
CHECKSUMS_DIR = "checksums"
TFDS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("NSFW", pa.string()),
        pa.field("LICENSE", pa.string()),
        pa.field("similarity", pa.float64()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
    ]
)
_RENAMED = {"NSFW": "nsfw", "LICENSE": "license"}


def tfds_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The builder's parquet columns (upper-case NSFW and LICENSE, as LAION's metadata) of `rows`."""
    columns = {name: [row[_RENAMED.get(name, name)] for row in rows] for name in TFDS_SCHEMA.names}
    return pa.table(columns, schema=TFDS_SCHEMA)


def write_tfds_part(directory: str, views: list[join.ShardView], index: int, embeddings: bool) -> list[str]:
    """Write part `index` of the TFDS layout from `views`; returns the files written."""
    name = commit.shard_name(index)
    tar_path = ofs.join(directory, f"{name}.tar")
    rows, img, txt = _write_tar(tar_path, views)
    crashpoints.reached("export.part", index)
    table = _parquet_bytes(tfds_table(rows))
    parquet = ofs.join(directory, f"{name}.parquet")
    commit.write_bytes_atomic(parquet, table)
    written = [tar_path, parquet]
    if embeddings and _fits_embeddings_config(img) and _fits_embeddings_config(txt):
        written += _write_embeddings_config(directory, index, table, np.stack(img), np.stack(txt))
    return written


def _write_tar(path: str, views: list[join.ShardView]) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    """Stream the views' kept samples into one tar whose members are named by row; returns the rows and
    their image and text embeddings (None where the clip stage made none)."""
    rows: list[dict[str, Any]] = []
    img: list[Any] = []
    txt: list[Any] = []
    with (
        commit.atomic_open(path) as handle,
        tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for view in (view for view in views if len(view)):
            for row, (ext, data), image_emb, text_emb in iter_samples(view):
                stem = str(len(rows))
                add_member(tar, f"{stem}.{ext}", data)
                add_member(tar, f"{stem}.txt", str(row["caption"]).encode("utf-8"))
                add_member(tar, f"{stem}.json", join.row_json(row))
                rows.append(row)
                img.append(image_emb)
                txt.append(text_emb)
    return rows, img, txt


def _fits_embeddings_config(arrays: list[Any]) -> bool:
    """True when every row has an embedding of the width TFDS's embeddings config reads."""
    return bool(arrays) and all(a is not None and a.shape == (EMBEDDING_DIM,) for a in arrays)


def _write_embeddings_config(
    directory: str, index: int, metadata: bytes, img: np.ndarray, txt: np.ndarray
) -> list[str]:
    """Write the embeddings config's three files of part `index` and the checksums that point TFDS at them."""
    files = {
        f"img_emb_{index}.npy": _npy_bytes(img),
        f"text_emb_{index}.npy": _npy_bytes(txt),
        f"metadata_{index}.parquet": metadata,
    }
    lines = []
    for file_name, data in files.items():
        commit.write_bytes_atomic(ofs.join(directory, file_name), data)
        folder = file_name.rsplit("_", 1)[0]  # img_emb, text_emb or metadata, as on LAION's server
        digest = hashlib.sha256(data).hexdigest()
        lines.append(f"{EMBEDDINGS_URL}{folder}/{file_name}\t{len(data)}\t{digest}\t{file_name}\n")
    checksums = ofs.join(directory, CHECKSUMS_DIR, f"{commit.shard_name(index)}.txt")
    commit.write_bytes_atomic(checksums, "".join(lines).encode("utf-8"))
    return [ofs.join(directory, name) for name in files] + [checksums]


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float16))
    return buffer.getvalue()


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def tfds_manifest(files: list[str]) -> dict[str, Any]:
    """The manifest's `tfds` entry: the builder's `num_shards` and the configs this export can build."""
    configs = ["images", "embeddings"] if any(f.startswith("img_emb_") for f in files) else ["images"]
    return {"num_shards": sum(f.endswith(".tar") for f in files), "configs": configs}
