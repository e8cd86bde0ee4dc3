"""`openpairs.load`: read a built dataset as the TFDS `laion400m` features, or as a PyTorch dataset.

`load(DIR)` accepts a build output directory (it reads `DIR/dataset/webdataset/` when that export exists,
else the kept samples straight from the pipeline's `shards/`, `clip/` and `filter/` outputs) or a
webdataset export directory itself. Features (TFDS `laion400m`): caption, image (H×W×3 uint8), license,
nsfw (class index over UNLIKELY, UNSURE, NSFW, UNTAGGED), original_height, original_width, similarity
(float64, -1.0 missing), url. `config="embeddings"` replaces image with image_embedding and
text_embedding (float16 vectors; (512,) with ViT-B/32).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from openpairs.io import fs as ofs

if TYPE_CHECKING:
    from openpairs.stages.export_join import ShardView

Config = Literal["images", "embeddings"]
CONFIGS = ("images", "embeddings")
WEBDATASET_EXPORT = ("dataset", "webdataset")


def _webdataset_dir(path: str) -> str | None:
    """The webdataset export to read: `path` itself or `path/dataset/webdataset`, if there is one."""
    for candidate in (path, ofs.join(path, *WEBDATASET_EXPORT)):
        if ofs.list_files(candidate, ".tar") and ofs.list_files(candidate, ".parquet"):
            return candidate
    return None


def _export_view(directory: str, name: str, embeddings: bool) -> ShardView:
    """One webdataset export shard as a view (metadata rows are in tar order already)."""
    from openpairs.stages.export_join import ShardView, read_parquet

    meta = read_parquet(ofs.join(directory, f"{name}.parquet"))
    arrays: list[np.ndarray | None] = [None, None]
    if embeddings:
        for i, kind in enumerate(("img_emb", "text_emb")):
            path = ofs.join(directory, kind, f"{name}.npy")
            if ofs.exists(path):
                with ofs.open_file(path, "rb") as handle:
                    arrays[i] = np.load(handle)
    return ShardView(name, meta, ofs.join(directory, f"{name}.tar"), arrays[0], arrays[1])


LAION400M_COLUMNS = {
    "SAMPLE_ID": "key",
    "URL": "url",
    "TEXT": "caption",
    "HEIGHT": "original_height",
    "WIDTH": "original_width",
    "LICENSE": "license",
    "NSFW": "nsfw",
    "similarity": "similarity",
}


def _laion400m_view(directory: str, name: str) -> ShardView:
    """One part of a LAION-400M export (metadata + embeddings, no images) as a view."""
    from openpairs.stages.export_join import ShardView

    view = _export_view(directory, name, embeddings=True)
    meta = view.meta.select(list(LAION400M_COLUMNS)).rename_columns(list(LAION400M_COLUMNS.values()))
    return ShardView(name, meta, "", view.img_emb, view.text_emb)


def _export_format(path: str) -> str | None:
    """The format of the export directory `path` (its manifest's), or None when `path` is not one."""
    manifest = ofs.join(path, "_manifest.json")
    return json.loads(ofs.read_text(manifest)).get("format") if ofs.exists(manifest) else None


def _laion400m_readers(path: str, config: Config) -> list[Callable[[], ShardView]] | None:
    """Readers of a LAION-400M export directory (embeddings config only), or None when `path` is not one."""
    export_format = _export_format(path)
    if export_format == "tfds":
        raise ValueError(
            f"{path} is a TFDS laion400m manual_dir (openpairs export --format tfds): build it with TFDS's "
            "builder (docs/tfds.md), or load the build DIR it was exported from"
        )
    if export_format != "laion400m":
        return None
    if config != "embeddings":
        raise ValueError(f"{path} is a LAION-400M export (no images): use config='embeddings'")
    names = [f.rsplit("/", 1)[-1][: -len(".parquet")] for f in ofs.list_files(path, ".parquet")]
    return [_bind(_laion400m_view, path, name) for name in names]


def shard_readers(path: str, config: Config = "images") -> list[Callable[[], ShardView]]:
    """One loader per shard of the dataset at `path` (the unit that workers split between them)."""
    from openpairs.stages import export_join as join

    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; choose one of {', '.join(CONFIGS)}")
    embeddings = config == "embeddings"
    laion = _laion400m_readers(path, config)
    if laion is not None:
        return laion
    exported = _webdataset_dir(path)
    if exported is not None:
        names = [f.rsplit("/", 1)[-1][: -len(".parquet")] for f in ofs.list_files(exported, ".parquet")]
        return [_bind(_export_view, exported, name, embeddings) for name in names]
    names, with_clip, with_filter = join.pipeline_stages(path)
    if not names:
        raise FileNotFoundError(f"no dataset under {path}: neither a webdataset export nor download shards")
    if embeddings and not with_clip:
        raise ValueError(f"config='embeddings' needs the clip stage's embeddings, missing under {path}")
    return [_bind(join.read_view, path, name, with_clip, with_filter, embeddings) for name in names]


def _bind(function: Callable[..., ShardView], *args: Any) -> Callable[[], ShardView]:
    return lambda: function(*args)


def _base_features(row: dict[str, Any]) -> dict[str, Any]:
    from openpairs.stages.export_join import nsfw_index

    similarity = row.get("similarity")
    return {
        "caption": row["caption"],
        "license": row.get("license") or "?",
        "nsfw": nsfw_index(row.get("nsfw")),
        "original_height": np.int32(row.get("original_height") or 0),
        "original_width": np.int32(row.get("original_width") or 0),
        "similarity": np.float64(-1.0 if similarity is None else similarity),
        "url": row["url"],
    }


def decode_image(data: bytes) -> np.ndarray:
    """Decode image bytes to an H×W×3 uint8 array."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.array(img.convert("RGB"), dtype=np.uint8)


def iter_view(view: ShardView, config: Config) -> Iterator[dict[str, Any]]:
    """The TFDS features of every sample of one shard view."""
    from openpairs.stages import export_join as join

    rows = view.meta.to_pylist()
    if config == "embeddings":
        if view.img_emb is None or view.text_emb is None:
            raise ValueError(f"shard {view.name} has no embeddings")
        for i, row in enumerate(rows):
            yield {
                **_base_features(row),
                "image_embedding": view.img_emb[i],
                "text_embedding": view.text_emb[i],
            }
        return
    by_key = {str(row["key"]): row for row in rows}
    for key, parts in join.iter_tar(view.tar):
        found = by_key.get(key)
        image = join.image_of(parts) if found is not None else None
        if found is not None and image is not None:
            yield {**_base_features(found), "image": decode_image(image[1])}


def load(path: str, config: Config = "images") -> Iterator[dict[str, Any]]:
    """Yield every kept sample of the dataset at `path` as a dict of TFDS `laion400m` features."""
    for reader in shard_readers(str(path), config):
        yield from iter_view(reader(), config)


def torch_dataset(
    path: str, config: Config = "images", rank: int | None = None, world_size: int | None = None
) -> Any:
    """A PyTorch IterableDataset over `load(path, config)`; DataLoader workers and ranks split the shards."""
    from openpairs.loading_torch import LaionIterable

    return LaionIterable(str(path), config, rank, world_size)
