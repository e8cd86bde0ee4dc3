"""Find the embedding shards of a dataset: openpairs' `clip/` layout or clip-retrieval's layout.

openpairs: `DIR/clip/img_emb/<i>.npy`, `DIR/clip/text_emb/<i>.npy`, `DIR/clip/<i>.parquet` (scores, row
order = embedding order) joined by `key` to `DIR/shards/<i>.parquet` (url, caption, width, height).
clip-retrieval: `DIR/img_emb/*.npy`, `DIR/text_emb/*.npy`, `DIR/metadata/*.parquet`, aligned by row and
paired by the number in the file name (`img_emb_3.npy` goes with `metadata_3.parquet`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

MODALITIES = ("image", "text")


class IndexInputError(ValueError):
    """The input directory has no usable embeddings or its files do not line up."""


@dataclass(frozen=True)
class Shard:
    """One embedding shard: its image/text .npy files and the parquet files describing its rows."""

    number: int
    image: str
    text: str | None
    rows: str
    extra: str | None = None  # openpairs: the download parquet (url, caption, ...) joined by key


@dataclass(frozen=True)
class Sources:
    """All shards of a dataset, in id order, and which layout they came from."""

    root: str
    layout: str
    shards: list[Shard] = field(default_factory=list)

    def npy_files(self, modality: str) -> list[str]:
        """The embedding files of one modality, in id order."""
        if modality == "image":
            return [s.image for s in self.shards]
        files = [s.text for s in self.shards]
        if any(f is None for f in files):
            raise IndexInputError(f"text embeddings missing for some shards under {self.root}")
        return [f for f in files if f is not None]


def _numbered(directory: str, suffix: str) -> dict[int, str]:
    """Files in `directory` ending with `suffix`, keyed by the last number in their name."""
    if not os.path.isdir(directory):
        return {}
    found: dict[int, str] = {}
    for name in os.listdir(directory):
        if not name.endswith(suffix) or ".tmp-" in name:
            continue
        digits = re.findall(r"\d+", name[: -len(suffix)])
        if digits:
            found[int(digits[-1])] = os.path.join(directory, name)
    return found


def discover(root: str) -> Sources:
    """The embedding shards under `root`, whichever of the two layouts it uses."""
    clip_dir = os.path.join(root, "clip")
    if os.path.isdir(os.path.join(clip_dir, "img_emb")):
        images = _numbered(os.path.join(clip_dir, "img_emb"), ".npy")
        texts = _numbered(os.path.join(clip_dir, "text_emb"), ".npy")
        rows = _numbered(clip_dir, ".parquet")
        extras = _numbered(os.path.join(root, "shards"), ".parquet")
        layout = "openpairs"
    elif os.path.isdir(os.path.join(root, "img_emb")):
        images = _numbered(os.path.join(root, "img_emb"), ".npy")
        texts = _numbered(os.path.join(root, "text_emb"), ".npy")
        rows = _numbered(os.path.join(root, "metadata"), ".parquet")
        extras = {}
        layout = "clip-retrieval"
    else:
        raise IndexInputError(f"no embeddings under {root}: expected clip/img_emb/ or img_emb/")
    if not images:
        raise IndexInputError(f"no .npy image embeddings under {root}")
    shards = []
    for number in sorted(images):
        if number not in rows:
            raise IndexInputError(f"embedding shard {images[number]} has no metadata parquet")
        shards.append(Shard(number, images[number], texts.get(number), rows[number], extras.get(number)))
    return Sources(root=root, layout=layout, shards=shards)


def open_embeddings(path: str) -> np.ndarray:
    """A read-only memory map of one .npy embedding file (2-D)."""
    # a plain ndarray view of the memory map: np.memmap's own indexing is ~10x slower per call
    array = np.asarray(np.load(path, mmap_mode="r"))
    if array.ndim != 2:
        raise IndexInputError(f"{path}: expected a 2-D array, got shape {array.shape}")
    return array


class EmbeddingStore:
    """The embeddings of one modality as one id space over memory-mapped shard files."""

    def __init__(self, files: list[str]) -> None:
        self.arrays = [open_embeddings(f) for f in files]
        dims = {a.shape[1] for a in self.arrays}
        if len(dims) != 1:
            raise IndexInputError(f"embedding files disagree on the dimension: {sorted(dims)}")
        self.dim = dims.pop()
        self.offsets = np.cumsum([0] + [a.shape[0] for a in self.arrays])
        self.count = int(self.offsets[-1])

    def chunks(self, size: int = 65536) -> list[tuple[int, int]]:
        """(start, stop) id ranges of at most `size` rows covering all ids."""
        return [(s, min(s + size, self.count)) for s in range(0, self.count, size)]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Ids start..stop-1 as a contiguous float32 array."""
        parts = []
        for array, offset in zip(self.arrays, self.offsets[:-1], strict=True):
            lo, hi = max(start - offset, 0), min(stop - offset, array.shape[0])
            if lo < hi:
                parts.append(np.asarray(array[lo:hi], dtype=np.float32))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts))

    def take(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of arbitrary ids, as float32."""
        ids = np.asarray(ids, dtype=np.int64)
        shard = np.searchsorted(self.offsets, ids, side="right") - 1
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for s in np.unique(shard):
            positions = np.nonzero(shard == s)[0]
            local = ids[positions] - self.offsets[s]
            order = np.argsort(local)  # sorted reads from the memory map
            out[positions[order]] = self.arrays[s][local[order]]
        return out
