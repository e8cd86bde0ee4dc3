"""Process memory hygiene for download workers (glibc): big image buffers go back to the OS when freed."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from openpairs.image import ImageConfig, ProcessedImage
    from openpairs.image.process import Inspect

_MALLOC_TUNED = False


def tune_malloc() -> None:
    """glibc: serve big buffers (decoded images over 8 MB) by mmap so they go back to the OS when freed.

    Without it the dynamic mmap threshold grows to 32 MB and freed image buffers stay in the heap, so a
    worker's memory ratchets up to the largest images it ever decoded. A lower threshold costs page faults
    on every image (measured: +10% CPU at 256 KB); 8 MB keeps those rare. Two arenas, not 8 per core.
    Each arena keeps at most 16 MB of free memory at its top: at 32 MB, the loop and the decode
    arenas each held ~30 MB they were not using (median tree PSS 369 -> 324 MB on the benchmark); at 8 MB
    the heap shrank and regrew all the time (3x the page faults: +0.12 CPU-ms per row in kernel time).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    _arrow_system_pool()
    libc = _libc()
    if libc is not None:
        libc.mallopt(-3, 8 * 1024 * 1024)  # M_MMAP_THRESHOLD: fixed, so it no longer grows to 32 MB
        libc.mallopt(-1, 16 * 1024 * 1024)  # M_TRIM_THRESHOLD: free heap kept at the top of an arena
        libc.mallopt(-8, 2)  # M_ARENA_MAX


def worker_environment() -> None:
    """Before the workers start: Arrow in them allocates through malloc (ARROW_DEFAULT_MEMORY_POOL).

    With mimalloc, reading one 1,000-row shard commits 16 MB of a 1 GB reservation that the worker keeps
    for its whole life (the shard needs < 1 MB). Only the environment variable, read when pyarrow loads,
    removes it all; `set_memory_pool` later still leaves 4 MB.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def _arrow_system_pool() -> None:
    """In-process runs (one worker, Ray): switch Arrow to malloc before it allocates anything."""
    import pyarrow as pa

    if pa.total_allocated_bytes() == 0:  # switching pools with live buffers is allowed, but pointless
        pa.set_memory_pool(pa.system_memory_pool())


def trim_malloc() -> None:
    """Give freed heap memory back to the OS at the end of a shard."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


BIG_DECODE_PIXELS = 4_000_000
_LOCK_PATH = os.path.join(tempfile.gettempdir(), "openpairs-big-decode.lock")


def process_bounded(
    body: bytes, config: ImageConfig, expected_sha256: str | None = None, inspect: Inspect | None = None
) -> ProcessedImage:
    """`process_image` (`inspect`: its hook on the decoded image), with full-size decodes of big non-JPEG images taken one at a time per machine.

    Such a decode briefly needs a few hundred MB (JPEGs are DCT-reduced and stay small); a file lock
    shared by the workers of a machine keeps those peaks from stacking up. The kernel drops the lock if
    its holder dies.
    """
    from openpairs.image import ImageRejected, process_image
    from openpairs.image.probe import open_header

    try:
        header = open_header(body)
    except ImageRejected:
        return process_image(body, config, None, expected_sha256, inspect)  # raises the proper rejection
    if header.width * header.height < BIG_DECODE_PIXELS or header.format in ("JPEG", "MPO") or fcntl is None:
        return process_image(body, config, header, expected_sha256, inspect)
    with open(_LOCK_PATH, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            return process_image(body, config, header, expected_sha256, inspect)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


BACKLOG_BYTES = 8 * 1024 * 1024
FIRST_WINDOW = 16


class Backlog:
    """Bounds the bytes of fetched bodies waiting for conversion by adapting how many rows run at once.

    When conversion is the bottleneck (a fast server), fetched bodies would otherwise pile up: with 128
    connections, ~128 bodies per worker. The window of rows in progress grows by one per finished row
    while the backlog is under half of `limit` (conversion is short of work: slow servers soon get every
    connection) and shrinks by one per finished row while it is over `limit`.
    """

    def __init__(self, limit: int = BACKLOG_BYTES, most: int = 128) -> None:
        import asyncio

        self.limit, self.most = limit, most
        self.bytes = 0
        self.active = 0
        self.window = min(FIRST_WINDOW, most)
        self._room = asyncio.Condition()

    def _has_room(self) -> bool:
        return self.active < self.window and self.bytes < self.limit

    async def wait_for_room(self) -> None:
        """Return once a row may start (and count it as active)."""
        if not self._has_room():
            async with self._room:
                await self._room.wait_for(self._has_room)
        self.active += 1

    def add(self, size: int) -> None:
        """A fetched body of `size` bytes joins the backlog."""
        self.bytes += size

    def remove(self, size: int) -> None:
        """A body of `size` bytes left the backlog (converted or rejected)."""
        self.bytes -= size

    async def done(self) -> None:
        """A row is finished, with or without a body: adapt the window, wake rows that now fit."""
        self.active -= 1
        if self.bytes < self.limit // 2:
            self.window = min(self.most, self.window + 1)
        elif self.bytes >= self.limit:
            self.window = max(1, self.window - 1)
        free = self.window - self.active
        if free > 0 and self.bytes < self.limit:
            async with self._room:
                self._room.notify(free)
