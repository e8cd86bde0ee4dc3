"""Writing a download shard: a spool for image bytes, a deterministic webdataset tar, the parquet rows."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from openpairs.core.schemas import DOWNLOAD_FIELDS
from openpairs.io import commit
from openpairs.io import fs as ofs

DOWNLOAD_NAMES = [name for name, _ in DOWNLOAD_FIELDS]


@dataclass
class Outcome:
    """What happened to one row: its download fields, and where its stored image sits in the spool."""

    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    sha256: str | None = None
    bytes: int | None = None
    mime: str | None = None
    ext: str | None = None
    opt_out_signal: str | None = None

    def fields(self) -> dict[str, Any]:
        """The DOWNLOAD_FIELDS values of this row."""
        return {name: getattr(self, name) for name in DOWNLOAD_NAMES}


class Spool:
    """Image bytes kept in an anonymous temporary file (gone even after SIGKILL), read back by key."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
        self._where: dict[str, tuple[int, int]] = {}

    def put(self, key: str, data: bytes) -> None:
        """Append the bytes of `key`."""
        offset = self._file.seek(0, io.SEEK_END)
        self._file.write(data)
        self._where[key] = (offset, len(data))

    def get(self, key: str) -> bytes:
        """The bytes stored for `key`."""
        offset, size = self._where[key]
        self._file.seek(offset)
        return self._file.read(size)

    def close(self) -> None:
        """Drop the spool."""
        self._file.close()


def output_table(inputs: pa.Table, outcomes: list[Outcome]) -> pa.Table:
    """Input rows with the download fields appended (candidate columns, download fields, extras)."""
    from openpairs.core.schemas import CANDIDATE_SCHEMA
    from openpairs.stages.inputs import INTERNAL_COLUMNS

    table = inputs.select(CANDIDATE_SCHEMA.names)
    for name, kind in DOWNLOAD_FIELDS:
        values = pa.array([getattr(o, name) for o in outcomes], kind)  # type: ignore[call-overload]
        table = table.append_column(name, values)
    for name in inputs.column_names:
        if name not in CANDIDATE_SCHEMA.names and name not in INTERNAL_COLUMNS:
            table = table.append_column(inputs.schema.field(name), inputs.column(name))
    return table


def tar_members(table: pa.Table, outcomes: list[Outcome], spool: Spool) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every stored sample in key order: `<key>.<ext>`, `<key>.json`, `<key>.txt`."""
    rows = table.to_pylist()
    order = sorted((i for i, o in enumerate(outcomes) if o.status == "ok"), key=lambda i: rows[i]["key"])
    for i in order:
        row, key = rows[i], rows[i]["key"]
        yield f"{key}.{outcomes[i].ext}", spool.get(key)
        yield f"{key}.json", json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")
        yield f"{key}.txt", (row.get("caption") or "").encode("utf-8")


def write_tar(path: str, members: Iterable[tuple[str, bytes]]) -> None:
    """Write a tar atomically with fixed metadata (mtime 0, uid 0, mode 644): reruns are byte-identical."""
    with (
        commit.atomic_open(path, "wb") as handle,
        tarfile.open(fileobj=handle, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def read_tar_into(path: str, keys: set[str], spool: Spool) -> dict[str, str]:
    """Copy the image members of `keys` from an existing shard tar into the spool; returns key -> ext."""
    found: dict[str, str] = {}
    if not ofs.exists(path):
        return found
    with ofs.open_file(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
        for info in tar:
            key, _, ext = info.name.rpartition(".")
            if key in keys and ext not in ("json", "txt") and info.isfile():
                member = tar.extractfile(info)
                if member is not None:
                    spool.put(key, member.read())
                    found[key] = ext
    return found
