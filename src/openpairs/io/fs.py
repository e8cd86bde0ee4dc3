"""fsspec helpers: every path in openpairs (local, s3://, http(s)://, memory://) goes through here."""

from __future__ import annotations

import posixpath
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem

REMOTE_PREFIXES = ("http://", "https://")


def filesystem(path: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for `path` and the path as that filesystem names it."""
    fs, resolved = fsspec.core.url_to_fs(path)  # no glob expansion here: `expand` does that
    return fs, resolved


def join(base: str, *parts: str) -> str:
    """Join path parts with '/', keeping a URL scheme intact."""
    if "://" in base:
        return posixpath.join(base.rstrip("/"), *parts)
    return posixpath.join(base, *parts)


def exists(path: str) -> bool:
    """True when `path` exists."""
    fs, p = filesystem(path)
    return bool(fs.exists(p))


def makedirs(path: str) -> None:
    """Create a directory (a no-op on object stores)."""
    fs, p = filesystem(path)
    fs.makedirs(p, exist_ok=True)


def open_file(path: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
    """Open `path` for reading or writing through fsspec."""
    return fsspec.open(path, mode, **kwargs).open()  # type: ignore[no-any-return]


def read_bytes(path: str) -> bytes:
    """Whole content of a (small) file."""
    with open_file(path, "rb") as handle:
        return handle.read()  # type: ignore[no-any-return]


def read_parquet(path: str, columns: list[str] | None = None) -> Any:
    """One parquet file as a pyarrow Table, through `ParquetFile`: `pq.read_table` goes through
    pyarrow.dataset, which imports pandas (~190 ms and ~40 MB per worker process)."""
    import pyarrow.parquet as pq

    with open_file(path, "rb") as handle:
        return pq.ParquetFile(handle).read(columns=columns)


def parquet_columns(path: str) -> list[str]:
    """The column names of one parquet file, from its footer."""
    import pyarrow.parquet as pq

    with open_file(path, "rb") as handle:
        return list(pq.ParquetFile(handle).schema_arrow.names)


def read_text(path: str) -> str:
    """Whole content of a (small) text file."""
    return read_bytes(path).decode("utf-8")


def list_files(directory: str, suffix: str = "") -> list[str]:
    """Sorted full paths of the files directly in `directory` ending with `suffix` (empty if missing)."""
    fs, p = filesystem(directory)
    fs.invalidate_cache(p)  # object stores cache listings; shards may have landed since
    if not fs.exists(p):
        return []
    protocol = _protocol_prefix(directory)
    names = [entry for entry in fs.ls(p, detail=False) if str(entry).endswith(suffix)]
    return sorted(protocol + str(name).lstrip("/") if protocol else str(name) for name in names)


def remove(path: str) -> None:
    """Remove a file if it exists."""
    fs, p = filesystem(path)
    if fs.exists(p):
        fs.rm(p)


def expand(pattern: str) -> list[str]:
    """Paths matched by a local or object-store glob; http(s) URLs and plain paths pass through."""
    if pattern.startswith(REMOTE_PREFIXES) or not any(ch in pattern for ch in "*?["):
        return [pattern]
    fs, p = filesystem(pattern)
    fs.invalidate_cache()
    protocol = _protocol_prefix(pattern)
    return sorted(protocol + str(m).lstrip("/") if protocol else str(m) for m in fs.glob(p))


def _protocol_prefix(path: str) -> str:
    if "://" in path and not path.startswith("file://"):
        return path.split("://", 1)[0] + "://"
    return ""
