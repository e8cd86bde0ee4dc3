"""Find the embedding shards of a dataset: openpairs' `clip/` layout or clip-retrieval's layout.

openpairs: `DIR/clip/img_emb/<i>.npy`, `DIR/clip/text_emb/<i>.npy`, `DIR/clip/<i>.parquet` (scores, row
order = embedding order) joined by `key` to `DIR/shards/<i>.parquet` (url, caption, width, height).
clip-retrieval: `DIR/img_emb/*.npy`, `DIR/text_emb/*.npy`, `DIR/metadata/*.parquet`, aligned by row and
paired by the number in the file name (`img_emb_3.npy` goes with `metadata_3.parquet`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from openpairs.io import fs

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
    found: dict[int, str] = {}
    for path in fs.list_files(directory, suffix):
        name = path.rsplit("/", 1)[-1]
        digits = re.findall(r"\d+", name[: -len(suffix)])
        if digits and ".tmp-" not in name:
            found[int(digits[-1])] = path
    return found


def discover(root: str) -> Sources:
    """The embedding shards under `root` (a local path or an fsspec URL such as s3://), either layout."""
    root = root.rstrip("/") if "://" in root else root
    clip_dir = fs.join(root, "clip")
    if images := _numbered(fs.join(clip_dir, "img_emb"), ".npy"):
        texts = _numbered(fs.join(clip_dir, "text_emb"), ".npy")
        rows = _numbered(clip_dir, ".parquet")
        extras = _numbered(fs.join(root, "shards"), ".parquet")
        layout = "openpairs"
    elif images := _numbered(fs.join(root, "img_emb"), ".npy"):
        texts = _numbered(fs.join(root, "text_emb"), ".npy")
        rows = _numbered(fs.join(root, "metadata"), ".parquet")
        extras = {}
        layout = "clip-retrieval"
    else:
        raise IndexInputError(f"no embeddings under {root}: expected .npy files in clip/img_emb/ or img_emb/")
    shards = []
    for number in sorted(images):
        if number not in rows:
            raise IndexInputError(f"embedding shard {images[number]} has no metadata parquet")
        shards.append(Shard(number, images[number], texts.get(number), rows[number], extras.get(number)))
    return Sources(root=root, layout=layout, shards=shards)


def is_local(path: str) -> bool:
    """True for a plain local path (memory-mapped), False for an fsspec URL such as s3://."""
    return "://" not in path or path.startswith("file://")


def open_embeddings(path: str) -> np.ndarray | RemoteNpy:
    """One 2-D .npy embedding file: memory-mapped when local, read by byte ranges when remote."""
    if is_local(path):
        # a plain ndarray view of the memory map: np.memmap's own indexing is ~10x slower per call
        array: np.ndarray | RemoteNpy = np.asarray(np.load(path.removeprefix("file://"), mmap_mode="r"))
    else:
        array = RemoteNpy(path)
    if len(array.shape) != 2:
        raise IndexInputError(f"{path}: expected a 2-D array, got shape {array.shape}")
    return array


class RemoteNpy:
    """A .npy file on object storage, read by byte ranges (rows or sorted row ids), never whole."""

    def __init__(self, path: str) -> None:
        self.fs, self.path = fs.filesystem(path)
        with self.fs.open(self.path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            self.header = handle.tell()
        if fortran:
            raise IndexInputError(f"{path}: Fortran-ordered arrays are not supported")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        """Rows `lo:hi` (a slice) or the rows of sorted ids (one request per contiguous run)."""
        if isinstance(rows, slice):
            lo, hi, _ = rows.indices(self.shape[0])
            runs = [(lo, max(lo, hi))]
        else:
            ids = np.asarray(rows, dtype=np.int64)
            breaks = np.nonzero(np.diff(ids) != 1)[0] + 1
            runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(ids, breaks) if len(r)]
        starts = [self.header + lo * self.row_bytes for lo, _ in runs]
        stops = [self.header + hi * self.row_bytes for _, hi in runs]
        blobs = self.fs.cat_ranges([self.path] * len(runs), starts, stops) if runs else []
        data = b"".join(blobs)
        return np.frombuffer(data, dtype=self.dtype).reshape(-1, *self.shape[1:])


class EmbeddingStore:
    """The embeddings of one modality as one id space over memory-mapped shard files."""

    def __init__(self, files: list[str]) -> None:
        self.files = list(files)
        self.arrays = [open_embeddings(f) for f in files]
        dims = {a.shape[1] for a in self.arrays}
        if len(dims) != 1:
            raise IndexInputError(f"embedding files disagree on the dimension: {sorted(dims)}")
        self.dim = dims.pop()
        self.offsets = np.cumsum([0] + [a.shape[0] for a in self.arrays])
        self.count = int(self.offsets[-1])

    def chunks(self, size: int = 65536, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """(start, stop) id ranges of at most `size` rows covering ids start..stop-1 (default: all)."""
        end = self.count if stop is None else stop
        return [(s, min(s + size, end)) for s in range(start, end, size)]

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
