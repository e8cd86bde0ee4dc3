"""The kept samples of a finished pipeline: download + clip + filter outputs joined per shard.

Shared by `export` and by `openpairs.load`. A `ShardView` holds one shard's kept samples in tar order
(the clip parquet's row order), their embeddings aligned row by row, and the tar to stream images from.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openpairs.core.schemas import NSFW_TAGS
from openpairs.io import fs as ofs
from openpairs.io import listing

DOWNLOAD_DIR = "shards"
CLIP_DIR = "clip"
FILTER_DIR = "filter"

_META_FIELDS: list[pa.Field] = (  # type: ignore[type-arg]
    [
        pa.field("key", pa.string()),
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("license", pa.string()),
        pa.field("language", pa.string()),
        pa.field("hash", pa.int64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("sha256", pa.string()),
        pa.field("mime", pa.string()),
        pa.field("similarity", pa.float64()),
        pa.field("punsafe", pa.float32()),
        pa.field("nsfw", pa.string()),
        pa.field("pwatermark", pa.float32()),
        pa.field("aesthetic", pa.float32()),
    ]
)
META_SCHEMA = pa.schema(_META_FIELDS)
CLIP_DEFAULTS: dict[str, object] = {
    "similarity": -1.0,
    "punsafe": None,
    "nsfw": "UNTAGGED",
    "pwatermark": None,
    "aesthetic": None,
}


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet file through fsspec (so s3:// endpoints and credentials configured there apply)."""
    with ofs.open_file(path, "rb") as handle:
        return pq.read_table(handle, columns=columns)


class ExportInputError(ValueError):
    """The pipeline outputs are missing or do not line up."""


@dataclass
class ShardView:
    """Kept samples of one shard: metadata in tar order, aligned embeddings, and the tar path."""

    name: str
    meta: pa.Table
    tar: str
    img_emb: np.ndarray | None = None
    text_emb: np.ndarray | None = None

    def __len__(self) -> int:
        return self.meta.num_rows


def shard_names(out: str) -> list[str]:
    """Names (`00000`, ...) of the download shards that are done (have a stats file), in shard order."""
    listed = listing.listed_shards(ofs.join(out, DOWNLOAD_DIR))
    return [_name(listed[index]) for index in sorted(listed)]


def _name(stats_path: str) -> str:
    return stats_path.rsplit("/", 1)[-1].removesuffix(listing.STATS_SUFFIX)


def _check_complete(out: str, stage: str, names: list[str]) -> bool:
    """True when `stage` ran for every shard; False when it never ran; raises when it is partial (one
    listing of the stage directory)."""
    done = {_name(path) for path in listing.listed_shards(ofs.join(out, stage)).values()}
    if not done & set(names):
        return False
    missing = sorted(set(names) - done, key=int)
    if missing:
        raise ExportInputError(
            f"stage {stage!r} has not finished shard(s) {', '.join(missing[:5])} under {out}"
        )
    return True


def read_view(out: str, name: str, with_clip: bool, with_filter: bool, embeddings: bool = True) -> ShardView:
    """Join shard `name`'s download, clip and filter outputs into its kept samples."""
    down = read_parquet(ofs.join(out, DOWNLOAD_DIR, f"{name}.parquet"))
    keep = pc.equal(down["status"], pa.scalar("ok"))
    if with_filter:
        filt = read_parquet(ofs.join(out, FILTER_DIR, f"{name}.parquet"), columns=["key", "status"])
        ok_keys = filt.filter(pc.equal(filt["status"], pa.scalar("ok")))["key"]
        keep = pc.and_(keep, pc.is_in(down["key"], value_set=ok_keys))
    kept = down.filter(keep)
    rows = np.arange(kept.num_rows)
    img = txt = None
    if with_clip:
        kept, rows = _attach_clip(out, name, kept)
        if embeddings:
            img, txt = _load_embeddings(out, name)
    else:
        for column, value in CLIP_DEFAULTS.items():
            kept = kept.append_column(
                column, pa.array([value] * kept.num_rows, META_SCHEMA.field(column).type)
            )
    meta = kept.select(META_SCHEMA.names).cast(META_SCHEMA)
    tar = ofs.join(out, DOWNLOAD_DIR, f"{name}.tar")
    if img is not None and txt is not None:
        return ShardView(name, meta, tar, img[rows], txt[rows])
    return ShardView(name, meta, tar)


def _attach_clip(out: str, name: str, kept: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Add the clip score columns to `kept`, ordered by clip row (= tar order); returns the clip rows."""
    clip = read_parquet(ofs.join(out, CLIP_DIR, f"{name}.parquet"))
    clip = clip.append_column("_row", pa.array(np.arange(clip.num_rows, dtype=np.int64)))
    present = [c for c in CLIP_DEFAULTS if c in clip.column_names]
    joined = kept.join(clip.select(["key", "_row", *present]), keys="key", join_type="inner")
    if joined.num_rows != kept.num_rows:
        lost = kept.num_rows - joined.num_rows
        raise ExportInputError(f"shard {name}: {lost} kept sample(s) have no clip row")
    joined = joined.sort_by("_row")
    for column, value in CLIP_DEFAULTS.items():
        if column not in present:
            joined = joined.append_column(column, pa.array([value] * joined.num_rows))
    return joined, joined["_row"].to_numpy()


def _load_embeddings(out: str, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    arrays: list[np.ndarray | None] = []
    for kind in ("img_emb", "text_emb"):
        try:  # no `exists` first: one storage call per file
            with ofs.open_file(ofs.join(out, CLIP_DIR, kind, f"{name}.npy"), "rb") as handle:
                arrays.append(np.load(handle))
        except FileNotFoundError:
            arrays.append(None)
    return arrays[0], arrays[1]


def pipeline_stages(out: str) -> tuple[list[str], bool, bool]:
    """The done shard names and whether the clip and filter stages ran for all of them."""
    names = shard_names(out)
    return names, _check_complete(out, CLIP_DIR, names), _check_complete(out, FILTER_DIR, names)


def iter_tar(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream (key, {extension: bytes}) samples from a tar; members are grouped by their key prefix."""
    key: str | None = None
    parts: dict[str, bytes] = {}
    with ofs.open_file(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            base = member.name.rsplit("/", 1)[-1]
            stem, _, ext = base.partition(".")
            if stem != key and key is not None:
                yield key, parts
                parts = {}
            key = stem
            handle = tar.extractfile(member)
            parts[ext] = handle.read() if handle else b""
    if key is not None:
        yield key, parts


IMAGE_EXTENSIONS = ("jpg", "jpeg", "webp", "png")


def image_of(parts: dict[str, bytes]) -> tuple[str, bytes] | None:
    """The (extension, bytes) of the image member of a tar sample, if any."""
    for ext in IMAGE_EXTENSIONS:
        if ext in parts:
            return ext, parts[ext]
    return None


def nsfw_index(tag: str | None) -> int:
    """TFDS class index of an NSFW tag (unknown tags count as UNTAGGED)."""
    return NSFW_TAGS.index(tag) if tag in NSFW_TAGS else NSFW_TAGS.index("UNTAGGED")


def row_json(row: dict[str, object]) -> bytes:
    """The `<key>.json` member of an exported sample: its metadata row, sorted keys."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8")
