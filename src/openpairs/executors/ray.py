"""Ray executor: one Ray task per shard, on a given cluster or on a local Ray started for the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from openpairs.core.crashpoints import forwarded_environment
from openpairs.executors import ExecutorConfig, WorkerLost, call_safely


class RayExecutor:
    """Maps a function over items as Ray tasks, `resources` per task (e.g. {"num_cpus": 1})."""

    def __init__(self, config: ExecutorConfig, resources: dict[str, float]) -> None:
        import ray

        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            runtime_env = {"env_vars": forwarded_environment()}
            if config.ray_address:
                ray.init(address=config.ray_address, log_to_driver=False, runtime_env=runtime_env)
            else:
                ray.init(
                    num_cpus=config.worker_count(),
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env=runtime_env,
                )
                self._started_here = True
        self._resources = {"num_cpus": 1.0, **resources}

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as Ray tasks finish; a task whose worker or node died
        yields WorkerLost (the runner decides whether to run it again)."""
        remote = self._ray.remote(call_safely).options(**self._resources, max_retries=0)
        pending = {remote.remote(fn, item): i for i, item in enumerate(items)}
        while pending:
            done, _ = self._ray.wait(list(pending), num_returns=1)
            for ref in done:
                position = pending.pop(ref)
                try:
                    yield position, self._ray.get(ref)
                except Exception as exc:  # call_safely returns task errors: this is the worker or node
                    yield position, WorkerLost(f"{type(exc).__name__}: {exc}"[:2000])

    def close(self) -> None:
        """Stop the local Ray this executor started (a given cluster is left running)."""
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
