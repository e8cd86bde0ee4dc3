"""robots.txt: fetched once per origin per process (through the same guarded fetcher), parsed with protego."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from yarl import URL

from openpairs.core.status import Status, is_transient
from openpairs.net.config import FetchResult

if TYPE_CHECKING:
    from protego import Protego

    from openpairs.net.fetch import Fetcher

ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_TTL = 24 * 3600.0  # a robots.txt read is trusted this long (as the big crawlers do)
MAX_ORIGINS = 10_000  # origins remembered per process, least recently used forgotten first

_Verdict = tuple["Protego | None", "FetchResult | None"]


class RobotsCache:
    """Per-origin robots.txt verdicts for one fetcher; concurrent requests for an origin share one fetch.

    A verdict is kept ROBOTS_TTL; a transient failure (the row's status) only until the host's cooldown
    passed, so a timeout of robots.txt does not refuse the origin for the rest of the process."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self._origins: OrderedDict[str, tuple[asyncio.Task[_Verdict], float]] = OrderedDict()

    async def refusal(self, url: URL) -> FetchResult | None:
        """None when `url` may be fetched, else the row result (robots_disallowed or a transient error)."""
        origin = f"{url.scheme}://{url.raw_authority}"
        parser, failure = await asyncio.shield(self._verdict(origin))
        if failure is not None:
            return failure
        if parser is None:
            return None
        agents = self.fetcher.config.agents()
        if all(parser.can_fetch(str(url), agent) for agent in agents):
            return None
        return FetchResult(Status.ROBOTS_DISALLOWED, error=f"robots.txt of {origin} disallows it")

    def _verdict(self, origin: str) -> asyncio.Task[_Verdict]:
        """The (running or finished) load of `origin`'s robots.txt, started again once it expired."""
        now = asyncio.get_running_loop().time()
        entry = self._origins.get(origin)
        if entry is not None and not _expired(*entry, now, self.fetcher.config.host_cooldown):
            self._origins.move_to_end(origin)
            return entry[0]
        task = asyncio.ensure_future(self._load(origin))
        self._origins[origin] = (task, now)
        self._origins.move_to_end(origin)
        while len(self._origins) > MAX_ORIGINS:
            self._origins.popitem(last=False)
        return task

    async def _load(self, origin: str) -> tuple[Protego | None, FetchResult | None]:
        """(parser, None) when robots.txt was read; (None, None) when there is none; (None, failure) else."""
        from protego import Protego

        result = await self.fetcher.follow(
            URL(f"{origin}/robots.txt"), check_optout=False, max_bytes=ROBOTS_MAX_BYTES
        )
        if result.status == Status.OK and result.body is not None:
            return Protego.parse(result.body.decode("utf-8", errors="replace")), None
        if is_transient(result.status) or result.status == Status.BLOCKED_ADDRESS:
            result.error = f"robots.txt: {result.error}"
            return None, result
        return None, None  # 4xx, too large, ...: no usable robots.txt, everything allowed


def _expired(task: asyncio.Task[_Verdict], started: float, now: float, cooldown: float) -> bool:
    """A finished load past its lifetime: ROBOTS_TTL for a verdict, `cooldown` for a failure."""
    if not task.done():
        return False
    if task.cancelled() or task.exception() is not None or task.result()[1] is not None:
        return now - started > cooldown
    return now - started > ROBOTS_TTL
