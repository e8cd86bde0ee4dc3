"""A k-means tree over image embeddings, and the assignment of each embedding to the leaves it must visit.

The tree is built from a sample by recursive, seeded k-means (`branching` children per node, a fixed
number of Lloyd iterations, float32), so the same sample gives the same tree on the same hardware. An
embedding's home leaf is found by descending to the nearest child at each level: `branching` distances per
level, log(leaves) levels, so the cost per embedding barely grows with the number of leaves.

Near-duplicates on both sides of a boundary are not lost: at each node an embedding also visits every
child whose bisector (with its nearest child) lies within `margin` of it. Two embeddings closer than
`margin` are then always together in the home leaf of one of them (a point y in child j is on j's side of
the bisector, x on the other side, so the bisector is within |x - y| of x). At most `max_leaves` leaves
are visited per embedding (home first, then by distance to the bisector); `capped` counts the rows cut.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

LLOYD_ITERATIONS = 8
NORM_SLACK = 2e-3  # float16 embeddings are unit vectors up to this much


def margin_for(threshold: float) -> float:
    """The largest distance between two (near-unit) embeddings whose cosine is at least `threshold`."""
    return math.sqrt(max(0.0, 2.0 * (1.0 + NORM_SLACK) ** 2 - 2.0 * threshold))


def kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Centroids of `k` clusters (Lloyd, seeded init on distinct points); an empty cluster keeps its centroid."""
    x = np.asarray(points, dtype=np.float32)
    candidates = np.random.default_rng(seed).permutation(len(x))[: 8 * k]
    _, first = np.unique(x[candidates], axis=0, return_index=True)
    centroids = x[candidates[np.sort(first)[:k]]].copy()
    k = len(centroids)
    for _ in range(LLOYD_ITERATIONS):
        labels = nearest(x, centroids)
        for cluster in np.unique(labels):
            centroids[cluster] = x[labels == cluster].mean(axis=0)
    return centroids


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each row (Euclidean)."""
    return np.argmin(_distances(x, centroids), axis=1)


def _distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared distances up to a per-row constant: |c|^2 - 2 x.c."""
    return np.sum(centroids * centroids, axis=1)[None, :] - 2.0 * (x @ centroids.T)


@dataclass(frozen=True)
class Tree:
    """Nodes in breadth-first order; node n's children are first_child[n] .. + child_count[n] (0: a leaf)."""

    centroids: np.ndarray  # (nodes, dim) float32
    first_child: np.ndarray  # (nodes,) int64
    child_count: np.ndarray  # (nodes,) int64
    leaf_of_node: np.ndarray  # (nodes,) int64: leaf number, or -1 for an inner node
    leaf_weight: np.ndarray  # (leaves,) int64: sample points in each leaf

    @property
    def leaves(self) -> int:
        """Number of leaves."""
        return len(self.leaf_weight)

    def to_bytes(self) -> bytes:
        """The tree as an .npz file's bytes."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in self.__dataclass_fields__})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Tree:
        """The tree `to_bytes` wrote."""
        with np.load(io.BytesIO(data)) as arrays:
            return cls(**{name: arrays[name] for name in cls.__dataclass_fields__})


def build_tree(sample: np.ndarray, leaf_points: int, branching: int, seed: int) -> Tree:
    """Split the sample recursively until a node holds at most `leaf_points` of it (or cannot split)."""
    x = np.asarray(sample, dtype=np.float32)
    centroids = [x.mean(axis=0) if len(x) else np.zeros(x.shape[1], np.float32)]
    members = [np.arange(len(x))]
    first_child, child_count = [0], [0]
    node = 0
    while node < len(members):
        rows = members[node]
        if len(rows) > leaf_points:
            k = min(branching, math.ceil(len(rows) / leaf_points))
            children = kmeans(x[rows], k, seed + node)
            labels = nearest(x[rows], children)
            kept = [c for c in range(len(children)) if np.any(labels == c)]
            if len(kept) > 1:
                first_child[node], child_count[node] = len(members), len(kept)
                for c in kept:
                    centroids.append(children[c])
                    members.append(rows[labels == c])
                    first_child.append(0)
                    child_count.append(0)
        node += 1
    counts = np.array(child_count, dtype=np.int64)
    leaf_of_node = np.where(counts == 0, np.cumsum(counts == 0) - 1, -1)
    weights = [len(m) for m, c in zip(members, child_count, strict=True) if c == 0]
    return Tree(
        np.array(centroids, dtype=np.float32),
        np.array(first_child, dtype=np.int64),
        counts,
        leaf_of_node.astype(np.int64),
        np.array(weights, dtype=np.int64),
    )


@dataclass
class Assignment:
    """(row, leaf, home) triples, sorted by leaf then row; `capped` rows lost visits to `max_leaves`."""

    row: np.ndarray
    leaf: np.ndarray
    home: np.ndarray
    capped: int


def assign(tree: Tree, emb: np.ndarray, margin: float, max_leaves: int) -> Assignment:
    """The home leaf of every row of `emb` and the leaves it visits (see the module docstring)."""
    x = np.asarray(emb, dtype=np.float32)
    row = np.arange(len(x), dtype=np.int64)
    node = np.zeros(len(x), dtype=np.int64)
    home = np.ones(len(x), dtype=bool)
    score = np.zeros(len(x), dtype=np.float32)
    capped = np.zeros(len(x), dtype=bool)
    squared = np.sum(tree.centroids * tree.centroids, axis=1)
    while np.any(inner := tree.child_count[node] > 0):
        pending = np.flatnonzero(inner)
        pending = pending[np.argsort(node[pending], kind="stable")]
        level = _Level(row[pending], node[pending], home[pending], score[pending])
        deeper = _descend(tree, squared, x, level, (margin, max_leaves), capped)
        done = [row[~inner], node[~inner], home[~inner], score[~inner]]
        row, node, home, score = (np.concatenate([a, b]) for a, b in zip(done, deeper, strict=True))
        keep = _cap(row, home, score, max_leaves)
        capped[row[~keep]] = True
        row, node, home, score = row[keep], node[keep], home[keep], score[keep]
    leaf = tree.leaf_of_node[node]
    order = np.lexsort((row, leaf))
    return Assignment(row[order], leaf[order], home[order], int(capped.sum()))


@dataclass(frozen=True)
class _Level:
    """The (row, inner node) visits of one level of the descent, sorted by node."""

    row: np.ndarray
    node: np.ndarray
    home: np.ndarray
    score: np.ndarray


def _descend(
    tree: Tree,
    squared: np.ndarray,
    x: np.ndarray,
    level: _Level,
    reach: tuple[float, int],
    capped: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The children each visit goes on to: the nearest, and those within the margin (the `max_leaves` - 1
    nearest of them at most; rows that lose some are marked in `capped`). One matrix product per parent,
    everything else at once over the level, so the cost per row does not grow with the number of nodes."""
    margin, max_leaves = reach
    dist, apart, slot = _child_distances(tree, squared, x, level)
    at = np.arange(len(level.row))
    best = np.argmin(dist, axis=1)
    width = 2.0 * apart[slot, best]
    to_bisector = (dist - dist[at, best][:, None]) / np.maximum(width, 1e-12)  # padding: inf
    to_bisector[at, best] = -1.0  # the nearest child first
    capped[level.row[np.sum(to_bisector <= margin, axis=1) > max_leaves]] = True
    if to_bisector.shape[1] > max_leaves:  # no row can keep more: drop the rest before they multiply
        beyond = np.argpartition(to_bisector, max_leaves - 1, axis=1)[:, max_leaves:]
        np.put_along_axis(to_bisector, beyond, np.inf, axis=1)
    r, c = np.nonzero(to_bisector <= margin)
    child_home = level.home[r] & (c == best[r])
    child_score = np.maximum(level.score[r], np.maximum(to_bisector[r, c], 0.0)).astype(np.float32)
    return level.row[r], tree.first_child[level.node[r]] + c.astype(np.int64), child_home, child_score


def _child_distances(
    tree: Tree, squared: np.ndarray, x: np.ndarray, level: _Level
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared distances (up to a per-row constant) from each visit to its node's children, padded with
    inf to the widest node; the distances between each node's children; each visit's node's slot in it."""
    parents, starts = np.unique(level.node, return_index=True)
    width = int(tree.child_count[parents].max())
    dist = np.full((len(level.row), width), np.inf, dtype=np.float32)
    apart = np.zeros((len(parents), width, width), dtype=np.float32)
    bounds = [*starts.tolist(), len(level.row)]
    for slot, parent in enumerate(parents.tolist()):
        first, count = int(tree.first_child[parent]), int(tree.child_count[parent])
        children, norms = tree.centroids[first : first + count], squared[first : first + count]
        rows = level.row[bounds[slot] : bounds[slot + 1]]
        dist[bounds[slot] : bounds[slot + 1], :count] = norms[None, :] - 2.0 * (x[rows] @ children.T)
        gram = norms[:, None] + norms[None, :] - 2.0 * children @ children.T
        apart[slot, :count, :count] = np.sqrt(np.maximum(gram, 0.0))
    return dist, apart, np.repeat(np.arange(len(parents)), np.diff(bounds))


def _cap(row: np.ndarray, home: np.ndarray, score: np.ndarray, max_leaves: int) -> np.ndarray:
    """Mask keeping, per row, its home path and then its nearest visits, `max_leaves` in all (only the
    rows with more visits are sorted)."""
    keep = np.ones(len(row), dtype=bool)
    over = np.flatnonzero(np.bincount(row)[row] > max_leaves)
    if not len(over):
        return keep
    order = over[np.lexsort((score[over], ~home[over], row[over]))]
    sorted_rows = row[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_rows[1:] != sorted_rows[:-1]]))
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    keep[order[rank >= max_leaves]] = False
    return keep
