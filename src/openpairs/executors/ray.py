"""Ray executor: one Ray task per shard, on a given cluster or on a local Ray started for the run.

At most about twice the cluster's task slots are in flight; the rest of the items stay plain items in
the driver until a slot frees, and results are collected in batches, so the driver's cost per task does
not grow with the number of tasks. Ray reruns a task whose worker or node died (`RAY_RETRIES`); each
attempt first notes itself in the cluster's key-value store under the task's id, so a rerun knows how
many attempts died before it and the shard's stats count them (`executors.lost_before`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from openpairs.executors import ClusterRefused, ExecutorConfig, WorkerLost, call_safely, set_lost_before
from openpairs.executors import ray_cluster as cluster

RAY_RETRIES = 3  # Ray's own reruns of a task whose worker or node died (OOM kills included)
WINDOW_PER_SLOT = 2  # tasks in flight per task slot of the cluster
BATCH_WAIT_SECONDS = 0.0  # after one result, sweep those already there (waiting longer idles slots)
# A `ray.wait` costs ~6 µs per pending task: with thousands in flight, a sweep per result would keep the
# driver busy, so past LARGE_WINDOW a sweep first lingers this long and takes every result that came.
LARGE_WINDOW = 256
LINGER_SECONDS = 0.25
SLOTS_EVERY_SECONDS = 2.0  # how often the slots are recounted (nodes join and leave)
LEDGER_NAMESPACE = "openpairs-attempts"
RESOURCE_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


class RayExecutor:
    """Maps a function over items as Ray tasks, `resources` per task (e.g. {"num_cpus": 1})."""

    def __init__(self, config: ExecutorConfig, resources: dict[str, float], out: str | None = None) -> None:
        import ray

        self._ray = ray
        self._started_here = join(config, out)
        self._resources = {"num_cpus": 1.0, **resources}

    def slots(self) -> int:
        """How many of these tasks the cluster's alive nodes can run at once (0: not even one)."""
        return slots(self._resources)

    def _window(self) -> int:
        """How many tasks to keep in flight: twice the slots, recounted as nodes join and leave."""
        return WINDOW_PER_SLOT * max(1, self.slots())

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as Ray tasks finish; a task whose worker or node died more
        often than Ray reruns it yields WorkerLost (the runner decides whether to run it again)."""
        remote = self._ray.remote(run_recorded).options(**self._resources, max_retries=RAY_RETRIES)
        function = self._ray.put(fn)  # sent once, not with every task
        if items and self.slots() == 0:
            raise ClusterRefused(
                f"no node of the Ray cluster has what one task needs ({self._resources}); "
                f"the cluster has {self._ray.cluster_resources()}"
            )
        ledger = f"{uuid.uuid4().hex}:"
        todo = deque(range(len(items)))
        pending: dict[Any, int] = {}
        window, counted = self._window(), time.monotonic()
        try:
            while todo or pending:
                while todo and len(pending) < window:
                    position = todo.popleft()
                    try:
                        pending[remote.remote(function, items[position], ledger)] = position
                    except Exception as exc:  # an item Ray cannot send: its own failure, as in the pool
                        yield position, exc
                if pending:
                    yield from self._collect(pending)
                if time.monotonic() - counted > SLOTS_EVERY_SECONDS:
                    window, counted = self._window(), time.monotonic()
        finally:
            self._forget(ledger)

    def _collect(self, pending: dict[Any, int]) -> Iterator[tuple[int, Any]]:
        """Wait for one result, take every other one already there in the same sweep, yield them."""
        ready, _ = self._ray.wait(list(pending), num_returns=1)
        if len(pending) > LARGE_WINDOW:  # at most 4 sweeps a second; a slot idles a moment of a shard's run
            time.sleep(LINGER_SECONDS)
        more, _ = self._ray.wait(list(pending), num_returns=len(pending), timeout=BATCH_WAIT_SECONDS)
        done = list(dict.fromkeys([*ready, *more]))
        for ref, outcome in zip(done, self._results(done), strict=True):
            yield pending.pop(ref), outcome

    def _results(self, refs: list[Any]) -> list[Any]:
        """The results of finished tasks; a task that did not return (its worker or node died more often
        than Ray reran it) gives WorkerLost."""
        try:
            return list(self._ray.get(refs))
        except Exception:  # call_safely returns task errors: one of these tasks lost its worker or node
            return [self._result(ref) for ref in refs]

    def _result(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except Exception as exc:
            return WorkerLost(f"{type(exc).__name__}: {exc}"[:2000])

    def _forget(self, ledger: str) -> None:
        """Drop the attempt records of one imap call from the cluster's key-value store."""
        from ray.experimental import internal_kv

        if self._ray.is_initialized():
            internal_kv._internal_kv_del(ledger, del_by_prefix=True, namespace=LEDGER_NAMESPACE)

    def close(self) -> None:
        """Stop the local Ray this executor started (a given cluster is left running)."""
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def join(config: ExecutorConfig, out: str | None) -> bool:
    """Join the cluster `config` names, or start a local Ray (True: started here, the caller stops it);
    refuse an `out` the cluster's workers cannot all see (ClusterRefused, said before any task starts)."""
    import ray

    started_here = False
    if not ray.is_initialized():
        if config.ray_address:
            cluster.connect(config.ray_address)
        else:
            cluster.start_local(config.worker_count())
            started_here = True
    if out is not None:
        error = cluster.unshared_out_error(
            out, config.shared_out, cluster.cluster_node_addresses(), cluster.this_node_address()
        )
        if error:
            if started_here:
                ray.shutdown()
            raise ClusterRefused(error)
    return started_here


def node_fits(resources: dict[str, float], node: dict[str, float]) -> int:
    """How many holders of `resources` ({"num_cpus": 1, "num_gpus": 0.5}) fit in a node of `node`'s total
    resources; counted in Ray's own units of 1/10,000, so fractions add up exactly."""
    fits = [
        round(node.get(RESOURCE_NAMES.get(name, name), 0.0) * 10_000) // round(need * 10_000)
        for name, need in resources.items()
        if round(need * 10_000) > 0
    ]
    return min(fits, default=1)


def alive_nodes() -> list[dict[str, Any]]:
    """The alive nodes of the connected cluster, as `ray.nodes()` describes them."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def slots(resources: dict[str, float]) -> int:
    """How many holders of `resources` the alive nodes hold at once, node by node (0: not even one)."""
    return sum(node_fits(resources, node.get("Resources", {})) for node in alive_nodes())


def run_recorded(fn: Callable[[Any], Any], item: Any, ledger: str) -> Any:
    """In a Ray worker: note this attempt under the task's id, then fn(item) (or the exception it raised),
    telling it why the attempts before this one, if any, died."""
    import ray
    from ray.experimental import internal_kv

    context = ray.get_runtime_context()
    key = f"{ledger}{context.get_task_id()}"
    earlier = internal_kv._internal_kv_get(key, namespace=LEDGER_NAMESPACE)
    attempts: list[str] = json.loads(earlier) if earlier else []
    here = f"pid {os.getpid()} on node {context.get_node_id()[:12]}"
    internal_kv._internal_kv_put(key, json.dumps([*attempts, here]), namespace=LEDGER_NAMESPACE)
    set_lost_before(
        tuple(
            f"Ray ran the task again: its attempt {number} ({where}) died before it finished "
            "(worker process killed or crashed, or its node lost)"
            for number, where in enumerate(attempts, start=1)
        )
    )
    try:
        return call_safely(fn, item)
    finally:
        set_lost_before(())
