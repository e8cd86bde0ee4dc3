"""Load a built index directory and answer k-nearest-neighbour queries with metadata and filters."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from openpairs.index.build import INDEX_JSON, dataset_root
from openpairs.index.metadata import Metadata
from openpairs.index.shardset import ShardSet
from openpairs.index.sources import EmbeddingStore, is_local
from openpairs.io import fs

MAX_FETCH = 4096
DEDUP_THRESHOLD = 0.94  # cosine above which two results count as the same image (clip-retrieval's value)
UNSAFE_PUNSAFE = 0.5


class IndexNotFoundError(FileNotFoundError):
    """The directory has no built index."""


@dataclass(frozen=True)
class Filters:
    """Result filters: safe mode, near-duplicate removal, a minimum aesthetic score."""

    safe: bool = True
    dedup: bool = True
    min_aesthetic: float | None = None


def is_unsafe(row: dict[str, Any]) -> bool:
    """punsafe > 0.5 or an NSFW tag of NSFW."""
    punsafe = row.get("punsafe")
    return (punsafe is not None and punsafe > UNSAFE_PUNSAFE) or row.get("nsfw") == "NSFW"


class SearchIndex:
    """The faiss indexes (per modality), metadata and embeddings of one `openpairs index` output."""

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, INDEX_JSON)
        if not os.path.exists(path):
            raise IndexNotFoundError(f"no {INDEX_JSON} in {directory}: run `openpairs index` first")
        with open(path, encoding="utf-8") as handle:
            self.manifest: dict[str, Any] = json.load(handle)
        self.directory = directory
        self.root = dataset_root(directory, self.manifest)
        self.metadata = Metadata(os.path.join(directory, self.manifest["metadata"]))
        self.indexes: dict[str, ShardSet] = {}
        self.stores: dict[str, EmbeddingStore | None] = {}
        for modality, entry in self.manifest["indices"].items():
            index = ShardSet.read(directory, entry)
            index.set_param(entry.get("param"), entry.get("value") or 0)
            self.indexes[modality] = index
            self.stores[modality] = self._store(entry)

    def _store(self, entry: dict[str, Any]) -> EmbeddingStore | None:
        """The embeddings the index was built from (used to drop near-duplicate results), if reachable."""
        files = [
            os.path.normpath(os.path.join(self.directory, f)) if is_local(f) else f
            for f in entry.get("embeddings", [])
        ]
        return EmbeddingStore(files) if files and all(fs.exists(f) for f in files) else None

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(next(iter(self.manifest["indices"].values()))["dim"])

    @property
    def modalities(self) -> list[str]:
        """Indexed modalities ("image", and "text" when built with --text)."""
        return list(self.indexes)

    def knn(self, query: np.ndarray, modality: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw (similarities, ids) of the top-k for one normalised query vector, ids >= 0 only."""
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        distances, ids = self.indexes[modality].search(vector, min(k, len(self.metadata)))
        keep = ids[0] >= 0
        return distances[0][keep], ids[0][keep]

    def search(self, query: np.ndarray, modality: str, k: int, filters: Filters) -> list[dict[str, Any]]:
        """Top-k results with metadata after the filters, fetching deeper until k survive."""
        fetch = min(max(4 * k, k + 32), MAX_FETCH)
        while True:
            distances, ids = self.knn(query, modality, fetch)
            rows = self.metadata.rows(ids)
            results = [_result(row, int(i), float(d)) for row, i, d in zip(rows, ids, distances, strict=True)]
            results = self._filter(results, modality, filters)
            if len(results) >= k or fetch >= MAX_FETCH or len(ids) < fetch:
                return results[:k]
            fetch = min(fetch * 4, MAX_FETCH)

    def _filter(self, results: list[dict[str, Any]], modality: str, filters: Filters) -> list[dict[str, Any]]:
        if filters.safe:
            results = [r for r in results if not is_unsafe(r)]
        if filters.min_aesthetic is not None:
            floor = filters.min_aesthetic
            results = [r for r in results if r.get("aesthetic") is not None and r["aesthetic"] >= floor]
        if filters.dedup:
            results = self._dedup(results, modality)
        return results

    def _dedup(self, results: list[dict[str, Any]], modality: str) -> list[dict[str, Any]]:
        """Drop results whose URL repeats or whose embedding is near-identical to a better one."""
        seen_urls: set[str] = set()
        unique = []
        for result in results:
            url = result.get("url")
            if url is None or url not in seen_urls:
                unique.append(result)
            if url is not None:
                seen_urls.add(url)
        results = unique
        store = self.stores.get(modality)
        if store is None or len(results) < 2:
            return results
        vectors = store.take(np.array([r["id"] for r in results]))
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        # drop a result when any better-ranked one is near-identical (clip-retrieval's rule)
        # einsum, not `@`: a tiny BLAS call next to faiss's OpenMP threads can stall for milliseconds
        similarity = np.einsum("id,jd->ij", vectors, vectors)
        duplicate = np.triu(similarity >= DEDUP_THRESHOLD, k=1).any(axis=0)
        return [r for r, dup in zip(results, duplicate.tolist(), strict=True) if not dup]

    def close(self) -> None:
        """Release the metadata memory map and the shards' search threads."""
        self.metadata.close()
        for index in self.indexes.values():
            index.close()


def _result(row: dict[str, Any], item: int, similarity: float) -> dict[str, Any]:
    """A metadata row as a result: `similarity` is the query's; the dataset's becomes `clip_similarity`."""
    result = {**row, "id": item, "similarity": similarity}
    if "similarity" in row:
        result["clip_similarity"] = row["similarity"]
    return result
