"""Atomic shard commits: write to a temporary name, rename into place, write the stats file last."""

from __future__ import annotations

import errno
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core.stats import ShardStats
from openpairs.io import fs as ofs

TMP_MARK = ".tmp-"
VERSIONS_DIR = "_versions"  # DIR/_versions/<stage>/<shard>.json: see ShardPaths.versions
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space left, disk quota exceeded


class OutOfSpace(Exception):
    """The output storage is full: the run stops at once (a retry, or the next shard, would only fail
    the same way); freeing space and rerunning resumes it."""


def out_of_space(error: BaseException) -> OSError | None:
    """The error in `error`'s chain that says the storage is full (ENOSPC, EDQUOT), else None."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in FULL_ERRNOS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_SHARD_FILE = re.compile(r"(\d+)(?:[._]|$)")


def shard_name(index: int) -> str:
    """Shard file stem, zero-padded to five digits (00042) and wider beyond 99,999 (123456), as LAION's."""
    if index < 0:
        raise ValueError(f"shard index {index} is negative")
    return f"{index:05d}"


def shard_index(name: str) -> int | None:
    """The index of a shard's file (`00042.parquet`, `00042_stats.json` -> 42), None for other names."""
    found = _SHARD_FILE.match(name.rsplit("/", 1)[-1])
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class ShardPaths:
    """Where shard `index` of a stage keeps its files: `<out>/<stage>/<index>.<ext>`."""

    out: str
    stage_dir: str
    index: int

    @property
    def directory(self) -> str:
        """The stage directory."""
        return ofs.join(self.out, self.stage_dir)

    def file(self, ext: str, subdir: str = "") -> str:
        """Path of this shard's file with extension `ext` (optionally in a sub-directory)."""
        name = f"{shard_name(self.index)}.{ext}"
        return ofs.join(self.directory, subdir, name) if subdir else ofs.join(self.directory, name)

    @property
    def stats(self) -> str:
        """Path of the stats file that marks the shard done."""
        return ofs.join(self.directory, f"{shard_name(self.index)}_stats.json")

    def is_done(self) -> bool:
        """A shard is done exactly when its stats file exists."""
        return ofs.exists(self.stats)

    @property
    def versions(self) -> str:
        """Path of the record of the input versions this shard was made from (io.freshness). It lives
        in DIR/_versions/, outside the stage's outputs: its modification stamps differ from run to run,
        and the outputs must not."""
        return ofs.join(self.out, VERSIONS_DIR, self.stage_dir, f"{shard_name(self.index)}.json")

    def read_stats(self) -> ShardStats:
        """The committed stats of a done shard."""
        return ShardStats.from_dict(json.loads(ofs.read_text(self.stats)))

    def read_versions(self) -> dict[str, str]:
        """The input versions recorded when this shard was committed ({} when none were tracked)."""
        try:
            return json.loads(ofs.read_text(self.versions))  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}

    def commit_stats(self, stats: ShardStats, inputs: dict[str, str] | None = None) -> None:
        """Write the stats file, last, atomically: this marks the shard done. `inputs`: the versions of
        the inputs it was made from (io.freshness), recorded first, so a resume can tell when they were
        rewritten."""
        if inputs:
            write_bytes_atomic(self.versions, json.dumps(inputs, indent=1, sort_keys=True).encode("utf-8"))
        write_bytes_atomic(self.stats, stats.to_json().encode("utf-8"))


@contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; rename it onto `path` only if the block succeeds."""
    fs, target = ofs.filesystem(path)
    parent = target.rsplit("/", 1)[0] if "/" in target else "."
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{target}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    try:
        with fs.open(tmp, mode) as handle:
            yield handle
        fs.mv(tmp, target)
    except BaseException as error:
        _discard(fs, tmp, error)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = path  # name what could not be written: a full disk's error does not
        raise


def _discard(fs: Any, tmp: str, error: BaseException) -> None:
    """Remove a temporary after `error`; if that fails too (the store is down), the next run removes it."""
    try:
        if fs.exists(tmp):
            fs.rm(tmp)
    except Exception as cleanup:
        error.add_note(f"{tmp} is left for the next run to remove ({type(cleanup).__name__}: {cleanup})")


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_parquet_atomic(table: pa.Table, path: str) -> None:
    """Write a parquet file atomically (zstd compressed)."""
    with atomic_open(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def write_float16_npy_atomic(array: np.ndarray, path: str) -> None:
    """Write `array` as a float16 `.npy` file atomically (the embeddings' format in every export)."""
    with atomic_open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float16))


def remove_stale_temporaries(directory: str) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    fs, p = ofs.filesystem(directory)
    if not fs.exists(p):
        return 0
    stale = [entry for entry in fs.find(p) if TMP_MARK in str(entry).rsplit("/", 1)[-1]]
    for entry in stale:
        fs.rm(entry)
    return len(stale)
