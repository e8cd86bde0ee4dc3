"""The exact history of dedup hashes seen in earlier runs, partitioned by hash range, in generations.

Layout under the history directory (any fsspec URL):
  `_current.json`               {"generation": g, "parts": P, "rows": H, "dedup": mode}: the committed one
  `gen-<g>/<j>.parquet`          column `hash` (fixed_size_binary(16)): hash range j of P, sorted
A run's reducer r reads the parts overlapping its range, drops the rows whose hash is there
(`seen_before`) and writes its range of old ∪ new to generation g+1; the driver then moves the pointer
(atomically) and removes generation g. Nothing is approximate: no false positives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import shuffle

POINTER = "_current.json"
COLUMN = "hash"


class HistoryMismatch(ValueError):
    """The history was built with another dedup key: its hashes would not match this run's."""


@dataclass(frozen=True)
class Generation:
    """One committed (or planned) generation of a history."""

    root: str
    generation: int
    parts: int
    rows: int
    dedup: str

    @property
    def folder(self) -> str:
        """Where this generation's parts live."""
        return ofs.join(self.root, f"gen-{self.generation:06d}")

    def part_path(self, part: int) -> str:
        """Where hash range `part` of this generation lives."""
        return ofs.join(self.folder, f"{commit.shard_name(part)}.parquet")

    def read_range(self, part: int, parts: int) -> pa.Array:
        """The hashes of this generation that fall in range `part` of `parts` (another partitioning)."""
        if self.rows == 0:
            return pa.array([], type=shuffle.HASH_TYPE)
        chunks = []
        for other in shuffle.overlapping_ranges(part, parts, self.parts):
            with ofs.open_file(self.part_path(other), "rb") as handle:
                hashes = pq.ParquetFile(handle).read(columns=[COLUMN])[COLUMN].combine_chunks()
            chunks.append(hashes.filter(pa.array(shuffle.in_range(hashes, part, parts))))
        return pa.concat_arrays(chunks) if chunks else pa.array([], type=shuffle.HASH_TYPE)

    def next(self, parts: int) -> Generation:
        """The generation a run with `parts` reducers writes (rows unknown until it is committed)."""
        return Generation(self.root, self.generation + 1, parts, 0, self.dedup)


def current(root: str, dedup: str) -> Generation:
    """The committed generation at `root` (generation 0, empty, when there is none yet)."""
    pointer = ofs.join(root, POINTER)
    if not ofs.exists(pointer):
        return Generation(root, 0, 1, 0, dedup)
    record = json.loads(ofs.read_text(pointer))
    if record["dedup"] != dedup:
        raise HistoryMismatch(
            f"{root} holds hashes of the dedup key {record['dedup']!r}, not {dedup!r}: use another --history"
        )
    return Generation(root, record["generation"], record["parts"], record["rows"], record["dedup"])


def write_part(generation: Generation, part: int, hashes: pa.Array) -> None:
    """Commit one hash range of a new generation (sorted by hash)."""
    order = shuffle.hash_order(hashes, np.zeros(len(hashes), dtype=np.int64))
    table = pa.table({COLUMN: hashes.take(pa.array(order, type=pa.int64()))})
    commit.write_parquet_atomic(table, generation.part_path(part))


def commit_generation(new: Generation, base: Generation, rows: int) -> None:
    """Point the history at `new` (atomically), then remove `base`'s files; a no-op once done."""
    pointer = ofs.join(new.root, POINTER)
    if not ofs.exists(pointer) or json.loads(ofs.read_text(pointer))["generation"] == base.generation:
        record = {"generation": new.generation, "parts": new.parts, "rows": rows, "dedup": new.dedup}
        commit.write_bytes_atomic(pointer, json.dumps(record, indent=1).encode("utf-8"))
    fs, path = ofs.filesystem(base.folder)
    if fs.exists(path):
        fs.rm(path, recursive=True)
