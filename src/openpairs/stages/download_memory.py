"""Process memory hygiene for download workers (glibc): big image buffers go back to the OS when freed."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

_MALLOC_TUNED = False


def tune_malloc() -> None:
    """glibc: serve big buffers (decoded images) by mmap so they go back to the OS when freed; few arenas.

    Without it the dynamic mmap threshold grows and freed multi-MB image buffers stay in the heap, so a
    worker's memory ratchets up to the largest images it ever decoded.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    libc = _libc()
    if libc is not None:
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD (fixing it disables the dynamic threshold)
        libc.mallopt(-8, 2)  # M_ARENA_MAX


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
