"""robots.txt: fetched once per host (through the same guarded fetcher), parsed with protego."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from yarl import URL

from openpairs.core.status import Status, is_transient
from openpairs.net.config import FetchResult

if TYPE_CHECKING:
    from protego import Protego

    from openpairs.net.fetch import Fetcher

ROBOTS_MAX_BYTES = 512 * 1024


class RobotsCache:
    """Per-host robots.txt verdicts for one fetcher; concurrent requests for a host share one fetch."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self._hosts: dict[str, asyncio.Task[tuple[Protego | None, FetchResult | None]]] = {}

    async def refusal(self, url: URL) -> FetchResult | None:
        """None when `url` may be fetched, else the row result (robots_disallowed or a transient error)."""
        origin = f"{url.scheme}://{url.raw_authority}"
        task = self._hosts.get(origin)
        if task is None:
            task = asyncio.ensure_future(self._load(origin))
            self._hosts[origin] = task
        parser, failure = await asyncio.shield(task)
        if failure is not None:
            return failure
        if parser is None:
            return None
        agents = self.fetcher.config.agents()
        if all(parser.can_fetch(str(url), agent) for agent in agents):
            return None
        return FetchResult(Status.ROBOTS_DISALLOWED, error=f"robots.txt of {origin} disallows it")

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
