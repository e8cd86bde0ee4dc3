"""Near-neighbour lookup of PDQ hashes within a Hamming radius, without scanning the whole list.

A multi-index on 16-bit chunks: a 256-bit hash is cut into 16 chunks of 16 bits. Two hashes within distance
t differ in some chunk by at most t // 16 bits (pigeonhole), so a query probes, in each chunk, every value
within that many bits of its own chunk (17 values per chunk at the default t = 31), gathers the entries that
share a probed value, and checks their full distance. Each chunk is a sorted numpy array searched with
binary search: about 130 bytes per hash in all, and no Python object per entry.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

CHUNKS = 16
CHUNK_BITS = 16
MAX_THRESHOLD = 63  # past this the probe sets grow fast and PDQ stops telling images apart


def _probe_masks(radius: int) -> np.ndarray:
    masks = [0]
    for bits in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in combinations(range(CHUNK_BITS), bits)]
    return np.asarray(masks, dtype=np.uint16)


class PdqIndex:
    """PDQ hashes (with a payload int each, e.g. the list they came from), searchable within `threshold`."""

    def __init__(self, hashes: bytes, payloads: list[int], threshold: int) -> None:
        if not 0 <= threshold <= MAX_THRESHOLD:
            raise ValueError(f"the PDQ threshold must be between 0 and {MAX_THRESHOLD} bits, not {threshold}")
        self.threshold = threshold
        self.payloads = np.asarray(payloads, dtype=np.int32)
        self.words = np.frombuffer(hashes, dtype=">u8").reshape(-1, 4).astype(np.uint64)
        chunks = np.frombuffer(hashes, dtype=">u2").reshape(-1, CHUNKS).astype(np.uint16)
        self.order = np.argsort(chunks, axis=0, kind="stable").astype(np.int32)
        self.sorted = np.take_along_axis(chunks, self.order, axis=0)
        self.masks = _probe_masks(threshold // CHUNKS)

    def __len__(self) -> int:
        return len(self.payloads)

    def nearest(self, value: bytes) -> tuple[int, int] | None:
        """(entry index, distance) of the closest entry within the threshold (lowest index on a tie)."""
        if not len(self):
            return None
        candidates = self._candidates(np.frombuffer(value, dtype=">u2").astype(np.uint16))
        if not candidates.size:
            return None
        query = np.frombuffer(value, dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(self.words[candidates] ^ query).sum(axis=1)
        best = int(np.lexsort((candidates, distances))[0])
        if int(distances[best]) > self.threshold:
            return None
        return int(candidates[best]), int(distances[best])

    def _candidates(self, chunks: np.ndarray) -> np.ndarray:
        found: list[np.ndarray] = []
        for chunk in range(CHUNKS):
            probes = chunks[chunk] ^ self.masks
            column = self.sorted[:, chunk]
            low = np.searchsorted(column, probes, side="left")
            high = np.searchsorted(column, probes, side="right")
            hit = high > low
            if hit.any():
                found.append(self.order[_ranges(low[hit], high[hit]), chunk])
        return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int32)


def _ranges(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """All positions low[i] <= p < high[i], concatenated."""
    lengths = high - low
    starts = np.repeat(low - np.cumsum(np.concatenate(([0], lengths[:-1]))), lengths)
    return starts + np.arange(int(lengths.sum()))
