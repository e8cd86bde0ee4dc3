"""Per-origin policy files (robots.txt, /.well-known/tdmrep.json, /ai.txt): each read once per origin per
process, through the same guarded fetcher, before any image request to that origin; concurrent requests
for an origin share one read.

What a read gives: a parsed file; no file (404, 410 or any other final answer: no signal); a problem
(a body too large or unparsable: no signal, counted as `opt_out_files.<file> <problem>`); or a failure
(a timeout, a connection error, a 5xx, a 429, a refused address): the row ends with that status, to be
retried later, never silently allowed nor silently opted out.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yarl import URL

from openpairs.core.status import Status, is_transient
from openpairs.net.config import FetchResult

if TYPE_CHECKING:
    from openpairs.net.fetch import Fetcher

FILE_MAX_BYTES = 512 * 1024
FILE_TTL = 24 * 3600.0  # a file read is trusted this long (as the big crawlers do with robots.txt)
MAX_ENTRIES = 30_000  # (origin, file) pairs kept per process (10,000 origins), least recently used out first

Parser = Callable[[bytes], Any]  # raises ValueError (or UnicodeError) on a body it cannot read


@dataclass(frozen=True)
class OriginFile:
    """One origin's file: `parsed` (None: no file), a `problem` (counted), or a `failure` (the row's)."""

    parsed: Any = None
    problem: str = ""
    failure: FetchResult | None = None


class OriginFiles:
    """The per-origin files one fetcher reads, by path; a failure is kept only for the host's cooldown, so
    a timeout does not refuse an origin for the rest of the process."""

    def __init__(self, fetcher: Fetcher, parsers: dict[str, Parser]) -> None:
        self.fetcher = fetcher
        self.parsers = parsers
        self._entries: OrderedDict[tuple[str, str], tuple[asyncio.Task[OriginFile], float]] = OrderedDict()

    async def read(self, origin: str, paths: list[str]) -> list[OriginFile]:
        """The files `paths` of `origin` (`scheme://host[:port]`), each read once and shared; the reads
        not yet done run concurrently, a done one costs no await."""
        tasks = [self._entry(origin, path) for path in paths]
        return [task.result() if _succeeded(task) else await asyncio.shield(task) for task in tasks]

    def _entry(self, origin: str, path: str) -> asyncio.Task[OriginFile]:
        """The (running or finished) read of the file, started again once it expired."""
        now = asyncio.get_running_loop().time()
        key = (origin, path)
        entry = self._entries.get(key)
        if entry is not None and not _expired(*entry, now, self.fetcher.config.host_cooldown):
            self._entries.move_to_end(key)
            return entry[0]
        task = asyncio.ensure_future(self._load(origin, path))
        self._entries[key] = (task, now)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return task

    async def _load(self, origin: str, path: str) -> OriginFile:
        name = path.rsplit("/", 1)[-1]
        result = await self.fetcher.follow(URL(origin + path), check_optout=False, max_bytes=FILE_MAX_BYTES)
        if result.status == Status.OK and result.body is not None:
            try:
                return OriginFile(parsed=self.parsers[path](result.body))
            except (ValueError, UnicodeError):
                return OriginFile(problem="unparsable")
        if result.status == Status.BODY_TOO_LARGE:
            return OriginFile(problem="too_large")
        if is_transient(result.status) or result.status == Status.BLOCKED_ADDRESS:
            result.error = f"{name} of {origin}: {result.error}"
            return OriginFile(failure=result)
        return OriginFile()  # 404, 410, 401, 403, ...: no file, no signal


def _succeeded(task: asyncio.Task[OriginFile]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _expired(task: asyncio.Task[OriginFile], started: float, now: float, cooldown: float) -> bool:
    """A finished read past its lifetime: FILE_TTL for a file, `cooldown` for a failure."""
    if not task.done():
        return False
    if task.cancelled() or task.exception() is not None or task.result().failure is not None:
        return now - started > cooldown
    return now - started > FILE_TTL


def origin_of(url: URL) -> str:
    """`scheme://host[:port]` of a URL, the key of its per-origin files."""
    return f"{url.scheme}://{url.raw_authority}"
