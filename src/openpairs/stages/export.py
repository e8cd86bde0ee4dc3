"""Export: the kept samples of a finished pipeline in LAION-400M, LAION-5B, webdataset or TFDS layout.

Writes `<out>/dataset/<format>/`. Parts are evenly sized (`samples_per_shard`) over the samples in key
order, so the output depends only on the inputs: a re-run rewrites the same bytes, every file is written
atomically, and the manifest (`_manifest.json`) is written last; files of an older, larger export that
are not in the new manifest are removed. Each part is one task run by the executor (local processes or
Ray, the same bytes), reading only the input shards it overlaps (stages.export_parts).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core import crashpoints
from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import export_join as join
from openpairs.stages import export_parts as parts
from openpairs.stages import export_split as split
from openpairs.stages.export_tfds import tfds_manifest, write_tfds_part
from openpairs.stages.export_webdataset import write_tar_part
from openpairs.stages.tasks import map_tasks

FORMATS = ("laion400m", "laion5b", "webdataset", "tfds")
DATASET_DIR = "dataset"
MANIFEST = "_manifest.json"
LAION5B_GROUPS = ("laion2B-en", "laion2B-multi", "laion1B-nolang")


@dataclass(frozen=True)
class ExportConfig:
    """How to export: the layout, the part size, and whether to write embeddings next to the metadata."""

    format: Literal["laion400m", "laion5b", "webdataset", "tfds"] = "laion400m"
    samples_per_shard: int = 10_000
    embeddings: bool = True
    split_eval: float = 0.0  # webdataset: the share of samples held out in eval/ (stages.export_split)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.samples_per_shard < 1:
            raise ValueError("samples_per_shard must be at least 1")
        if not 0.0 <= self.split_eval < 1.0:
            raise ValueError(f"split_eval must be in [0, 1), got {self.split_eval}")
        if self.split_eval and self.format != "webdataset":
            raise ValueError("an eval split (split_eval) is written only by the webdataset format")


@dataclass
class ExportResult:
    """What an export wrote: its directory, the files and the number of parts per group, the sample count,
    and what the format adds to the manifest (`tfds`: the builder's num_shards and buildable configs)."""

    directory: str
    parts: dict[str, list[str]]
    samples: int
    part_counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


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


def write_part(task: parts.PartTask) -> list[str]:
    """Task: write output part `task.index` from the input shards it overlaps; returns the files."""
    views = [parts.read_piece(task, piece) for piece in task.pieces]
    if task.format == "webdataset":
        name_of = split.tar_name(split.EVAL_GROUP if task.split == split.EVAL else "")
        return write_tar_part(task.directory, views, task.size, task.index, name_of)
    if task.format == "tfds":
        return write_tfds_part(task.directory, views, task.index, task.embeddings)
    part = parts.concat(views)
    name = f"part-{commit.shard_name(task.index)}"
    path = ofs.join(task.directory, f"{name}.parquet")
    commit.write_parquet_atomic(_table_writer(task)(part.meta), path)
    crashpoints.reached("export.part", task.index)
    return [path, *(_write_embeddings(task.directory, name, part) if task.embeddings else [])]


def _table_writer(task: parts.PartTask) -> Callable[[pa.Table], pa.Table]:
    if task.format == "laion400m":
        return laion400m_table
    return partial(laion5b_table, with_language=task.group == 1)


def _write_embeddings(directory: str, name: str, part: join.ShardView) -> list[str]:
    """Write the part's image and text embeddings (when the clip stage made them); returns the paths."""
    written = []
    for kind, array in (("img_emb", part.img_emb), ("text_emb", part.text_emb)):
        if array is not None:
            path = ofs.join(directory, kind, f"{name}.npy")
            commit.write_float16_npy_atomic(array, path)
            written.append(path)
    return written


def run_export(out: str, config: ExportConfig, executor: ExecutorConfig | None = None) -> ExportResult:
    """Export the kept samples under `out` in `config.format`, one task per part run by `executor`
    (local by default); returns what was written. A failed export leaves no part behind."""
    executor = executor or ExecutorConfig()
    directory = ofs.join(out, DATASET_DIR, config.format)
    commit.remove_stale_temporaries(directory)
    ofs.remove(ofs.join(directory, MANIFEST))  # a half-rewritten export has no manifest
    tasks = plan_export(out, config, directory, executor)
    try:
        written = map_tasks(executor, write_part, [task for _, task in tasks])
    except BaseException:
        _remove_files(directory, keep=set())
        raise
    files: dict[str, list[str]] = {group: [] for group in _groups(config)}
    for (group, _), paths in zip(tasks, written, strict=True):
        files[group] += paths
    total = sum(_samples(task) for _, task in tasks)
    result = {group: _relative(directory, paths) for group, paths in files.items()}
    if config.format == "webdataset":
        layout = split.write_layout(directory, [(group, task.index, _samples(task)) for group, task in tasks])
        result[""] = result[""] + layout
    extra = {"tfds": tfds_manifest(result[""])} if config.format == "tfds" else {}
    _finish(directory, config, result, total, extra)
    counts = {group: sum(g == group for g, _ in tasks) for group in files}
    return ExportResult(directory, result, total, counts, extra)


def _samples(task: parts.PartTask) -> int:
    return sum(piece.stop - piece.start for piece in task.pieces)


def _groups(config: ExportConfig) -> tuple[str, ...]:
    if config.format == "laion5b":
        return LAION5B_GROUPS
    return ("", split.EVAL_GROUP) if config.split_eval else ("",)


def plan_export(
    out: str, config: ExportConfig, directory: str, executor: ExecutorConfig
) -> list[tuple[str, parts.PartTask]]:
    """(group, task) of every part, in manifest order, from the prefix sums of kept rows per shard."""
    names, with_clip, with_filter = join.pipeline_stages(out)
    if not names:
        raise join.ExportInputError(f"no finished download shards under {ofs.join(out, join.DOWNLOAD_DIR)}")
    counts = _counts(out, config, names, with_filter, executor)
    flags = {"with_clip": with_clip, "with_filter": with_filter, "embeddings": config.embeddings}
    tasks, groups = [], _groups(config)
    for index, group in enumerate(groups):
        number = index if len(groups) > 1 else -1  # the group's rows are picked by language or by split
        kept = [c[index] for c in counts]
        where = ofs.join(directory, group) if group else directory
        language, split_number = (number, -1) if config.format == "laion5b" else (-1, number)
        for part, pieces in enumerate(parts.plan_pieces(names, kept, config.samples_per_shard)):
            task = parts.PartTask(
                out, where, config.format, part, pieces, language, split_number, config.split_eval,
                size=config.samples_per_shard, **flags,
            )  # fmt: skip
            tasks.append((group, task))
    return tasks


def _counts(
    out: str, config: ExportConfig, names: list[str], with_filter: bool, executor: ExecutorConfig
) -> list[tuple[int, ...]]:
    """Kept rows of each shard in each of the export's groups: LAION-5B language groups, the splits
    (TRAIN, EVAL), or the one group of all kept rows."""
    if config.split_eval:
        return map_tasks(executor, partial(parts.count_split, out, with_filter, config.split_eval), names)
    counts = parts.kept_counts(out, names, with_filter, executor)
    return counts if config.format == "laion5b" else [(sum(c),) for c in counts]


def _relative(directory: str, paths: list[str]) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    return [p[len(prefix) :] if p.startswith(prefix) else p for p in paths]


def _finish(
    directory: str, config: ExportConfig, parts: dict[str, list[str]], total: int, extra: dict[str, Any]
) -> None:
    """Remove files of an older export that this one did not write, then commit the manifest last."""
    _remove_files(directory, keep={MANIFEST} | {name for names in parts.values() for name in names})
    manifest = {"format": config.format, "config": asdict(config), "samples": total, "files": parts, **extra}
    commit.write_bytes_atomic(ofs.join(directory, MANIFEST), json.dumps(manifest, indent=1).encode("utf-8"))


def _remove_files(directory: str, keep: set[str]) -> None:
    """Remove every file under `directory` whose relative name is not in `keep`."""
    fs, root = ofs.filesystem(directory)
    if not fs.exists(root):
        return
    prefix = root.rstrip("/") + "/"
    for path in fs.find(root):
        if str(path)[len(prefix) :] not in keep:
            fs.rm(path)
    for path in sorted(fs.find(root, withdirs=True), key=len, reverse=True):  # deepest first
        if fs.isdir(path) and not fs.ls(path):
            fs.rmdir(path)  # a folder emptied above (an older export's eval/ split or language group)
