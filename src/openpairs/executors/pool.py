"""A process pool whose workers may hold a few tasks at once, so a shard's slow tail idles no core.

A task that only waits now (a download shard whose rows are all handed out, waiting on slow hosts)
calls `openpairs.executors.draining()`; the pool then gives its worker process the next task, which
runs beside it in another thread. Tasks that never call it run one per worker, as in any process
pool. A worker that dies (native crash, OOM kill) fails only the tasks it held; a fresh one replaces
it. Workers exit when the driver process is gone, even mid-task, so a killed run leaves no orphans.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from openpairs.executors import WorkerLost, call_safely, set_draining_hook

MAX_TASKS_PER_WORKER = 3  # one running fully, the others only waiting on their stragglers
_POLL_SECONDS = 0.5
_STOP_SECONDS = 10.0


class WorkerDied(WorkerLost):
    """The worker process holding a task ended before the task did."""


@dataclass
class _Worker:
    """One worker process, its inbox, and the ids of the tasks it holds (and which of them drain)."""

    process: Any
    inbox: Any
    held: set[int] = field(default_factory=set)
    draining: set[int] = field(default_factory=set)

    def can_take(self) -> bool:
        """Idle, or every task it holds is draining and there is room for one more."""
        return len(self.held) < MAX_TASKS_PER_WORKER and self.held <= self.draining


class DrainingPool:
    """`workers` spawned processes; each runs one task, plus more while its tasks are draining."""

    def __init__(self, workers: int, initializer: Callable[[], None] | None = None) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._count, self._initializer = workers, initializer
        self._results: Any = self._context.Queue()
        self._workers: list[_Worker] = []
        self._next_id = 0

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as items finish."""
        todo = deque(range(len(items)))
        owners: dict[int, tuple[_Worker, int]] = {}  # task id -> (worker, index)
        reaped = time.monotonic()
        while todo or owners:
            yield from self._dispatch(fn, items, todo, owners)
            # reap even while other workers keep answering, but never past a result still to be read
            if time.monotonic() - reaped > _POLL_SECONDS and self._results.empty():
                yield from self._reap(owners)
                reaped = time.monotonic()
            try:
                kind, task_id, payload = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if task_id not in owners:
                continue  # from a task whose worker was already reaped
            worker, position = owners[task_id]
            if kind == "draining":
                worker.draining.add(task_id)
                continue
            del owners[task_id]
            worker.held.discard(task_id)
            worker.draining.discard(task_id)
            yield position, pickle.loads(payload)

    def _dispatch(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        todo: deque[int],
        owners: dict[int, tuple[_Worker, int]],
    ) -> Iterator[tuple[int, BaseException]]:
        """Hand tasks to workers that can take one, idle workers first; yield the unpicklable ones."""
        while len(self._workers) < min(self._count, len(todo) + len(owners)):
            self._workers.append(self._start())
        for worker in sorted(self._workers, key=lambda w: len(w.held)):
            while todo and worker.can_take():
                position = todo.popleft()
                try:
                    message = pickle.dumps((fn, items[position]))
                except Exception as exc:
                    yield position, exc
                    continue
                self._next_id += 1
                worker.inbox.put((self._next_id, message))
                worker.held.add(self._next_id)
                owners[self._next_id] = (worker, position)

    def _reap(self, owners: dict[int, tuple[_Worker, int]]) -> Iterator[tuple[int, Any]]:
        """Fail the tasks of workers that died, and replace those workers."""
        for worker in list(self._workers):
            if worker.process.is_alive():
                continue
            self._workers.remove(worker)
            code = worker.process.exitcode
            for task_id in sorted(worker.held):
                _, position = owners.pop(task_id)
                yield position, WorkerDied(f"worker process exited with code {code} while running this task")

    def _start(self) -> _Worker:
        inbox = self._context.Queue()
        process = self._context.Process(
            target=_serve, args=(inbox, self._results, self._initializer, os.getpid()), daemon=True
        )
        process.start()
        return _Worker(process, inbox)

    def close(self) -> None:
        """Stop the workers: politely when they are idle, at once when they still hold tasks."""
        for worker in self._workers:
            if worker.held:
                worker.process.terminate()
            else:
                worker.inbox.put(None)
        for worker in self._workers:
            worker.process.join(_STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.inbox.cancel_join_thread()
            worker.inbox.close()
        self._workers = []


def _serve(inbox: Any, results: Any, initializer: Callable[[], None] | None, parent: int) -> None:
    """A worker process: run each task it is given in a thread, until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C stops
    if initializer is not None:
        initializer()
    with ThreadPoolExecutor(MAX_TASKS_PER_WORKER, thread_name_prefix="task") as threads:
        while True:
            try:
                message = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    os._exit(1)  # the driver is gone: nobody will read what we would write
                continue
            if message is None:
                return
            threads.submit(_run, results, *message)


def _run(results: Any, task_id: int, message: bytes) -> None:
    """Run one task; report when it drains, then its result (any failure becomes the result)."""
    set_draining_hook(lambda: results.put(("draining", task_id, b"")))
    try:
        fn, item = pickle.loads(message)
        outcome = call_safely(fn, item)
    except BaseException as exc:  # SystemExit or an unpicklable task must still answer the driver
        outcome = RuntimeError(f"task failed outside its function: {type(exc).__name__}: {exc}")
    finally:
        set_draining_hook(None)
    try:
        payload = pickle.dumps(outcome)
    except Exception as exc:
        payload = pickle.dumps(RuntimeError(f"result could not be sent back: {type(exc).__name__}: {exc}"))
    results.put(("done", task_id, payload))
