"""Near-neighbour lookup of PDQ hashes within a Hamming radius, without scanning the whole list.

A multi-index on 16-bit chunks: a 256-bit hash is cut into 16 chunks of 16 bits. Two hashes within distance
t differ in some chunk by at most t // 16 bits (pigeonhole), so a query probes, in each chunk, every value
within that many bits of its own chunk (17 values per chunk at the default t = 31), gathers the entries that
share a probed value, and checks their full distance. Per chunk, the entries are kept ordered by the chunk's
value with a table of where each of the 65,536 values starts, so every probe of every chunk is one array
lookup, all done in a few vectorised numpy calls: 100 bytes per hash (32 for the hash, 64 for the orders, 4
for its list), 8 MB of tables, and no Python object per entry.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

CHUNKS = 16
CHUNK_BITS = 16
VALUES = 1 << CHUNK_BITS
MAX_THRESHOLD = 63  # past this the probe sets grow fast and PDQ stops telling images apart


def _probe_masks(radius: int) -> np.ndarray:
    masks = [0]
    for bits in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in combinations(range(CHUNK_BITS), bits)]
    return np.asarray(masks, dtype=np.int64)


class PdqIndex:
    """PDQ hashes (with a payload int each, e.g. the list they came from), searchable within `threshold`."""

    def __init__(self, hashes: bytes, payloads: list[int], threshold: int) -> None:
        if not 0 <= threshold <= MAX_THRESHOLD:
            raise ValueError(f"the PDQ threshold must be between 0 and {MAX_THRESHOLD} bits, not {threshold}")
        self.threshold = threshold
        self.payloads = np.asarray(payloads, dtype=np.int32)
        self.words = np.frombuffer(hashes, dtype=">u8").reshape(-1, 4).astype(np.uint64)
        chunks = np.frombuffer(hashes, dtype=">u2").reshape(-1, CHUNKS).astype(np.int64)
        count = len(self.payloads)
        # per chunk, the entries ordered by that chunk's value, and where each of the 65,536 values starts:
        # the entries sharing value v in chunk c are order[c*count + offsets[c, v] : c*count + offsets[c, v+1]]
        self.order = np.argsort(chunks, axis=0, kind="stable").T.astype(np.int32).ravel()
        self.offsets = np.zeros((CHUNKS, VALUES + 1), dtype=np.int64)
        for chunk in range(CHUNKS):
            counts = np.bincount(chunks[:, chunk], minlength=VALUES)
            self.offsets[chunk, 1:] = np.cumsum(counts) + chunk * count
        self.masks = _probe_masks(threshold // CHUNKS)

    def __len__(self) -> int:
        return len(self.payloads)

    def nearest(self, value: bytes) -> tuple[int, int] | None:
        """(entry index, distance) of the closest entry within the threshold (lowest index on a tie)."""
        if not len(self):
            return None
        chunks = np.frombuffer(value, dtype=">u2").astype(np.int64)
        probes = chunks[:, None] ^ self.masks[None, :]  # (chunk, probe): every value within reach
        rows = np.arange(CHUNKS)[:, None]
        low, high = self.offsets[rows, probes].ravel(), self.offsets[rows, probes + 1].ravel()
        hit = high > low
        if not hit.any():
            return None
        candidates = self.order[_ranges(low[hit], high[hit])]  # an entry may come twice: harmless
        query = np.frombuffer(value, dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(self.words[candidates] ^ query).sum(axis=1)
        best = int(np.lexsort((candidates, distances))[0])
        if int(distances[best]) > self.threshold:
            return None
        return int(candidates[best]), int(distances[best])


def _ranges(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """All positions low[i] <= p < high[i], concatenated."""
    lengths = high - low
    starts = np.repeat(low - np.cumsum(np.concatenate(([0], lengths[:-1]))), lengths)
    return starts + np.arange(int(lengths.sum()))
