"""Global steps as tasks: map a function over items with the stage's executor, results in item order.

Used by export (one task per output part) and the report (aggregates of shards without them, and the
partitioned top-domain reduce). The driver only sends small task descriptions and gets small results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from openpairs.executors import ExecutorConfig, WorkerLost, make_executor

T = TypeVar("T")


def map_tasks(
    executor: ExecutorConfig,
    fn: Callable[[Any], T],
    items: Sequence[Any],
    resources: dict[str, float] | None = None,
) -> list[T]:
    """`fn(item)` for every item as executor tasks, in item order. A task whose worker died is run
    again (`executor.retries` more times at most); the first task error is raised."""
    if not items:
        return []
    results: dict[int, T] = {}
    pending = list(range(len(items)))
    runner = make_executor(executor, resources)
    try:
        for round_ in range(executor.retries + 1):
            again = []
            for position, outcome in runner.imap(fn, [items[i] for i in pending]):
                index = pending[position]
                if isinstance(outcome, WorkerLost) and round_ < executor.retries:
                    again.append(index)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    results[index] = outcome
            if not again:
                break
            pending = again
    finally:
        runner.close()
    return [results[i] for i in range(len(items))]
