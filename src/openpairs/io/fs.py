"""fsspec helpers: every path in openpairs (local, s3://, http(s)://, memory://) goes through here, and so
do the retries and timeouts of object storage (ObjectStoreConfig)."""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem

_RUNS = re.compile(r"\d+|\D+")

REMOTE_PREFIXES = ("http://", "https://")
S3_PROTOCOLS = ("s3", "s3a")
S3_ENV_PREFIX = "OPENPAIRS_S3_"
RETRY_MODES = ("standard", "adaptive", "legacy")
_KINDS: dict[str, tuple[type, str]] = {"int": (int, "an integer"), "float": (float, "a number")}


@dataclass(frozen=True)
class ObjectStoreConfig:
    """Retries and timeouts of every s3:// request, for a long crawl where throttling is normal.

    botocore sends each request up to `max_attempts` times with exponential backoff and jitter between
    attempts (at most 20 s each): 500 InternalError, 503 SlowDown and other throttling, timeouts and
    dropped connections are retried. `standard` is botocore's retry mode; `adaptive` (experimental in
    botocore) also rate-limits each process after throttling. s3fs repeats a request that still fails
    up to `tries` times (it also re-reads a body cut mid-read). What fails after that fails its shard:
    the runner retries the shard, then lists it in <stage>/failed_shards.jsonl and the run exits
    non-zero. A store that stops answering fails a request after at most
    tries x max_attempts x read_timeout, plus the backoff.

    Each field can be set as OPENPAIRS_S3_<FIELD> (e.g. OPENPAIRS_S3_MAX_ATTEMPTS=20); fsspec's own s3
    configuration (fsspec.config.conf["s3"], FSSPEC_S3) wins over these.
    """

    retry_mode: str = "standard"
    max_attempts: int = 10
    connect_timeout: float = 10.0  # seconds to open a connection
    read_timeout: float = 30.0  # longest silence while waiting for or reading an answer
    tries: int = 3

    def __post_init__(self) -> None:
        if self.retry_mode not in RETRY_MODES:
            raise ValueError(f"{S3_ENV_PREFIX}RETRY_MODE must be one of {', '.join(RETRY_MODES)}")
        if self.max_attempts < 1 or self.tries < 1:
            raise ValueError(f"{S3_ENV_PREFIX}MAX_ATTEMPTS and {S3_ENV_PREFIX}TRIES must be at least 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError(f"{S3_ENV_PREFIX}CONNECT_TIMEOUT and READ_TIMEOUT must be positive")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ObjectStoreConfig:
        """The defaults, with each OPENPAIRS_S3_<FIELD> set in `environ` applied."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = S3_ENV_PREFIX + field.name.upper()
            if name in environ:
                kind, what = _KINDS.get(str(field.type), (str, "text"))
                try:
                    values[field.name] = kind(environ[name])
                except ValueError:
                    raise ValueError(f"{name} must be {what}, not {environ[name]!r}") from None
        return cls(**values)

    def storage_options(self) -> dict[str, Any]:
        """These settings as s3fs storage options."""
        retries = {"mode": self.retry_mode, "total_max_attempts": self.max_attempts}
        timeouts = {"connect_timeout": self.connect_timeout, "read_timeout": self.read_timeout}
        return {"config_kwargs": {"retries": retries, **timeouts}}


def filesystem(path: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for `path` and the path as that filesystem names it."""
    store = _object_store(path)
    fs, resolved = fsspec.core.url_to_fs(path, **_options(path, store))  # no glob expansion: see `expand`
    return _tuned(fs, store), resolved


def _object_store(path: str) -> ObjectStoreConfig | None:
    """The object-store settings when `path` is on s3, else None."""
    return ObjectStoreConfig.from_environment() if fsspec.utils.get_protocol(path) in S3_PROTOCOLS else None


def _options(path: str, store: ObjectStoreConfig | None) -> dict[str, Any]:
    """The storage options of `path`: `store`'s, under fsspec's own configuration of the protocol."""
    if store is None:
        return {}
    return _merged(store.storage_options(), fsspec.config.conf.get(fsspec.utils.get_protocol(path), {}))


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = (
            _merged(below, value) if isinstance(below, dict) and isinstance(value, Mapping) else value
        )
    return merged


def _tuned(fs: AbstractFileSystem, store: ObjectStoreConfig | None) -> AbstractFileSystem:
    """`fs` with s3fs's own tries set from `store` (s3fs takes them only as an attribute)."""
    if store is not None:
        fs.retries = store.tries
    return fs


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
    store = _object_store(path)
    opened = fsspec.open(path, mode, **kwargs, **_options(path, store))
    _tuned(opened.fs, store)
    return opened.open()  # type: ignore[no-any-return]


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
    """Full paths of the files directly in `directory` ending with `suffix`, in `natural_order` (empty
    if missing): shard 100000 comes after 99999, however many digits the names have."""
    fs, p = filesystem(directory)
    fs.invalidate_cache(p)  # object stores cache listings; shards may have landed since
    if not fs.exists(p):
        return []
    protocol = _protocol_prefix(directory)
    names = [entry for entry in fs.ls(p, detail=False) if str(entry).endswith(suffix)]
    paths = [protocol + str(name).lstrip("/") if protocol else str(name) for name in names]
    return sorted(paths, key=natural_order)


def natural_order(path: str) -> tuple[tuple[tuple[int, str, int], ...], str]:
    """Sort key that orders the digit runs of a file name as numbers: 99999 < 100000, 00002 < 00010
    (the whole path breaks ties, so the order is total)."""
    name = path.rsplit("/", 1)[-1]
    runs = tuple((1, "", int(run)) if run.isdigit() else (0, run, 0) for run in _RUNS.findall(name))
    return runs, path


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
