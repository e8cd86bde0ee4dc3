"""Image dedup's shuffle: map (assign to leaves, hash sha256), reduce (pairs per leaf, equal sha256), group.

A map task writes two files whose row group r is reducer r's share: its rows by leaf (contiguous leaf
runs per reducer, with the embedding) and by sha256 hash range. A reducer turns its leaves' near pairs and
its range's equal sha256s into forest edges (key → smallest key of its local component) and writes them,
and the rows they join, split by a hash of the key for the star rounds (image_dedup_stars.py) that join
them dataset-wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core import crashpoints
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import image_dedup_pairs as pairs
from openpairs.stages import image_dedup_stars as stars
from openpairs.stages import image_dedup_tree as tree
from openpairs.stages import shuffle
from openpairs.stages.image_dedup_tasks import (
    Settings,
    ShardRows,
    one_blas_thread,
    read_shard,
    reducer_of_leaf,
    tree_path,
)

ASSIGN_BATCH = 65_536  # rows descended together: one matrix product per touched node per batch
EDGE_SCHEMA = pa.schema(
    [("key_int", pa.int64()), ("shard", pa.int64()), ("root_int", pa.int64()), ("exact", pa.bool_())]
)


def _name(folder: str, settings: Settings, index: int, suffix: str) -> str:
    return ofs.join(settings.scratch, folder, f"{commit.shard_name(index)}{suffix}")


@dataclass(frozen=True)
class MapTask:
    """Assign the rows of some clip shards to leaves and hash their sha256, partitioned for `reducers`."""

    settings: Settings
    index: int
    shards: tuple[int, ...]
    reducers: int

    def output(self, kind: str) -> str:
        """The rows partitioned by leaf ("near") or by sha256 hash ("exact")."""
        return _name("map", self.settings, self.index, f".{kind}.parquet")

    @property
    def marker(self) -> str:
        """Done marker: {"rows", "assigned" (rows x leaves), "capped", "widths" (of the keys)}."""
        return _name("map", self.settings, self.index, ".json")


def map_rows(task: MapTask) -> None:
    """Write both partitioned files, then the marker."""
    built = tree.Tree.from_bytes(ofs.read_bytes(tree_path(task.settings.scratch)))
    parts = [read_shard(task.settings.out, shard) for shard in task.shards]
    rows = ShardRows(
        pa.concat_arrays([p.keys for p in parts]).cast(pa.string()),
        np.concatenate([p.numbers for p in parts]),
        np.concatenate([p.emb for p in parts]),
        pa.concat_arrays([p.sha for p in parts]).cast(pa.string()),
    )
    shard = np.repeat(np.array(task.shards, dtype=np.int64), [len(p.numbers) for p in parts])
    with one_blas_thread():
        near, capped = _by_leaf(task, built, rows, shard)
    exact = _by_sha(task, rows, shard)
    crashpoints.reached("image_dedup.map", task.index)
    for kind, (table, part) in (("near", near), ("exact", exact)):
        stars.write_parted(task.output(kind), table, part, task.reducers)
    record = {"rows": len(rows.numbers), "assigned": near[0].num_rows, "capped": capped}
    shuffle.write_marker(task.marker, record | {"widths": _widths(rows.keys)})


def _widths(keys: pa.Array) -> list[int]:
    """The distinct lengths of the keys (one, for fixed-width keys): a group id is a key number padded."""
    return sorted(pc.utf8_length(keys).unique().to_pylist())


def _by_leaf(
    task: MapTask, built: tree.Tree, rows: ShardRows, shard: np.ndarray
) -> tuple[tuple[pa.Table, np.ndarray], int]:
    """The rows once per leaf they visit (key_int, shard, leaf, home, embedding), in reducer order."""
    margin = tree.margin_for(task.settings.threshold)
    placed, capped = [], 0
    for start in range(0, max(1, len(rows.numbers)), ASSIGN_BATCH):  # once at least: arrays of the right type
        part = tree.assign(built, rows.emb[start : start + ASSIGN_BATCH], margin, task.settings.max_leaves)
        placed.append((part.row + start, part.leaf, part.home))
        capped += part.capped
    row, leaf, home = (np.concatenate(c) for c in zip(*placed, strict=True))
    order = np.lexsort((row, leaf))
    row, leaf, home = row[order], leaf[order], home[order]
    table = pa.table(
        {
            "key_int": pa.array(rows.numbers[row]),
            "shard": pa.array(shard[row]),
            "leaf": pa.array(leaf.astype(np.int64)),
            "home": pa.array(home),
            "emb": _emb_column(rows.emb[row], rows.emb.shape[1]),
        }
    )
    return (table, reducer_of_leaf(built, task.reducers)[leaf]), capped


def _by_sha(task: MapTask, rows: ShardRows, shard: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The rows with a sha256 (key_int, shard, its 128-bit hash), in reducer (hash range) order."""
    known = np.asarray(pc.is_valid(rows.sha).to_numpy(zero_copy_only=False), dtype=bool)
    hashes = shuffle.hash_keys(rows.sha.filter(pa.array(known)))
    part = shuffle.range_of(hashes, task.reducers)
    order = pa.array(np.argsort(part, kind="stable"))
    table = pa.table(
        {
            "key_int": pa.array(rows.numbers[known]),
            "shard": pa.array(shard[known]),
            "sha": hashes,
        }
    ).take(order)
    return table, np.sort(part, kind="stable")


def _emb_column(emb: np.ndarray, dim: int) -> pa.Array:
    data = np.ascontiguousarray(emb, dtype=np.float16)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2 * dim), len(data), [None, pa.py_buffer(data.tobytes())]
    )


def _emb_values(column: pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.byte_width // 2
    flat = np.frombuffer(array.buffers()[1], dtype=np.float16, count=(array.offset + len(array)) * dim)
    return flat[array.offset * dim :].reshape(-1, dim)


@dataclass(frozen=True)
class ReduceTask:
    """Turn the near pairs of a run of leaves and the equal sha256s of a hash range into forest edges."""

    settings: Settings
    index: int
    maps: int
    parts: int  # the star rounds' parts

    def output(self, kind: str) -> str:
        """The rows in a component ("nodes": key_int, shard, exact) or its edges in both directions
        ("edges": node, nbr), one row group per part."""
        return _name("reduce", self.settings, self.index, f".{kind}.parquet")

    @property
    def marker(self) -> str:
        """Done marker: {"near_rows", "exact_rows", "edges", "oversized"}."""
        return _name("reduce", self.settings, self.index, ".json")


def reduce_rows(task: ReduceTask) -> None:
    """Write this reducer's edges, then the marker."""
    near = _share(task, "near").sort_by([("leaf", "ascending"), ("key_int", "ascending")])
    exact = _share(task, "exact")
    with one_blas_thread():
        near_edges, oversized = _near_edges(task.settings, near)
    edges = pa.concat_tables([near_edges, _exact_edges(exact)])
    crashpoints.reached("image_dedup.reduce", task.index)
    numbers, roots = edges["key_int"].to_numpy(), edges["root_int"].to_numpy()
    stars.write_parted(
        task.output("nodes"), edges.drop_columns(["root_int"]), stars.part_of(numbers, task.parts), task.parts
    )
    linked = numbers != roots
    pairs = stars.both_ways(numbers[linked], roots[linked])
    stars.write_parted(
        task.output("edges"), pairs, stars.part_of(pairs["node"].to_numpy(), task.parts), task.parts
    )
    record = {"near_rows": near.num_rows, "exact_rows": exact.num_rows, "edges": edges.num_rows}
    shuffle.write_marker(task.marker, record | {"oversized": oversized})


def _share(task: ReduceTask, kind: str) -> pa.Table:
    """Row group `index` of every map task's `kind` file, one file open at a time."""
    return stars.Files(task.settings.scratch, "map", f".{kind}.parquet", task.maps).read_part(task.index)


def _near_edges(settings: Settings, near: pa.Table) -> tuple[pa.Table, int]:
    """Forest edges of the near pairs found in each leaf, joined over the reducer's rows."""
    if near.num_rows == 0:
        return EDGE_SCHEMA.empty_table(), 0
    leaf = near["leaf"].to_numpy()
    home = near["home"].to_numpy(zero_copy_only=False)
    emb = _emb_values(near["emb"])
    starts = (
        np.flatnonzero(np.concatenate([[True], leaf[1:] != leaf[:-1]]))
        if len(leaf)
        else np.zeros(0, np.int64)
    )
    a, b, oversized = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    for start, stop in zip(starts.tolist(), [*starts[1:].tolist(), len(leaf)], strict=True):
        linked, root, whole = pairs.pairs_within(
            emb[start:stop], home[start:stop], settings.threshold, settings.max_leaf_rows
        )
        a.append(linked + start)
        b.append(root + start)
        oversized += whole
    numbers = near["key_int"].to_numpy()
    return _members(near, numbers, numbers[np.concatenate(a)], numbers[np.concatenate(b)], False), oversized


def _exact_edges(exact: pa.Table) -> pa.Table:
    """Edges joining the rows of equal sha256 hash."""
    if exact.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    words = shuffle.hash_words(exact["sha"].combine_chunks())
    numbers = exact["key_int"].to_numpy()
    order = np.lexsort((numbers, words[:, 1], words[:, 0]))
    same = np.all(words[order][1:] == words[order][:-1], axis=1)
    first = np.maximum.accumulate(np.where(np.concatenate([[True], ~same]), np.arange(len(order)), 0))
    return _members(exact, numbers, numbers[order], numbers[order][first], True)


def _members(table: pa.Table, numbers: np.ndarray, a: np.ndarray, b: np.ndarray, exact: bool) -> pa.Table:
    """Every row in a component of two or more under edges (a, b), with its component's smallest key."""
    nodes, first = np.unique(numbers, return_index=True)
    label = pairs.components(len(nodes), np.searchsorted(nodes, a), np.searchsorted(nodes, b))
    members = np.flatnonzero(np.bincount(label, minlength=len(nodes))[label] > 1)
    rows = pa.array(first[members])
    return pa.table(
        {
            "key_int": pa.array(nodes[members]),
            "shard": table["shard"].take(rows),
            "root_int": pa.array(nodes[label[members]]),
            "exact": pa.array(np.full(len(members), exact)),
        },
        schema=EDGE_SCHEMA,
    )
