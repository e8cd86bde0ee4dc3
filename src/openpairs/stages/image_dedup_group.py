"""Image dedup's last steps: label every row that has a duplicate, then write one slice per clip shard.

After the star rounds (image_dedup_stars.py) each part holds its keys' labels (the smallest key of their
component). A label task joins them to its part's rows (key, shard, exact: the row has the same sha256 as
another) and splits them by slice task; a slice task writes `clip/dup_groups/<i>.parquet` (key, dup_group,
method) for a run of clip shards. Every task holds one part's or one run's rows, never all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import shuffle
from openpairs.stages.image_dedup_stars import Files, labels_path, write_parted
from openpairs.stages.image_dedup_tasks import EXACT, NEAR, SLICE_SCHEMA, Settings, slice_path

NODE_SCHEMA = pa.schema([("key_int", pa.int64()), ("shard", pa.int64()), ("exact", pa.bool_())])
LABELLED_SCHEMA = pa.schema(
    [("key_int", pa.int64()), ("label", pa.int64()), ("shard", pa.int64()), ("exact", pa.bool_())]
)


def runs_path(settings: Settings) -> str:
    """The first clip shard of each slice task's run, for the label tasks (one number per run)."""
    return ofs.join(settings.scratch, "label", "runs.npy")


@dataclass(frozen=True)
class LabelTask:
    """Join part `index`'s rows (from every reducer) to its labels; split them by slice task."""

    settings: Settings
    index: int
    nodes: Files
    rounds: int
    slices: int

    @property
    def output(self) -> str:
        """Labelled rows (key_int, label, shard, exact), one row group per slice task."""
        return ofs.join(self.settings.scratch, "label", f"{commit.shard_name(self.index)}.parquet")

    @property
    def marker(self) -> str:
        """Done marker: {"rows" (in a group of two or more), "groups", "exact"}."""
        return ofs.join(self.settings.scratch, "label", f"{commit.shard_name(self.index)}.json")


def label_rows(task: LabelTask) -> None:
    """Write this part's labelled rows, then the marker."""
    rows = task.nodes.read_part(task.index, NODE_SCHEMA)
    numbers = rows["key_int"].to_numpy()
    nodes, first = np.unique(numbers, return_index=True)
    exact = np.zeros(len(nodes), dtype=bool)
    exact[np.searchsorted(nodes, numbers[rows["exact"].to_numpy(zero_copy_only=False)])] = True
    labels = ofs.read_parquet(labels_path(task.settings, task.rounds - 1, task.index))
    known, label = labels["node"].to_numpy(), labels["label"].to_numpy()
    if not np.array_equal(known, nodes):  # the rounds keep every key of an edge, and only those
        raise RuntimeError(f"image dedup part {task.index}: {len(nodes)} rows but {len(known)} labels")
    shard = rows["shard"].to_numpy()[first]
    table = pa.table(
        {"key_int": nodes, "label": label, "shard": shard, "exact": exact}, schema=LABELLED_SCHEMA
    )
    with ofs.open_file(runs_path(task.settings), "rb") as handle:
        starts = np.load(handle)
    run = np.searchsorted(starts, shard, side="right") - 1
    write_parted(task.output, table, run, task.slices)
    record = {"rows": len(nodes), "groups": int((label == nodes).sum()), "exact": int(exact.sum())}
    shuffle.write_marker(task.marker, record)


@dataclass(frozen=True)
class SliceTask:
    """Write the slices of a run of clip shards from every label task's share."""

    settings: Settings
    index: int
    shards: tuple[int, ...]
    labelled: Files
    width: int  # digits of every key (keys are fixed-width numbers, so the group id is the label padded)

    @property
    def marker(self) -> str:
        """Done marker: {"rows"}."""
        return ofs.join(self.settings.scratch, "slice", f"{commit.shard_name(self.index)}.json")


def slice_rows(task: SliceTask) -> None:
    """Write every shard's slice (rows sorted by key), then the marker."""
    table = task.labelled.read_part(task.index, LABELLED_SCHEMA)
    table = table.take(pa.array(np.lexsort((table["key_int"].to_numpy(), table["shard"].to_numpy()))))
    shard = table["shard"].to_numpy()
    for index in task.shards:
        low, high = np.searchsorted(shard, [index, index + 1])
        part = table.slice(low, high - low)
        rows = pa.table(
            {
                "key": _padded(part["key_int"], task.width),
                "dup_group": _padded(part["label"], task.width),
                "method": pa.array(np.where(part["exact"].to_numpy(zero_copy_only=False), EXACT, NEAR)),
            },
            schema=SLICE_SCHEMA,
        )
        commit.write_parquet_atomic(rows, slice_path(task.settings.out, index))
    shuffle.write_marker(task.marker, {"rows": table.num_rows})


def _padded(numbers: pa.ChunkedArray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(numbers.combine_chunks(), pa.string()), width=width, padding="0")


def write_runs(settings: Settings, runs: list[tuple[int, ...]]) -> None:
    """Record each slice run's first shard, for the label tasks."""
    starts = np.array([run[0] for run in runs], dtype=np.int64)
    with commit.atomic_open(runs_path(settings)) as handle:
        np.save(handle, starts)
