"""Local executor: a process pool (or in-process when one worker is asked for)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from openpairs.core.lean import arrow_without_pandas
from openpairs.executors import ExecutorConfig, call_safely


class LocalExecutor:
    """Maps a function over items with up to `workers` processes."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.workers = config.worker_count()
        self._pool: ProcessPoolExecutor | None = None

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as items finish."""
        if self.workers == 1 or len(items) <= 1:
            for position, item in enumerate(items):
                yield position, call_safely(fn, item)
            return
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=arrow_without_pandas
            )
        pending: dict[Future[Any], int] = {
            self._pool.submit(call_safely, fn, item): i for i, item in enumerate(items)
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                position = pending.pop(future)
                yield position, future.result()

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
