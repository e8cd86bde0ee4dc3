"""Pick a faiss index from the vector count, the dimension and a memory budget."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

EXACT_MAX = 20_000  # up to this, exact search takes ~1-2 ms on one core and needs no tuning
HNSW_MAX = 200_000  # HNSW builds slowly; above this, IVF builds far faster on a few cores
HNSW_M = 32


@dataclass(frozen=True)
class IndexChoice:
    """A faiss factory string, the parameter to tune, and the estimated memory in bytes."""

    factory: str
    param: str | None  # "nprobe", "efSearch" or None (exact)
    memory: int
    nlist: int = 0


def parse_size(text: str) -> int:
    """'4G', '512M', '100k' or a plain byte count -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", text)
    if not match:
        raise ValueError(f"not a size: {text!r} (try 4G, 512M)")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def nlist_for(count: int) -> int:
    """IVF list count: about 2*sqrt(n), a power of two, with at least ~40 training points per list."""
    target = max(16, 2 * math.isqrt(count))
    nlist = 2 ** round(math.log2(target))
    while nlist > 16 and count < 40 * nlist:
        nlist //= 2
    return nlist


def pq_bytes(dim: int, budget_per_vector: float) -> int:
    """Largest PQ code size (bytes per vector) dividing `dim` that fits the per-vector budget."""
    for m in (128, 96, 64, 48, 32, 24, 16, 8, 4):
        if dim % m == 0 and m <= budget_per_vector:
            return m
    return 4 if dim % 4 == 0 else 1


def choose_index(count: int, dim: int, memory_budget: int) -> IndexChoice:
    """Exact below EXACT_MAX, else HNSW or IVF (fp16 / PQ with refinement) within the budget."""
    flat = count * dim * 4
    if count <= EXACT_MAX and flat <= memory_budget:
        return IndexChoice("Flat", None, flat)
    hnsw = count * (dim * 4 + HNSW_M * 2 * 4 + 16)
    if count <= HNSW_MAX and hnsw <= memory_budget:
        return IndexChoice(f"HNSW{HNSW_M},Flat", "efSearch", hnsw)
    nlist = nlist_for(count)
    centroids = nlist * dim * 4
    ivf_fp16 = count * (dim * 2 + 8) + centroids
    if ivf_fp16 <= memory_budget:
        return IndexChoice(f"IVF{nlist},SQfp16", "nprobe", ivf_fp16, nlist)
    refine = count * dim  # SQ8 copy used to re-rank the PQ candidates
    per_vector = (memory_budget - centroids - refine) / max(count, 1) - 8
    if per_vector >= 8:
        m = pq_bytes(dim, per_vector)
        return IndexChoice(
            f"IVF{nlist},PQ{m},Refine(SQ8)", "nprobe", count * (m + 8) + refine + centroids, nlist
        )
    m = pq_bytes(dim, max((memory_budget - centroids) / max(count, 1) - 8, 4))
    memory = count * (m + 8) + centroids
    if memory > memory_budget:
        raise ValueError(
            f"{count:,} vectors of dim {dim} do not fit in {memory_budget:,} bytes even as IVF-PQ"
        )
    return IndexChoice(f"IVF{nlist},PQ{m}", "nprobe", memory, nlist)
