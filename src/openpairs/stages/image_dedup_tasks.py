"""Image dedup's tasks: sample, train the tree, map (assign + hash-partition), reduce (pairs), group.

Every task reads and writes files of the output store, commits them atomically and then its marker
(stages/shuffle.py), and returns nothing the driver must hold: a killed task is simply run again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import image_dedup_tree as tree
from openpairs.stages import shuffle

EXACT, NEAR = "exact", "near"
SLICE_SCHEMA = pa.schema([("key", pa.string()), ("dup_group", pa.string()), ("method", pa.string())])


@dataclass(frozen=True)
class Settings:
    """What every task of one run needs to know."""

    out: str
    scratch: str
    threshold: float
    max_leaves: int
    max_leaf_rows: int


def one_blas_thread() -> Any:
    """Run a task's matrix products on one thread: the executor's workers are the parallelism, and one
    thread sums in one order, so the tree and the cosines do not depend on the machine's core count."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def tree_path(scratch: str) -> str:
    """Where the train task writes the tree."""
    return ofs.join(scratch, "tree", "tree.npz")


def slice_path(out: str, shard: int) -> str:
    """The dataset-wide groups of clip shard `shard`'s rows: clip/dup_groups/<i>.parquet."""
    return ofs.join(out, "clip", "dup_groups", f"{commit.shard_name(shard)}.parquet")


@dataclass
class ShardRows:
    """The rows of one clip shard that have an image: key, key as a number, embedding, sha256 hash."""

    keys: pa.Array
    numbers: np.ndarray
    emb: np.ndarray
    sha: pa.Array


def read_shard(out: str, shard: int) -> ShardRows:
    """Rows with an image (a non-zero embedding) of clip shard `shard`, and their download's sha256."""
    name = commit.shard_name(shard)
    keys = ofs.read_parquet(ofs.join(out, "clip", f"{name}.parquet"), ["key"])["key"].combine_chunks()
    with ofs.open_file(ofs.join(out, "clip", "img_emb", f"{name}.npy"), "rb") as handle:
        emb = np.load(handle)
    has = np.any(emb != 0, axis=1)
    keys = keys.filter(pa.array(has))
    download = ofs.read_parquet(ofs.join(out, "shards", f"{name}.parquet"), ["key", "sha256"])
    where = pc.index_in(keys, value_set=download["key"].combine_chunks())
    sha = download["sha256"].combine_chunks().take(where)
    numbers = pc.cast(keys, pa.int64()).to_numpy()
    return ShardRows(keys, numbers, np.ascontiguousarray(emb[has]), sha)


def _hash_order(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The 128-bit hash of each key as (high, low) uint64 words."""
    words = shuffle.hash_words(shuffle.hash_keys(keys))
    return words[:, 0], words[:, 1]


@dataclass(frozen=True)
class SampleTask:
    """Keep the `size` rows with the smallest key hashes of some clip shards (a seeded, task-free sample)."""

    settings: Settings
    index: int
    shards: tuple[int, ...]
    size: int

    @property
    def output(self) -> str:
        """The sample: hash words and float16 embeddings, smallest hash first."""
        return ofs.join(self.settings.scratch, "sample", f"{commit.shard_name(self.index)}.npz")

    @property
    def marker(self) -> str:
        """Done marker: {"rows": [rows with an image, per shard]}."""
        return ofs.join(self.settings.scratch, "sample", f"{commit.shard_name(self.index)}.json")


class Bottom:
    """The `size` rows with the smallest 128-bit hashes seen so far, in memory for at most 1.25 x `size`:
    once full, a row whose high word exceeds the largest kept one is not even held."""

    def __init__(self, size: int) -> None:
        self.size, self.held = size, 0
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.cut: np.uint64 | None = None

    def add(self, hi: np.ndarray, lo: np.ndarray, emb: np.ndarray) -> None:
        """Offer rows (hash words and float16 embeddings)."""
        if self.cut is not None:
            inside = hi <= self.cut
            hi, lo, emb = hi[inside], lo[inside], emb[inside]
        self.parts.append((hi, lo, np.asarray(emb, dtype=np.float16)))
        self.held += len(hi)
        if self.held > self.size + max(1, self.size // 4):
            self._trim()

    def _trim(self) -> None:
        hi, lo, emb = (np.concatenate(column) for column in zip(*self.parts, strict=True))
        order = np.lexsort((lo, hi))[: self.size]
        self.parts, self.held = [(hi[order], lo[order], emb[order])], len(order)
        if self.held == self.size:
            self.cut = hi[order[-1]]

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept rows in hash order (empty arrays when none was offered)."""
        if not self.parts:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros((0, 0), np.float16)
        self._trim()
        return self.parts[0]


def sample_rows(task: SampleTask) -> None:
    """Write the task's bottom-`size` sample, then the marker with its row counts."""
    kept, counts = Bottom(task.size), []
    for shard in task.shards:
        rows = read_shard(task.settings.out, shard)
        counts.append(len(rows.numbers))
        kept.add(*_hash_order(rows.keys), rows.emb)
    hi, lo, emb = kept.rows()
    _save_npz(task.output, hi=hi, lo=lo, emb=emb)
    shuffle.write_marker(task.marker, {"rows": counts})


def _save_npz(path: str, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    commit.write_bytes_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class TrainTask:
    """Merge the samples (smallest hashes win) and build the k-means tree from them."""

    settings: Settings
    samples: tuple[str, ...]
    size: int
    leaf_points: int
    branching: int
    seed: int

    @property
    def output(self) -> str:
        """The tree (Tree.to_bytes)."""
        return tree_path(self.settings.scratch)

    @property
    def marker(self) -> str:
        """Done marker: {"sample": rows, "leaves": n}."""
        return ofs.join(self.settings.scratch, "tree", "tree.json")


def train_tree(task: TrainTask) -> None:
    """Write the tree built from the merged sample, then the marker."""
    kept = Bottom(task.size)
    for path in task.samples:
        with np.load(io.BytesIO(ofs.read_bytes(path))) as part:
            if len(part["hi"]):
                kept.add(part["hi"], part["lo"], part["emb"])
    hi, _, emb = kept.rows()
    if not len(hi):
        raise ValueError("image dedup: no embedding to sample")
    with one_blas_thread():
        built = tree.build_tree(emb.astype(np.float32), task.leaf_points, task.branching, task.seed)
    commit.write_bytes_atomic(task.output, built.to_bytes())
    shuffle.write_marker(task.marker, {"sample": len(hi), "leaves": built.leaves})


def reducer_of_leaf(built: tree.Tree, reducers: int) -> np.ndarray:
    """Contiguous runs of leaves, one per reducer, balanced by the sample points they hold."""
    before = np.cumsum(built.leaf_weight) - built.leaf_weight
    return np.minimum(before * reducers // max(1, int(built.leaf_weight.sum())), reducers - 1)
