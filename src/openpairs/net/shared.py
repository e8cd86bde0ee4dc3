"""One fetch service per worker process: its event loop thread and Fetcher outlive the shards that use it.

Every shard a process runs, one after another or several at once (the local pool's draining shards, in
threads), submits its coroutine to the same service, so the connection pool, the per-host limit, host
back-off and `Retry-After`, the DNS cache and the robots.txt cache are the process's, not the shard's: a
worker never opens more than `per_host` connections to a host, and a host that asked to wait is not hit by
the next shard. The service is built for one FetchConfig; a shard with another config gets a new service,
and the old one is closed once its last shard is done. It is closed at interpreter exit (atexit).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from openpairs.net.config import FetchConfig
from openpairs.net.fetch import Fetcher

T = TypeVar("T")
_CLOSE_SECONDS = 10.0


class FetchService:
    """An event loop in a daemon thread and one open Fetcher on it, for every shard of this process."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self.users = 0
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self._serve, name="fetch-service", daemon=True)
        self._thread.start()
        self.fetcher = Fetcher(config)
        try:
            self.submit(self.fetcher.__aenter__()).result()
        except BaseException:
            self.close()  # no loop thread left behind by a service that never opened
            raise

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the service's loop; its result (or exception) comes back through the future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        """Close the session (no unclosed-session warning), stop the loop and join its thread."""
        if not self._thread.is_alive():
            return
        try:
            self.submit(self._shutdown()).result(_CLOSE_SECONDS)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_CLOSE_SECONDS)

    async def _shutdown(self) -> None:
        await self.fetcher.__aexit__(None, None, None)
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:  # robots.txt loads nobody waits for any more
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)


_lock = threading.Lock()
_current: FetchService | None = None


@contextmanager
def fetch_service(config: FetchConfig) -> Iterator[FetchService]:
    """The process's fetch service for `config`, held while the block runs (a shard's fetching)."""
    global _current
    retired = None
    with _lock:
        service = _current
        if service is None or service.config != config or service.pid != os.getpid():
            if service is not None and service.users == 0 and service.pid == os.getpid():
                retired = service  # nobody uses it: close it now; else its last user does
            service = _current = FetchService(config)
        service.users += 1
    if retired is not None:
        retired.close()
    try:
        yield service
    finally:
        with _lock:
            service.users -= 1
            orphaned = service is not _current and service.users == 0
        if orphaned:
            service.close()


def close_services() -> None:
    """Close this process's fetch service, if it has one (at exit; tests, between two tests)."""
    global _current
    with _lock:
        service, _current = _current, None
    if service is not None and service.pid == os.getpid():
        service.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional at runtime
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


atexit.register(close_services)
