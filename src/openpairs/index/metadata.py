"""id -> metadata as one uncompressed Arrow IPC file, read back memory-mapped (no rows held in RAM)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from openpairs.index.sources import IndexInputError, Shard, Sources, open_embeddings
from openpairs.io import fs

# LAION column spellings -> the names the index uses.
RENAMES = {"URL": "url", "TEXT": "caption", "NSFW": "nsfw", "WIDTH": "width", "HEIGHT": "height"}
DOWNLOAD_COLUMNS = ("url", "caption", "width", "height")


def _normalise(table: pa.Table) -> pa.Table:
    names = [
        RENAMES.get(n, n) if RENAMES.get(n, n) not in table.column_names else n for n in table.column_names
    ]
    return table.rename_columns(names)


def _openpairs_rows(shard: Shard) -> pa.Table:
    """A clip shard's scores joined by key to url/caption/width/height from the download parquet."""
    scores = fs.read_parquet(shard.rows)
    if shard.extra is None:
        return scores
    wanted = ["key", *(c for c in DOWNLOAD_COLUMNS if c in fs.parquet_columns(shard.extra))]
    downloads = fs.read_parquet(shard.extra, columns=wanted)
    position = pc.index_in(scores["key"], value_set=downloads["key"])
    for name in wanted[1:]:
        scores = scores.append_column(name, pc.take(downloads[name], position))
    return scores


def shard_tables(sources: Sources) -> Iterator[pa.Table]:
    """The metadata of each shard, in id order, checked against its embedding row count."""
    for shard in sources.shards:
        table = _openpairs_rows(shard) if sources.layout == "openpairs" else fs.read_parquet(shard.rows)
        table = _normalise(table)
        rows = open_embeddings(shard.image).shape[0]
        if table.num_rows != rows:
            raise IndexInputError(
                f"{shard.rows} has {table.num_rows} rows but {shard.image} has {rows} vectors"
            )
        yield table


def _parquet_schema(path: str) -> pa.Schema:
    """The arrow schema of one parquet file, from its footer."""
    with fs.open_file(path, "rb") as handle:
        return pq.ParquetFile(handle).schema_arrow


def write_metadata(sources: Sources, path: str, progress: Callable[[int], None] | None = None) -> int:
    """Write all shards' metadata to one Arrow file at `path`; returns the row count."""
    schemas = [_normalise(_parquet_schema(s.rows).empty_table()).schema for s in sources.shards]
    if sources.layout == "openpairs":
        schemas = [_normalise(_openpairs_rows(sources.shards[0]).slice(0, 0)).schema]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    total = 0
    with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, schema) as writer:
        for table in shard_tables(sources):
            for name in schema.names:
                if name not in table.column_names:
                    table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
            writer.write_table(table.select(schema.names).cast(schema), max_chunksize=65536)
            total += table.num_rows
            if progress is not None:
                progress(table.num_rows)
    return total


class Metadata:
    """Memory-mapped metadata rows, looked up by id (batch by batch: no chunk concatenation per query)."""

    def __init__(self, path: str) -> None:
        self.source = pa.memory_map(path, "r")
        reader = ipc.open_file(self.source)
        self.batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        self.columns = reader.schema.names
        self.offsets = np.cumsum([0] + [b.num_rows for b in self.batches])
        # scalar access per (row, column) is O(1); Table.take would concatenate every chunk per query
        self._columns = [b.columns for b in self.batches]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def rows(self, ids: np.ndarray | list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows of `ids` (all in range), as dicts of plain Python values, in the order given."""
        wanted = [(n, self.columns.index(n)) for n in (columns or self.columns) if n in self.columns]
        ids = np.asarray(ids, dtype=np.int64)
        which = np.searchsorted(self.offsets, ids, side="right") - 1
        rows = []
        for item, batch in zip(ids.tolist(), which.tolist(), strict=True):
            arrays, offset = self._columns[batch], item - int(self.offsets[batch])
            rows.append({name: arrays[j][offset].as_py() for name, j in wanted})
        return rows

    def close(self) -> None:
        """Release the memory map."""
        self.batches, self._columns = [], []
        self.source.close()
