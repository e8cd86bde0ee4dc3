"""Near-duplicate pairs inside one leaf of the k-means tree, and connected components of a pair list.

Cosines are screened in float32 (BLAS, any summation order); a pair whose float32 cosine lies within
`RECHECK` of the threshold is decided again in float64 from the float16 values, one pair at a time, so an
edge does not depend on the hardware's summation order (the float16 products are exact in float64).
Pairs are folded into a spanning forest block by block, so memory stays linear in the leaf's rows even
when thousands of them are copies of one image. A leaf larger than `max_rows` is split by a k-means tree
of its own (with the same boundary visits, uncapped, so no pair is lost), up to `MAX_DEPTH` times; a leaf
that will not split usefully (one dense blob) is compared whole and counted.
"""

from __future__ import annotations

import numpy as np

from openpairs.stages import image_dedup_tree as tree

BLOCK = 1024
RECHECK = 1e-3
MAX_DEPTH = 3
SPLIT_BRANCHING = 8
SHRINK = 0.75  # a split must leave every sub-leaf at most this share of the leaf's rows...
SPREAD = 3.0  # ...and all sub-leaves together (visits included) at most this many times its rows


def components(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each node 0..nodes-1, the smallest node of its connected component under edges (a, b)."""
    label = np.arange(nodes, dtype=np.int64)
    if len(a) == 0:
        return label
    while True:
        low = np.minimum(label[a], label[b])
        moved = label.copy()
        np.minimum.at(moved, a, low)
        np.minimum.at(moved, b, low)
        while not np.array_equal(jumped := moved[moved], moved):
            moved = jumped
        if np.array_equal(moved, label):
            return label
        label = moved


def forest(nodes: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (node, smallest node of its component) for every node of a component with two or more."""
    label = components(nodes, a, b)
    linked = np.flatnonzero(label != np.arange(nodes))
    return linked, label[linked]


def is_duplicate(x16: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float) -> np.ndarray:
    """Whether the cosine of rows i and j of the float16 embeddings is at least `threshold`, in float64."""
    return np.einsum("nd,nd->n", x16[i].astype(np.float64), x16[j].astype(np.float64)) >= threshold


def pairs_within(
    x16: np.ndarray, home: np.ndarray, threshold: float, max_rows: int, depth: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Forest edges over the rows of one leaf joining every pair (home row, any row) whose cosine is at
    least `threshold`; also the number of rows compared whole although over `max_rows`."""
    n = len(x16)
    if n > max_rows and depth < MAX_DEPTH:
        split = _split(x16, home, threshold, max_rows, depth)
        if split is not None:
            return split
    a, b = _screen(x16, home, threshold)
    linked, root = forest(n, a, b)
    return linked, root, n if n > max_rows else 0


def _screen(x16: np.ndarray, home: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Forest edges over all (home, any) pairs at or above the threshold, one block of home rows at a time."""
    n, x = len(x16), x16.astype(np.float32)
    a, b = np.zeros(0, np.int64), np.zeros(0, np.int64)
    homes = np.flatnonzero(home)
    for start in range(0, len(homes), BLOCK):
        rows = homes[start : start + BLOCK]
        sims = x[rows] @ x.T
        sims[np.arange(len(rows)), rows] = -2.0  # a row is no duplicate of itself
        hits = sims >= threshold - RECHECK
        some = np.flatnonzero(hits.any(axis=1))
        r, c = np.nonzero(hits[some])
        r = some[r]
        i, j = rows[r], c.astype(np.int64)
        close = np.abs(sims[r, c] - threshold) < RECHECK
        keep = ~close | is_duplicate(x16, i, j, threshold)
        a, b = forest(n, np.concatenate([a, i[keep]]), np.concatenate([b, j[keep]]))
    return a, b


def _split(
    x16: np.ndarray, home: np.ndarray, threshold: float, max_rows: int, depth: int
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Split an oversized leaf with its own tree and combine its sub-leaves' forests; None if it cannot
    be split usefully (its rows are one point or one dense blob)."""
    x = x16.astype(np.float32)
    sub = tree.build_tree(x, max(1, max_rows // 2), SPLIT_BRANCHING, seed=depth)
    if sub.leaves < 2:
        return None
    placed = tree.assign(sub, x, tree.margin_for(threshold), sub.leaves)
    sizes = np.bincount(placed.leaf)
    if sizes.max() > SHRINK * len(x16) or len(placed.row) > SPREAD * len(x16):
        return None  # a dense blob: splitting would not make the comparisons fewer
    starts = np.flatnonzero(np.concatenate([[True], placed.leaf[1:] != placed.leaf[:-1]]))
    a, b, whole = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    for rows, sub_home in zip(
        np.split(placed.row, starts[1:]), np.split(placed.home, starts[1:]), strict=True
    ):
        linked, root, oversized = pairs_within(x16[rows], sub_home, threshold, max_rows, depth + 1)
        a.append(rows[linked])
        b.append(rows[root])
        whole += oversized
    linked, root = forest(len(x16), np.concatenate(a), np.concatenate(b))
    return linked, root, whole
