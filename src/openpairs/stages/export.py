"""Export: the kept samples of a finished pipeline in LAION-400M, LAION-5B or webdataset layout.

Writes `<out>/dataset/<format>/`. Parts are evenly sized (`samples_per_shard`) over the samples in key
order, so the output depends only on the inputs: a re-run rewrites the same bytes, every file is written
atomically, and the manifest (`_manifest.json`) is written last; files of an older, larger export that
are not in the new manifest are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core import crashpoints
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import export_join as join
from openpairs.stages.export_webdataset import write_webdataset

FORMATS = ("laion400m", "laion5b", "webdataset")
DATASET_DIR = "dataset"
MANIFEST = "_manifest.json"
LAION5B_GROUPS = ("laion2B-en", "laion2B-multi", "laion1B-nolang")


@dataclass(frozen=True)
class ExportConfig:
    """How to export: the layout, the part size, and whether to write embeddings next to the metadata."""

    format: Literal["laion400m", "laion5b", "webdataset"] = "laion400m"
    samples_per_shard: int = 10_000
    embeddings: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.samples_per_shard < 1:
            raise ValueError("samples_per_shard must be at least 1")


@dataclass
class ExportResult:
    """What an export wrote: its directory, the parts per group and the sample count."""

    directory: str
    parts: dict[str, list[str]]
    samples: int


def laion400m_table(meta: pa.Table) -> pa.Table:
    """LAION-400M columns. WIDTH and HEIGHT hold the original width and height, each in its own column
    (LAION's own release swapped the two)."""
    return pa.table(
        {
            "SAMPLE_ID": pc.cast(meta["key"], pa.int64()),
            "URL": meta["url"],
            "TEXT": meta["caption"],
            "HEIGHT": meta["original_height"],
            "WIDTH": meta["original_width"],
            "LICENSE": meta["license"],
            "NSFW": meta["nsfw"],
            "similarity": meta["similarity"],
        }
    )


def laion5b_table(meta: pa.Table, with_language: bool) -> pa.Table:
    """LAION-5B columns (original sizes); LANGUAGE only for the multilingual part."""
    columns = {
        "URL": meta["url"],
        "TEXT": meta["caption"],
        "WIDTH": meta["original_width"],
        "HEIGHT": meta["original_height"],
        "similarity": meta["similarity"],
        "hash": meta["hash"],
        "punsafe": meta["punsafe"],
        "pwatermark": meta["pwatermark"],
    }
    if with_language:
        columns["LANGUAGE"] = meta["language"]
    return pa.table(columns)


def language_group(meta: pa.Table) -> np.ndarray:
    """LAION-5B group of each row: 0 English, 1 another language, 2 no language detected."""
    language = meta["language"].to_numpy(zero_copy_only=False)
    return np.where(language == "en", 0, np.where((language == "") | (language == None), 2, 1))  # noqa: E711


def _split_view(view: join.ShardView, mask: np.ndarray) -> join.ShardView:
    rows = np.flatnonzero(mask)
    img = view.img_emb[rows] if view.img_emb is not None else None
    txt = view.text_emb[rows] if view.text_emb is not None else None
    return join.ShardView(view.name, view.meta.take(rows), view.tar, img, txt)


def _chunks(views: Iterator[join.ShardView], size: int) -> Iterator[join.ShardView]:
    """Re-cut a stream of shard views into views of exactly `size` rows (the last may be shorter)."""
    pending: list[join.ShardView] = []
    count = 0
    for view in views:
        pending.append(view)
        count += len(view)
        while count >= size:
            merged = _concat(pending)
            yield _split_view(merged, np.arange(len(merged)) < size)
            rest = _split_view(merged, np.arange(len(merged)) >= size)
            pending, count = [rest], len(rest)
    if count:
        yield _concat(pending)


def _concat(views: list[join.ShardView]) -> join.ShardView:
    meta = pa.concat_tables([v.meta for v in views])
    img = _stack([v.img_emb for v in views])
    txt = _stack([v.text_emb for v in views])
    return join.ShardView(views[0].name, meta, views[0].tar, img, txt)


def _stack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    return np.concatenate([a for a in arrays if a is not None])


def _write_parts(
    directory: str,
    views: Iterator[join.ShardView],
    config: ExportConfig,
    to_table: Callable[[pa.Table], pa.Table],
) -> tuple[list[str], int]:
    """Write evenly sized parquet parts (+ embeddings); returns the files written and the row count."""
    written: list[str] = []
    total = 0
    for index, part in enumerate(_chunks(views, config.samples_per_shard)):
        name = f"part-{commit.shard_name(index)}"
        path = ofs.join(directory, f"{name}.parquet")
        commit.write_parquet_atomic(to_table(part.meta), path)
        written.append(path)
        crashpoints.reached("export.part", index)
        if config.embeddings:
            written += _write_embeddings(directory, name, part)
        total += len(part)
    return written, total


def _write_embeddings(directory: str, name: str, part: join.ShardView) -> list[str]:
    """Write the part's image and text embeddings (when the clip stage made them); returns the paths."""
    written = []
    for kind, array in (("img_emb", part.img_emb), ("text_emb", part.text_emb)):
        if array is not None:
            path = ofs.join(directory, kind, f"{name}.npy")
            with commit.atomic_open(path) as handle:
                np.save(handle, np.ascontiguousarray(array, dtype=np.float16))
            written.append(path)
    return written


def run_export(out: str, config: ExportConfig) -> ExportResult:
    """Export the kept samples under `out` in `config.format`; returns what was written."""
    directory = ofs.join(out, DATASET_DIR, config.format)
    commit.remove_stale_temporaries(directory)
    ofs.remove(ofs.join(directory, MANIFEST))  # a half-rewritten export has no manifest
    with_emb = config.embeddings
    files: dict[str, list[str]] = {}
    total = 0
    if config.format == "laion400m":
        files[""], total = _write_parts(
            directory, join.pipeline_views(out, with_emb), config, laion400m_table
        )
    elif config.format == "laion5b":
        for group_index, group in enumerate(LAION5B_GROUPS):
            views = (
                _split_view(v, language_group(v.meta) == group_index)
                for v in join.pipeline_views(out, with_emb)
            )
            writer = _laion5b_writer(group_index == 1)
            files[group], count = _write_parts(ofs.join(directory, group), views, config, writer)
            total += count
    else:
        files[""], total = write_webdataset(
            directory, join.pipeline_views(out, with_emb), config.samples_per_shard
        )
    parts = {group: _relative(directory, paths) for group, paths in files.items()}
    _finish(directory, config, parts, total)
    return ExportResult(directory, parts, total)


def _relative(directory: str, paths: list[str]) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    return [p[len(prefix) :] if p.startswith(prefix) else p for p in paths]


def _laion5b_writer(with_language: bool) -> Callable[[pa.Table], pa.Table]:
    return lambda meta: laion5b_table(meta, with_language)


def _finish(directory: str, config: ExportConfig, parts: dict[str, list[str]], total: int) -> None:
    """Remove files of an older export that this one did not write, then commit the manifest last."""
    keep = {MANIFEST} | {name for names in parts.values() for name in names}
    fs, root = ofs.filesystem(directory)
    prefix = root.rstrip("/") + "/"
    for path in fs.find(root):
        if str(path)[len(prefix) :] not in keep:
            fs.rm(path)
    manifest = {"format": config.format, "config": asdict(config), "samples": total, "files": parts}
    commit.write_bytes_atomic(ofs.join(directory, MANIFEST), json.dumps(manifest, indent=1).encode("utf-8"))
