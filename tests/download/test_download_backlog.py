"""The backlog window: bodies waiting for conversion stay bounded, idle conversion opens every connection."""

from __future__ import annotations

import asyncio
import random

from openpairs.stages.download_memory import Backlog


async def _run_rows(
    backlog: Backlog, rows: int, size: int, fetch_s: float, convert_s: float
) -> dict[str, int]:
    """`rows` rows over `backlog.most` workers: fetch (sleep), then a body of `size` bytes is converted
    one at a time (a lock, like the single decode thread); every 5th row fails without a body."""
    pending = iter(range(rows))
    convert = asyncio.Lock()
    seen = {"max_bytes": 0, "max_active": 0, "finished": 0}

    async def worker() -> None:
        for row in pending:
            await backlog.wait_for_room()
            try:
                seen["max_active"] = max(seen["max_active"], backlog.active)
                await asyncio.sleep(fetch_s * random.random())
                if row % 5 == 0:
                    continue
                backlog.add(size)
                seen["max_bytes"] = max(seen["max_bytes"], backlog.bytes)
                try:
                    async with convert:
                        await asyncio.sleep(convert_s)
                finally:
                    backlog.remove(size)
            finally:
                seen["finished"] += 1
                await backlog.done()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(backlog.most))), 30)
    return seen


def test_slow_conversion_bounds_the_bodies_waiting() -> None:
    backlog = Backlog(limit=1000, most=64)
    seen = asyncio.run(_run_rows(backlog, rows=400, size=100, fetch_s=0.0005, convert_s=0.001))
    assert seen["finished"] == 400  # nobody left waiting
    assert seen["max_bytes"] <= 1000 + 16 * 100  # the limit, plus at most the first window of rows
    assert backlog.bytes == 0 and backlog.active == 0


def test_idle_conversion_opens_every_connection() -> None:
    backlog = Backlog(limit=10_000_000, most=64)
    seen = asyncio.run(_run_rows(backlog, rows=2000, size=100, fetch_s=0.02, convert_s=0.0))
    assert seen["finished"] == 2000
    assert seen["max_active"] == 64
    assert backlog.window == 64


def test_bodies_larger_than_the_limit_still_finish() -> None:
    backlog = Backlog(limit=10, most=8)
    seen = asyncio.run(_run_rows(backlog, rows=100, size=1000, fetch_s=0.001, convert_s=0.001))
    assert seen["finished"] == 100
    assert backlog.window >= 1
