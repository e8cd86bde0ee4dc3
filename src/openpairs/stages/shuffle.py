"""A reusable map → hash partition → reduce → cut mechanism, run as executor tasks over files in the store.

Rows are hashed to 128 bits (`hash_keys`). A hash's top 32 bits place it in one of `parts` contiguous hash
ranges (`range_of`), so a step with any number of reducers can read another's range-partitioned files
(`range_bounds`). Each phase's tasks commit their outputs atomically and then a marker; `run_phase` runs
the tasks whose marker is missing, so a killed run resumes where it stopped. The driver only passes paths
and small numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import mmh3
import numpy as np
import pyarrow as pa

from openpairs.executors import Executor
from openpairs.io import commit
from openpairs.io import fs as ofs

HASH_TYPE = pa.binary(16)
RANGE_BITS = 32
HASH_BATCH = 65_536
SCRATCH_COMPRESSION = "lz4"  # intermediate files: written once, read once; fast beats small


class PhaseFailed(RuntimeError):
    """A task of a global step still failed after the executor's retries."""


class PhaseTask(Protocol):
    """A task that marks itself done by writing `marker` last."""

    @property
    def marker(self) -> str:
        """Path of the file whose existence means the task is done."""
        ...


def hash_keys(keys: pa.Array) -> pa.FixedSizeBinaryArray:
    """128-bit MurmurHash3 (x64) of each string, as fixed_size_binary(16) (big-endian byte order);
    batch by batch, so the Python objects alive at once stay few."""
    binary = keys.cast(pa.binary())
    digest = mmh3.mmh3_x64_128_digest
    parts = [
        b"".join(map(digest, binary.slice(start, HASH_BATCH).to_pylist()))
        for start in range(0, len(binary), HASH_BATCH)
    ]
    return pa.FixedSizeBinaryArray.from_buffers(HASH_TYPE, len(binary), [None, pa.py_buffer(b"".join(parts))])


def hash_words(hashes: pa.Array) -> np.ndarray:
    """The hashes as an (n, 2) array of uint64 words whose numeric order is the hashes' byte order."""
    array = hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes
    if len(array) == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    data = array.buffers()[1]
    words = np.frombuffer(data, dtype=">u8", count=2 * (array.offset + len(array)))[2 * array.offset :]
    return words.reshape(-1, 2).astype(np.uint64)


def range_of(hashes: pa.Array, parts: int) -> np.ndarray:
    """For each hash, which of `parts` contiguous hash ranges holds it (by its top 32 bits)."""
    top = hash_words(hashes)[:, 0] >> np.uint64(64 - RANGE_BITS)
    return ((top * np.uint64(parts)) >> np.uint64(RANGE_BITS)).astype(np.int64)


def range_bounds(part: int, parts: int) -> tuple[int, int]:
    """The top-32-bit values [start, stop) of hash range `part` of `parts` (consistent with range_of)."""
    return -(-(part << RANGE_BITS) // parts), -(-((part + 1) << RANGE_BITS) // parts)


def overlapping_ranges(part: int, parts: int, other_parts: int) -> range:
    """The ranges of an `other_parts` partitioning that overlap range `part` of `parts`."""
    start, stop = range_bounds(part, parts)
    first = (start * other_parts) >> RANGE_BITS
    last = ((stop - 1) * other_parts) >> RANGE_BITS
    return range(first, last + 1) if stop > start else range(0)


def in_range(hashes: pa.Array, part: int, parts: int) -> np.ndarray:
    """Mask of the hashes that fall in range `part` of `parts`."""
    return range_of(hashes, parts) == part


def hash_order(hashes: pa.Array, tie_break: np.ndarray) -> np.ndarray:
    """Indices that sort rows by hash; rows with equal top words are ordered by `tie_break` too."""
    words = hash_words(hashes)
    order = np.argsort(words[:, 0])
    top = words[order, 0]
    if len(top) > 1 and bool(np.any(top[1:] == top[:-1])):
        order = np.lexsort((tie_break, words[:, 1], words[:, 0]))
    return order


def run_phase(
    runner: Executor,
    work: Callable[[Any], Any],
    tasks: Sequence[PhaseTask],
    retries: int,
    done_dir: str,
) -> None:
    """Run `work` over the tasks whose marker (in `done_dir`) is missing, each failure retried `retries`
    times; PhaseFailed names the tasks that still failed."""
    done = set(ofs.list_files(done_dir)) if tasks else set()
    todo = [task for task in tasks if task.marker not in done]
    if todo:
        commit.remove_stale_temporaries(done_dir)
    for _ in range(retries + 1):
        failed = [(todo[pos], out) for pos, out in runner.imap(work, todo) if isinstance(out, BaseException)]
        if not failed:
            return
        todo = [task for task, _ in failed]
    task, error = failed[0]
    raise PhaseFailed(
        f"{len(failed)} task(s) failed, e.g. {task}: {type(error).__name__}: {error}"
    ) from error


def read_marker(task: PhaseTask) -> dict[str, Any]:
    """The small JSON record a done task left in its marker."""
    return json.loads(ofs.read_text(task.marker))  # type: ignore[no-any-return]


def write_marker(path: str, record: dict[str, Any]) -> None:
    """Mark a task done with its small JSON record (atomically, last)."""
    commit.write_bytes_atomic(path, json.dumps(record, sort_keys=True).encode("utf-8"))


def groups_of(sizes: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) groups of items whose sizes add up to at most `budget` (one item at
    least per group)."""
    groups: list[tuple[int, int]] = []
    start, total = 0, 0
    for position, size in enumerate(sizes):
        if position > start and total + size > budget:
            groups.append((start, position))
            start, total = position, 0
        total += size
    if start < len(sizes):
        groups.append((start, len(sizes)))
    return groups
