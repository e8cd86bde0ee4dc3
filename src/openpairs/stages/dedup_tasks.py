"""The dedup step's tasks: count the extract shards, map (hash-partition) groups of them, reduce a range.

Every task reads and writes files under the scratch folder of the output store, commits them atomically
and then its marker, and returns nothing the driver must hold: a killed task is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openpairs.core import crashpoints
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import history, shuffle

HASH = "_hash"
LANGUAGE_GROUPS = ("en", "multi", "nolang")
SCRATCH_ROW_GROUP = 16_384  # reducer outputs: the cut reads only the row groups it overlaps
_SHARE_SCHEMA = CANDIDATE_SCHEMA.append(pa.field(HASH, shuffle.HASH_TYPE))


def language_group(code: str) -> str:
    """LAION-5B's three groups: en, multi (another language) and nolang."""
    return "en" if code == "en" else ("nolang" if not code else "multi")


def language_groups(table: pa.Table) -> np.ndarray:
    """Each row's language group (vectorised `language_group`)."""
    codes = pc.fill_null(table["language"], "")
    english = pc.equal(codes, "en").to_numpy(zero_copy_only=False)
    empty = pc.equal(codes, "").to_numpy(zero_copy_only=False)
    return np.where(english, "en", np.where(empty, "nolang", "multi"))


def in_group(group: str, table: pa.Table) -> np.ndarray:
    """Mask of the rows of `table` in language group `group` (a cut's row filter)."""
    return language_groups(table) == group


def dedup_keys(table: pa.Table, mode: str) -> pa.Array:
    """The string each row is deduplicated on."""
    if mode == "url":
        return table["url"].combine_chunks()
    return pc.binary_join_element_wise(table["url"], table["caption"], "\x00").combine_chunks()


@dataclass(frozen=True)
class CountTask:
    """Count the rows (per language group when `split`) of some extract shards."""

    scratch: str
    index: int
    sources: tuple[str, ...]
    split: bool

    @property
    def marker(self) -> str:
        """Done marker: {"files": [{group: rows}, ...], "row_groups": [[rows, ...], ...]} in source order."""
        return ofs.join(self.scratch, "count", f"{commit.shard_name(self.index)}.json")


def count_rows(task: CountTask) -> None:
    """Write the marker with each source's row count (per language group when split)."""
    files, row_groups = [], []
    for path in task.sources:
        with ofs.open_file(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            if task.split:
                groups = language_groups(parquet.read(columns=["language"]))
                files.append({group: int((groups == group).sum()) for group in LANGUAGE_GROUPS})
            else:
                files.append({"all": parquet.metadata.num_rows})
            row_groups.append([parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)])
    shuffle.write_marker(task.marker, {"files": files, "row_groups": row_groups})


Slice = tuple[str, int, int]  # a source file and the row groups [first, stop) of it a map task reads


def slices_of(units: list[tuple[str, int]]) -> tuple[Slice, ...]:
    """(path, row group) units merged into runs of consecutive row groups of the same file."""
    slices: list[Slice] = []
    for path, group in units:
        if slices and slices[-1][0] == path and slices[-1][2] == group:
            slices[-1] = (path, slices[-1][1], group + 1)
        else:
            slices.append((path, group, group + 1))
    return tuple(slices)


def _read_slice(source: Slice) -> pa.Table:
    path, first, stop = source
    with ofs.open_file(path, "rb") as handle:
        return pq.ParquetFile(handle).read_row_groups(list(range(first, stop))).cast(CANDIDATE_SCHEMA)


@dataclass(frozen=True)
class MapTask:
    """Hash-partition row groups of extract shards into one file whose row group r is reducer r's share."""

    scratch: str
    index: int
    sources: tuple[Slice, ...]
    reducers: int
    mode: str

    @property
    def output(self) -> str:
        """The partitioned rows."""
        return ofs.join(self.scratch, "map", f"{commit.shard_name(self.index)}.parquet")

    @property
    def marker(self) -> str:
        """Done marker: {"rows": read, "duplicate": dropped in the task}."""
        return ofs.join(self.scratch, "map", f"{commit.shard_name(self.index)}.json")


def map_rows(task: MapTask) -> None:
    """Read the sources, drop duplicates inside the task (smallest key wins), write one row group per
    reducer (in key order inside it), then the marker."""
    table = pa.concat_tables([_read_slice(source) for source in task.sources])
    hashes = shuffle.hash_keys(dedup_keys(table, task.mode))
    firsts, _ = first_rows(table, hashes)
    part = shuffle.range_of(hashes.take(pa.array(firsts)), task.reducers)
    chosen = pa.array(firsts[np.argsort(part, kind="stable")])
    shares = table.take(chosen).append_column(HASH, hashes.take(chosen))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=task.reducers))])
    crashpoints.reached("dedup.map", task.index)
    with (
        commit.atomic_open(task.output) as handle,
        pq.ParquetWriter(handle, shares.schema, compression=shuffle.SCRATCH_COMPRESSION) as writer,
    ):
        for reducer in range(task.reducers):
            writer.write_table(shares.slice(bounds[reducer], bounds[reducer + 1] - bounds[reducer]))
    shuffle.write_marker(task.marker, {"rows": table.num_rows, "duplicate": table.num_rows - len(firsts)})


def first_rows(table: pa.Table, hashes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the row with the smallest key for each distinct hash, in key order, and their keys
    (keys are unique digit strings that sort numerically)."""
    keys = pc.cast(table["key"], pa.int64()).to_numpy()
    order = np.argsort(keys)
    positions = pa.array(np.arange(len(order), dtype=np.int64))
    in_order = pa.table({"h": hashes.take(pa.array(order)), "i": positions})
    firsts = np.sort(in_order.group_by("h", use_threads=False).aggregate([("i", "min")])["i_min"].to_numpy())
    return order[firsts], keys[order[firsts]]


@dataclass(frozen=True)
class ReduceTask:
    """Keep, for each dedup hash in range `index` of `reducers`, the row with the smallest key."""

    scratch: str
    index: int
    reducers: int
    maps: int
    groups: tuple[str, ...]
    seen: history.Generation | None = None
    merged: history.Generation | None = None

    def output(self, group: str) -> str:
        """This range's survivors in language group `group` ("all" when not split), in hash order."""
        return ofs.join(self.scratch, "reduce", group, f"{commit.shard_name(self.index)}.parquet")

    @property
    def marker(self) -> str:
        """Done marker: rows, duplicate, seen_before, and survivors per group."""
        return ofs.join(self.scratch, "reduce", f"{commit.shard_name(self.index)}.json")


def reduce_rows(task: ReduceTask) -> None:
    """Merge this range from every map output, dedup it exactly, drop what the history holds, write the
    survivors in hash order (and this range of the new history generation), then the marker."""
    shares = _map_shares(task)
    table = pa.concat_tables(shares) if shares else _SHARE_SCHEMA.empty_table()
    firsts, keys = first_rows(table, table[HASH].combine_chunks())
    hashes = table[HASH].combine_chunks().take(pa.array(firsts))
    fresh = _not_seen(task, hashes)
    hashes, firsts, keys = hashes.filter(pa.array(fresh)), firsts[fresh], keys[fresh]
    survivors = table.take(pa.array(firsts[shuffle.hash_order(hashes, keys)])).drop_columns([HASH])
    crashpoints.reached("dedup.reduce", task.index)
    labels = language_groups(survivors) if task.groups != ("all",) else np.full(survivors.num_rows, "all")
    counts = {}
    for group in task.groups:
        mine = survivors.filter(pa.array(labels == group))
        with commit.atomic_open(task.output(group)) as handle:
            pq.write_table(
                mine, handle, compression=shuffle.SCRATCH_COMPRESSION, row_group_size=SCRATCH_ROW_GROUP
            )
        counts[group] = mine.num_rows
    duplicate, seen_before = table.num_rows - len(fresh), int((~fresh).sum())
    shuffle.write_marker(
        task.marker,
        {"rows": table.num_rows, "duplicate": duplicate, "seen_before": seen_before, "counts": counts},
    )


def _map_shares(task: ReduceTask) -> list[pa.Table]:
    """Row group `index` of every map output, one file open at a time."""
    shares = []
    for index in range(task.maps):
        path = ofs.join(task.scratch, "map", f"{commit.shard_name(index)}.parquet")
        with ofs.open_file(path, "rb") as handle:
            shares.append(pq.ParquetFile(handle).read_row_group(task.index))
    return shares


def _not_seen(task: ReduceTask, hashes: pa.Array) -> np.ndarray:
    """Mask of the hashes the history does not hold; writes this range of old ∪ new to the next
    generation."""
    if task.seen is None or task.merged is None:
        return np.ones(len(hashes), dtype=bool)
    old = task.seen.read_range(task.index, task.reducers)
    held = (
        pc.is_in(hashes, value_set=old).to_numpy(zero_copy_only=False)
        if len(old)
        else np.zeros(len(hashes), bool)
    )
    fresh = ~held
    history.write_part(task.merged, task.index, pa.concat_arrays([old, hashes.filter(pa.array(fresh))]))
    return fresh
