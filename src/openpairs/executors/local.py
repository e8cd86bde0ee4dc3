"""Local executor: a process pool (or in-process when one worker is asked for)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from openpairs.core.lean import arrow_without_pandas
from openpairs.executors import ExecutorConfig, call_safely, set_task_cpus
from openpairs.executors.pool import DrainingPool


class LocalExecutor:
    """Maps a function over items with up to `workers` processes."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.workers = config.worker_count()
        self._pool: DrainingPool | None = None

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as items finish."""
        if self.workers == 1 or len(items) <= 1:
            for position, item in enumerate(items):
                yield position, call_safely(fn, item)
            return
        if self._pool is None:
            cpus = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = DrainingPool(self.workers, initializer=partial(_start_worker, cpus))
        yield from self._pool.imap(fn, items)

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _start_worker(cpus: int) -> None:
    """In a new worker process: pyarrow without pandas, and each task's share of the cores."""
    arrow_without_pandas()
    set_task_cpus(cpus)
