"""Webdataset export: new, evenly sized tar shards holding only the kept samples.

Each output shard `<n>.tar` has `<key>.<jpg|webp|png>`, `<key>.txt` (caption) and `<key>.json` (the
metadata row) per sample; `<n>.parquet` has the same rows in the same order, and `img_emb/<n>.npy` +
`text_emb/<n>.npy` the embeddings row by row. Tar headers are fixed (mtime 0, uid 0) so bytes repeat.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from typing import IO, Any

import numpy as np
import pyarrow as pa

from openpairs.core import crashpoints
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import export_join as join
from openpairs.stages.export_join import ExportInputError, ShardView


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Append member `name` holding `data`, with fixed headers (mtime 0, uid 0) so the bytes repeat."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class _PartWriter:
    """Fills output shards of `size` samples one after the other, from shard number `index` on."""

    def __init__(
        self, directory: str, size: int, index: int = 0, name_of: Callable[[int], str] = commit.shard_name
    ) -> None:
        self.directory = directory
        self.size = size
        self.index = index
        self.name_of = name_of
        self.written: list[str] = []
        self.total = 0
        self._stack: ExitStack | None = None
        self._tar: tarfile.TarFile | None = None
        self._rows: list[dict[str, Any]] = []
        self._img: list[np.ndarray] = []
        self._txt: list[np.ndarray] = []

    def _open(self) -> tarfile.TarFile:
        self._stack = ExitStack()
        path = ofs.join(self.directory, f"{self.name_of(self.index)}.tar")
        handle: IO[bytes] = self._stack.enter_context(commit.atomic_open(path))
        self._tar = self._stack.enter_context(
            tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115
        )
        self.written.append(path)
        return self._tar

    def add(
        self, row: dict[str, Any], image: tuple[str, bytes], img: np.ndarray | None, txt: np.ndarray | None
    ) -> None:
        """Append one sample to the current shard, closing it when full."""
        tar = self._tar or self._open()
        key = str(row["key"])
        ext, data = image
        add_member(tar, f"{key}.{ext}", data)
        add_member(tar, f"{key}.txt", str(row["caption"]).encode("utf-8"))
        add_member(tar, f"{key}.json", join.row_json(row))
        self._rows.append(row)
        if len(self._rows) == self.size // 2:
            crashpoints.reached("export.part", self.index)  # this part's tar half written
        if img is not None and txt is not None:
            self._img.append(img)
            self._txt.append(txt)
        if len(self._rows) >= self.size:
            self.close()

    def close(self) -> None:
        """Commit the current shard's tar, then its parquet and embeddings."""
        if self._stack is None:
            return
        self._stack.close()
        self._stack, self._tar = None, None
        name = self.name_of(self.index)
        table = pa.Table.from_pylist(self._rows, schema=join.META_SCHEMA)
        parquet = ofs.join(self.directory, f"{name}.parquet")
        commit.write_parquet_atomic(table, parquet)
        self.written.append(parquet)
        if self._img and len(self._img) == len(self._rows):
            for kind, arrays in (("img_emb", self._img), ("text_emb", self._txt)):
                path = ofs.join(self.directory, kind, f"{name}.npy")
                commit.write_float16_npy_atomic(np.stack(arrays), path)
                self.written.append(path)
        self.total += len(self._rows)
        self._rows, self._img, self._txt = [], [], []
        self.index += 1

    def abort(self) -> None:
        """Drop the shard being written (its temporary file is removed)."""
        if self._stack is not None:
            with suppress(RuntimeError):
                self._stack.__exit__(RuntimeError, RuntimeError("export aborted"), None)
            self._stack = None


Sample = tuple[dict[str, Any], tuple[str, bytes], np.ndarray | None, np.ndarray | None]


def iter_samples(view: ShardView) -> Iterator[Sample]:
    """Stream one input shard's tar: (row, (extension, image bytes), img_emb, text_emb) of each kept
    sample, in tar order; raises when a kept sample has no image or is missing from the tar."""
    rows = view.meta.to_pylist()
    wanted = {str(row["key"]): i for i, row in enumerate(rows)}
    found = 0
    for key, parts in join.iter_tar(view.tar):
        position = wanted.get(key)
        if position is None:
            continue
        image = join.image_of(parts)
        if image is None:
            raise ExportInputError(f"{view.tar}: sample {key} has no image member")
        img = view.img_emb[position] if view.img_emb is not None else None
        txt = view.text_emb[position] if view.text_emb is not None else None
        yield rows[position], image, img, txt
        found += 1
    if found != len(wanted):
        raise ExportInputError(f"{view.tar}: {len(wanted) - found} kept sample(s) are not in the tar")


def write_tar_part(
    directory: str,
    views: list[ShardView],
    size: int,
    index: int,
    name_of: Callable[[int], str] = commit.shard_name,
) -> list[str]:
    """Write output shard `index` (at most `size` samples, its files named `name_of(index)`) from `views`;
    returns the files written."""
    writer = _PartWriter(directory, size, index, name_of)
    try:
        for view in views:
            if len(view):
                for sample in iter_samples(view):
                    writer.add(*sample)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.written
