"""Near-duplicate image groups by embedding cosine (>= threshold), within a shard and across the dataset.

A group is a connected component of the graph "cosine >= threshold"; its id is the key of its first
member (row order, then shard order), so the first member of each group is the one a filter keeps.
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


def global_dup_groups(out: str, threshold: float) -> int:
    """Dataset-wide groups over all clip shards -> clip/dup_groups.parquet (key, dup_group); returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from openpairs.io import commit
    from openpairs.io import fs as ofs

    clip_dir = ofs.join(out, "clip")
    keys: list[str] = []
    parts: list[np.ndarray] = []
    for path in ofs.list_files(clip_dir, ".parquet"):
        name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        if not name.isdigit():
            continue
        with ofs.open_file(path, "rb") as handle:
            table = pq.read_table(handle, columns=["key", "dup_group"])
        with ofs.open_file(ofs.join(clip_dir, "img_emb", f"{name}.npy"), "rb") as handle:
            emb = np.load(handle)
        has = np.array([g is not None for g in table.column("dup_group").to_pylist()], dtype=bool)
        keys.extend(str(k) for k, h in zip(table.column("key").to_pylist(), has, strict=True) if h)
        parts.append(emb[has].astype(np.float32))
    emb_all = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
    groups = dup_groups(keys, emb_all, np.ones(len(keys), dtype=bool), threshold)
    table = pa.table({"key": pa.array(keys, pa.string()), "dup_group": pa.array(groups, pa.string())})
    commit.write_parquet_atomic(table, ofs.join(clip_dir, "dup_groups.parquet"))
    return len(keys)
