"""Ground truth on a sample, recall@k, search-parameter tuning and single-query latency.

Recall is tuned on a seeded sample S of the data, never by exact search over all embeddings: the sample's
vectors go into an index with the same trained quantizer (same lists, same codes), the truth is the exact
top-k within S, and queries are members of S left out of their own results. That is the full index's
search restricted to S, so the estimate costs O(|S|^2 d) whatever the dataset size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from openpairs.index.shardset import ShardSet, omp_threads
from openpairs.index.sources import EmbeddingStore

SWEEPS = {
    "nprobe": (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512),
    "efSearch": (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024),
}
ZERO_NORM = 1e-6  # squared norm below which a row is a missing embedding


@dataclass(frozen=True)
class Sample:
    """Seeded sample of stored, non-zero vectors: ids (sorted) and vectors (float32)."""

    ids: np.ndarray
    vectors: np.ndarray


def nonzero_sample(store: EmbeddingStore, count: int, seed: int = 0) -> Sample:
    """Up to `count` random stored vectors, all-zero rows left out."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(store.count, size=min(count, store.count), replace=False))
    vectors = store.take(ids)
    keep = np.einsum("ij,ij->i", vectors, vectors) > ZERO_NORM
    return Sample(ids[keep], np.ascontiguousarray(vectors[keep]))


def sample_queries(store: EmbeddingStore, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out queries: (ids, vectors) of random stored items."""
    sample = nonzero_sample(store, 2 * count, seed)
    keep = np.sort(np.random.default_rng(seed).permutation(len(sample.ids))[:count])
    return sample.ids[keep], sample.vectors[keep]


def query_subset(sample: Sample, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` members of the sample as leave-one-out queries: (ids, vectors)."""
    keep = np.sort(np.random.default_rng(seed).permutation(len(sample.ids))[:count])
    return sample.ids[keep], sample.vectors[keep]


def sample_truth(sample: Sample, queries: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids within the sample, each query's own id left out."""
    found = faiss.knn(queries, sample.vectors, min(k + 1, len(sample.ids)), faiss.METRIC_INNER_PRODUCT)[1]
    return without_self(np.where(found >= 0, sample.ids[np.maximum(found, 0)], -1), self_ids, k)


def without_self(found: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Each row of a (k+1)-wide result without the query's own id, cut to k columns (-1 padded)."""
    out = np.full((len(found), k), -1, dtype=np.int64)
    for row, (hits, me) in enumerate(zip(found, self_ids, strict=True)):
        kept = hits[(hits != me) & (hits >= 0)][:k]
        out[row, : len(kept)] = kept
    return out


def search_ids(index: ShardSet, queries: np.ndarray, k: int, self_ids: np.ndarray | None) -> np.ndarray:
    """Top-k ids from the index (leave-one-out when `self_ids` is given)."""
    if self_ids is None:
        return index.search(queries, k)[1]
    return without_self(index.search(queries, k + 1)[1], self_ids, k)


def exact_knn(store: EmbeddingStore, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-k by inner product, streaming the store chunk by chunk."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start, stop in store.chunks(131072):
        distances, ids = faiss.knn(
            queries, store.rows(start, stop), min(k, stop - start), faiss.METRIC_INNER_PRODUCT
        )
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            distances = np.pad(distances, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        heap.add_result(np.ascontiguousarray(distances), np.ascontiguousarray(ids + start))
    heap.finalize()
    return heap.I  # type: ignore[no-any-return]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-k ids present in the found top-k."""
    k = truth.shape[1]
    hits = sum(len(set(f[:k].tolist()) & (set(t.tolist()) - {-1})) for f, t in zip(found, truth, strict=True))
    return hits / float(max(int((truth >= 0).sum()), 1))


def tune(
    index: ShardSet,
    param: str | None,
    queries: np.ndarray,
    truth: np.ndarray,
    target: float,
    self_ids: np.ndarray | None = None,
) -> dict[str, Any]:
    """Smallest sweep value reaching `target` recall@k; the sweep's best if none does."""
    k = truth.shape[1]
    if param is None:
        found = search_ids(index, queries, k, self_ids)
        return {"param": None, "value": None, "recall": recall_at_k(found, truth), "sweep": []}
    sweep: list[dict[str, float]] = []
    for value in SWEEPS[param]:
        if param == "nprobe" and value > index.nlist:
            break
        index.set_param(param, value)
        recall = recall_at_k(search_ids(index, queries, k, self_ids), truth)
        sweep.append({"value": value, "recall": recall})
        if recall >= target:
            break
    best = next((s for s in sweep if s["recall"] >= target), max(sweep, key=lambda s: s["recall"]))
    index.set_param(param, int(best["value"]))
    return {"param": param, "value": int(best["value"]), "recall": best["recall"], "sweep": sweep}


def latency_ms(index: ShardSet, queries: np.ndarray, k: int = 10, repeat: int = 200) -> dict[str, float]:
    """p50 / p99 of single-query search latency in milliseconds, one faiss thread per shard."""
    times = []
    with omp_threads(1):  # as `serve` runs: one thread per query, concurrency across requests
        for i in range(min(repeat, len(queries))):
            started = time.perf_counter()
            index.search(queries[i : i + 1], k)
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}
