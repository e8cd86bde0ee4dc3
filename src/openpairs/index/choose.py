"""Pick a faiss index from the vector count, the dimension and a memory budget, counting every byte."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

EXACT_MAX = 20_000  # up to this, exact search takes ~1-2 ms on one core and needs no tuning
HNSW_MAX = 200_000  # HNSW builds slowly; above this, IVF builds far faster on a few cores
HNSW_M = 32
ID_BYTES = 8  # one int64 id per vector: in an IVF list, or in the IDMap wrapper's id table
LIST_BYTES = 48  # per IVF list in RAM: two std::vector headers (codes, ids)
PQ_CENTROIDS = 256  # 8-bit PQ: 256 centroids per sub-quantizer, dim floats per code book in all


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


def ids_in_lists(factory: str) -> bool:
    """True when the index keeps ids itself (a plain IVF index); else it is wrapped in an id map."""
    return "IVF" in factory and "Refine" not in factory and not factory.startswith("IDMap")


def with_ids(factory: str) -> str:
    """The factory string actually built: an id map added where the index cannot store ids itself.

    IDMap2 for exact and HNSW indexes: it can also reconstruct a vector by id, which clip-retrieval's back end
    does for every result. Its id -> position map is built in RAM at load and is not in the estimates
    (which match the file): ~30 bytes a vector, under 8 MB at HNSW_MAX vectors. A refined IVF-PQ index, the
    kind for the largest counts, keeps the lighter IDMap.
    """
    if ids_in_lists(factory) or factory.startswith("IDMap"):
        return factory
    return f"IDMap,{factory}" if "IVF" in factory else f"IDMap2,{factory}"


def ivf_fixed(nlist: int, dim: int) -> int:
    """Bytes of an IVF index that do not grow with the vectors: coarse centroids and list headers."""
    return nlist * (dim * 4 + LIST_BYTES)


def memory_of(factory: str, count: int, dim: int) -> int:
    """Bytes of a `factory` index holding `count` vectors of `dim` (ids, list headers, centroids, code books
    and the refine copy included); 0 for a layout not counted here (OPQ, an HNSW coarse quantizer...)."""
    if factory == "Flat":
        return count * (dim * 4 + ID_BYTES)
    if hnsw := re.fullmatch(r"HNSW(\d+),Flat", factory):
        m = int(hnsw.group(1))  # level 0 holds 2M int32 links, upper levels ~M/(M-1); levels, offsets
        return count * (dim * 4 + (2 * m + m // (m - 1) + 2) * 4 + 8 + ID_BYTES)
    ivf = re.fullmatch(r"IVF(\d+),(Flat|SQfp16|SQ8|PQ(\d+)(,Refine\(SQ8\))?)", factory)
    if not ivf:
        return 0
    fixed, codes, ranges = ivf_fixed(int(ivf.group(1)), dim), ivf.group(2), 2 * dim * 4  # SQ8: min, range
    if codes == "Flat":
        return count * (dim * 4 + ID_BYTES) + fixed
    if codes == "SQfp16":
        return count * (dim * 2 + ID_BYTES) + fixed
    if codes == "SQ8":
        return count * (dim + ID_BYTES) + fixed + ranges
    m, codebooks = int(ivf.group(3)), PQ_CENTROIDS * dim * 4
    if ivf.group(4):  # IVF list ids + IDMap ids + an SQ8 copy to re-rank
        return count * (m + dim + 2 * ID_BYTES) + fixed + codebooks + ranges
    return count * (m + ID_BYTES) + fixed + codebooks


def choose_index(count: int, dim: int, memory_budget: int) -> IndexChoice:
    """Exact below EXACT_MAX, else HNSW or IVF (fp16 / PQ with refinement) within the budget."""
    flat = memory_of("Flat", count, dim)
    if count <= EXACT_MAX and flat <= memory_budget:
        return IndexChoice("Flat", None, flat)
    hnsw = memory_of(f"HNSW{HNSW_M},Flat", count, dim)
    if count <= HNSW_MAX and hnsw <= memory_budget:
        return IndexChoice(f"HNSW{HNSW_M},Flat", "efSearch", hnsw)
    nlist = nlist_for(count)
    fixed = ivf_fixed(nlist, dim)
    ivf_fp16 = memory_of(f"IVF{nlist},SQfp16", count, dim)
    if ivf_fp16 <= memory_budget:
        return IndexChoice(f"IVF{nlist},SQfp16", "nprobe", ivf_fp16, nlist)
    refined_fixed = fixed + PQ_CENTROIDS * dim * 4 + 2 * dim * 4
    per_vector = (memory_budget - refined_fixed) / max(count, 1) - dim - 2 * ID_BYTES
    if per_vector >= 8:
        factory = f"IVF{nlist},PQ{pq_bytes(dim, per_vector)},Refine(SQ8)"
        return IndexChoice(factory, "nprobe", memory_of(factory, count, dim), nlist)
    codebooks = PQ_CENTROIDS * dim * 4
    m = pq_bytes(dim, max((memory_budget - fixed - codebooks) / max(count, 1) - ID_BYTES, 4))
    memory = memory_of(f"IVF{nlist},PQ{m}", count, dim)
    if memory > memory_budget:
        raise ValueError(
            f"{count:,} vectors of dim {dim} do not fit in {memory_budget:,} bytes: they need {memory:,} "
            f"even as IVF-PQ{m}; raise --memory-budget"
        )
    return IndexChoice(f"IVF{nlist},PQ{m}", "nprobe", memory, nlist)
