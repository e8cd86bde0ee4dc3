"""Input versions of done shards: a shard made from an input that was rewritten since is stale.

A per-shard stage's inputs are often another stage's outputs under the same DIR (candidates/ from dedup,
shards/ from download). When those are rewritten (dedup redone over more extracted WATs, a download shard
redone by --retry-failed), a done shard downstream was made from the old rows; keeping it would silently mix
two versions. So each shard's stats file records the version (size and modification stamp) of every input
under DIR it read, and a resume redoes a done shard whose inputs changed. Inputs outside DIR (WAT files,
user input files) are pinned by other means and not tracked.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from openpairs.io import fs as ofs

MISSING = "missing"
# Modification stamps by fsspec backend: object stores' ETag first (the same from HEAD and LIST).
STAMP_KEYS = ("ETag", "etag", "mtime", "LastModified", "last_modified", "updated", "created")


def tracked(inputs: Iterable[str], out: str) -> list[str]:
    """The inputs that live under the output directory `out` (another stage's outputs)."""
    prefix = out.rstrip("/") + "/"
    return [path for path in inputs if path.startswith(prefix)]


def versions(inputs: Iterable[str], out: str) -> dict[str, str]:
    """The current version of each tracked input, by its path relative to `out` (a dataset moved or
    copied whole keeps comparing its own files), one metadata lookup per file (for one shard)."""
    found: dict[str, str] = {}
    prefix = len(out.rstrip("/")) + 1
    for path in tracked(inputs, out):
        fs, resolved = ofs.filesystem(path)
        try:
            found[path[prefix:]] = _stamp(fs.info(resolved))
        except FileNotFoundError:
            found[path[prefix:]] = MISSING
    return found


def located(recorded: str, out: str) -> str:
    """Where a recorded input lives now: relative paths under `out` (records of older versions kept
    absolute paths, used as they are)."""
    if recorded.startswith("/") or "://" in recorded:
        return recorded
    return ofs.join(out, recorded)


def listed_versions(paths: Iterable[str]) -> dict[str, str]:
    """The current version of many files, one listing per directory (for a resume over many shards)."""
    by_directory: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_directory[posixpath.dirname(path)].append(path)
    found: dict[str, str] = {}
    for directory, members in by_directory.items():
        fs, resolved = ofs.filesystem(directory)
        fs.invalidate_cache(resolved)
        entries = fs.ls(resolved, detail=True) if fs.exists(resolved) else []
        stamps = {posixpath.basename(str(e["name"]).rstrip("/")): _stamp(e) for e in entries}
        for path in members:
            found[path] = stamps.get(posixpath.basename(path), MISSING)
    return found


def _stamp(info: dict[str, Any]) -> str:
    stamp = next((info[key] for key in STAMP_KEYS if info.get(key) is not None), "")
    return f"{info.get('size')}:{stamp}"
