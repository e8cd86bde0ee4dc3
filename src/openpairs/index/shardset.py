"""One or K faiss indexes over disjoint id ranges, searched as one: results merged, ties broken by id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

REFINE_K_FACTOR = 4
# Served indexes are memory-mapped: their lists and codes stay in the page cache, not in the process.
READ_FLAGS = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
# On-disk inverted lists are always mapped (IO_FLAG_MMAP on them crashes faiss 1.15); found beside the file.
ON_DISK_FLAGS = faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY


@contextmanager
def omp_threads(count: int) -> Iterator[None]:
    """faiss's OpenMP thread count set to `count` (0: left as is) inside the block, restored after."""
    before = faiss.omp_get_max_threads()
    if count > 0:
        faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def read_mapped(path: str, on_disk: bool = False) -> faiss.Index:
    """A built index file, memory-mapped; `on_disk`: its inverted lists are a data file beside it."""
    return faiss.read_index(path, ON_DISK_FLAGS if on_disk else READ_FLAGS)


def set_param(index: faiss.Index, name: str | None, value: int) -> None:
    """Set nprobe / efSearch (and the refinement factor for refined indexes) on one faiss index."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexRefine):
        inner.k_factor = REFINE_K_FACTOR
    if name is not None:
        faiss.ParameterSpace().set_index_parameter(index, name, value)


def store_param(path: str, name: str | None, value: int, on_disk: bool = False) -> None:
    """Write the tuned search parameter into the index file at `path` (atomically), so that any faiss reader
    (e.g. `clip-retrieval back`, which has no other source for it) searches as openpairs does. With
    `on_disk` lists, the file then names its data file by `path`'s folder (a plain `faiss.read_index`
    opens it there; openpairs opens it beside the index file wherever the folder moves)."""
    if name is None:
        return
    flags = faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY if on_disk else 0
    index = faiss.read_index(path, flags)
    set_param(index, name, value)
    faiss.write_index(index, path + ".tmp")
    os.replace(path + ".tmp", path)


def merge_results(
    distances: list[np.ndarray], ids: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the k best of several (n, k) results: highest similarity first, then smallest id."""
    d, i = np.concatenate(distances, axis=1), np.concatenate(ids, axis=1)
    missing = i < 0
    order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, i), np.where(missing, np.inf, -d)), axis=1)
    order = order[:, :k]
    return np.take_along_axis(d, order, axis=1), np.take_along_axis(i, order, axis=1)


class ShardSet:
    """faiss indexes over disjoint id ranges; `search` asks each (in parallel) and merges their top-k."""

    def __init__(self, indexes: list[faiss.Index]) -> None:
        self.indexes = indexes
        self._pool = ThreadPoolExecutor(len(indexes)) if len(indexes) > 1 else None

    @classmethod
    def read(cls, directory: str, entry: dict[str, Any]) -> ShardSet:
        """The index files of an index.json entry (relative to `directory`), memory-mapped."""
        files = entry.get("shards") or [entry["file"]]
        return cls([read_mapped(os.path.join(directory, f), "data" in entry) for f in files])

    @property
    def ntotal(self) -> int:
        """Vectors indexed in all shards."""
        return sum(int(index.ntotal) for index in self.indexes)

    @property
    def nlist(self) -> int:
        """The IVF list count (the same quantizer in every shard)."""
        return int(faiss.extract_index_ivf(self.indexes[0]).nlist)

    def set_param(self, name: str | None, value: int) -> None:
        """Set the search parameter on every shard."""
        for index in self.indexes:
            set_param(index, name, value)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids) of the top-k over all shards, ties broken by the smaller id."""
        if self._pool is None:
            d, i = self.indexes[0].search(queries, k)
            return merge_results([d], [i], k)
        parts = list(self._pool.map(lambda index: index.search(queries, k), self.indexes))
        return merge_results([p[0] for p in parts], [p[1] for p in parts], k)

    def close(self) -> None:
        """Stop the search threads."""
        if self._pool is not None:
            self._pool.shutdown()
