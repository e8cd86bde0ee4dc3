"""The all-pairs reference for image dedup: groups by embedding cosine (>= threshold), quadratic in rows.

A group is a connected component of the graph "cosine >= threshold"; its id is the key of its first
member (row order). The pipeline uses stages/image_dedup.py (linear time); tests and benchmarks check
its groups against this one where all pairs can be compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK = 2048


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = int(parent[root])
    while parent[i] != root:
        parent[i], i = root, int(parent[i])
    return root


def _union(parent: np.ndarray, a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)  # the smaller index stays root: the first member


def component_roots(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """For each row, the index of the first row of its near-duplicate component."""
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    parent = np.arange(n, dtype=np.int64)
    for start in range(0, n, BLOCK):
        sims = x[start : start + BLOCK] @ x[start:].T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = start + r, start + c
            if a < b:
                _union(parent, a, b)
    return np.array([_find(parent, i) for i in range(n)], dtype=np.int64)


def dup_groups(
    keys: Sequence[str], embeddings: np.ndarray, has_image: np.ndarray, threshold: float
) -> list[str | None]:
    """dup_group per row: the key of its group's first member (itself when unique); None without an image."""
    index = np.flatnonzero(has_image)
    roots = component_roots(embeddings[index], threshold) if len(index) else np.zeros(0, dtype=np.int64)
    groups: list[str | None] = [None] * len(keys)
    for position, root in zip(index.tolist(), roots.tolist(), strict=True):
        groups[position] = keys[index[root]]
    return groups
