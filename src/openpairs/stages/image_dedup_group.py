"""Image dedup's last task: join every reducer's edges into dataset-wide groups, one slice per clip shard.

Components over the edges (key -> smallest key of a reducer's local component); the group id is the
component's smallest key; `method` is exact when the row has the same sha256 as another member. Its memory
grows with the rows that have a duplicate, not with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import image_dedup_pairs as pairs
from openpairs.stages import shuffle
from openpairs.stages.image_dedup_shuffle import EDGE_SCHEMA, ReduceTask
from openpairs.stages.image_dedup_tasks import EXACT, NEAR, SLICE_SCHEMA, Settings, slice_path


@dataclass(frozen=True)
class GroupTask:
    """Join every reducer's edges into dataset-wide groups; write one slice per clip shard."""

    settings: Settings
    reducers: int
    shards: tuple[int, ...]

    @property
    def marker(self) -> str:
        """Done marker: {"rows" (in a group of two or more), "groups", "exact", "near"}."""
        return ofs.join(self.settings.scratch, "group", "group.json")


def group_rows(task: GroupTask) -> None:
    """Write every shard's slice (key, dup_group, method), then the marker."""
    parts = [ofs.read_parquet(ReduceTask(task.settings, r, 0).output) for r in range(task.reducers)]
    edges = pa.concat_tables(parts).combine_chunks() if parts else EDGE_SCHEMA.empty_table()
    numbers = edges["key_int"].to_numpy()
    nodes, first = np.unique(numbers, return_index=True)
    label = pairs.components(
        len(nodes), np.searchsorted(nodes, numbers), np.searchsorted(nodes, edges["root_int"].to_numpy())
    )
    exact = np.zeros(len(nodes), dtype=bool)
    exact[np.searchsorted(nodes, numbers[edges["exact"].to_numpy(zero_copy_only=False)])] = True
    keys = edges["key"].take(pa.array(first))
    table = pa.table(
        {
            "key": keys,
            "dup_group": keys.take(pa.array(label)),
            "method": pa.array(np.where(exact, EXACT, NEAR)),
        },
        schema=SLICE_SCHEMA,
    )
    shard = edges["shard"].to_numpy()[first]
    order = np.argsort(shard, kind="stable")
    table, shard = table.take(pa.array(order)), shard[order]
    for index in task.shards:
        low, high = np.searchsorted(shard, [index, index + 1])
        commit.write_parquet_atomic(table.slice(low, high - low), slice_path(task.settings.out, index))
    record = {
        "rows": len(nodes),
        "groups": int((label == np.arange(len(nodes))).sum()),
        "exact": int(exact.sum()),
    }
    shuffle.write_marker(task.marker, record | {"near": len(nodes) - int(exact.sum())})
