"""Executors map a stage's `run_shard` over shard tasks; stages never know which one runs them."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True)
class ExecutorConfig:
    """How shards are run: `local` process pool or a `ray` cluster."""

    kind: ExecutorKind = "local"
    workers: int = 0  # 0: one per core
    ray_address: str | None = None
    retries: int = 1  # extra attempts for a shard that raised
    shared_out: bool = False  # a local --out is a shared filesystem, mounted at the same place on every node

    def worker_count(self) -> int:
        """Resolved number of workers (cores when unset)."""
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


@dataclass(frozen=True)
class ActorRequest:
    """A stage that loads a model: on Ray it runs on a pool of long-lived actors, each holding these
    resources (GPU fractions allowed: 0.5 puts two actors on one GPU); the local pool ignores it."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_actors: int = 0  # 0: as many as the cluster's nodes hold

    def resources(self) -> dict[str, float]:
        """What one actor asks Ray for."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}


Resources = dict[str, float] | ActorRequest


class Executor(Protocol):
    """Runs `fn(item)` for every item, yielding (position, result or exception) as they finish."""

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Results in completion order, as (index into items, result)."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


class ClusterRefused(ValueError):
    """The cluster cannot run this work as asked (an --out its workers cannot all see, a task no node
    can run); said before any task starts."""


class WorkerLost(RuntimeError):
    """The process (or node) running a task died before the task finished; the task itself never failed."""


def call_safely(fn: Callable[[Any], Any], item: Any) -> Any:
    """fn(item), or the exception it raised: a failed shard is reported, it never crashes the driver."""
    try:
        return fn(item)
    except Exception as exc:
        return exc


_task = threading.local()
_cpus_per_task: list[int] = []  # set in a local pool's worker processes: cores // workers


def set_task_cpus(cpus: int) -> None:
    """Say how many CPUs each task of this process may use (the local pool's workers call it at start)."""
    _cpus_per_task[:] = [max(1, cpus)]


def task_cpus() -> int:
    """How many CPUs the task running in this process may use: in a Ray worker or actor, the CPUs Ray
    assigned it (at least 1); in a local pool's worker, cores // workers; elsewhere, every core."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)))
    if _cpus_per_task:
        return _cpus_per_task[0]
    return os.cpu_count() or 1


def task_threads(asked: int = 0) -> int:
    """Threads for a task's parallel work: `asked` (0: as many as its CPUs), never more than its CPUs."""
    cpus = task_cpus()
    return min(asked, cpus) if asked > 0 else cpus


def worker_place() -> dict[str, str]:
    """Where this task runs: process id, Ray node id ("" outside Ray) and the CUDA_VISIBLE_DEVICES it sees
    ("unset" when the variable is not set: every GPU is visible)."""
    node = ""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    return {
        "pid": str(os.getpid()),
        "node": node,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
    }


def draining() -> None:
    """Tell the executor this task now only waits (say, on slow hosts): the local pool may start the
    next task in the same process. A no-op elsewhere (in-process runs, Ray)."""
    hook = getattr(_task, "draining", None)
    if hook is not None:
        _task.draining = None  # once per task
        hook()


def set_draining_hook(hook: Callable[[], None] | None) -> None:
    """Set (or clear) what `draining()` calls in the current thread; the local pool's workers use it."""
    _task.draining = hook


def lost_before() -> tuple[str, ...]:
    """Why earlier attempts of the task running in this thread died, when the executor itself ran it again
    (Ray's own retries); () when none did, and in every other executor (the runner resubmits those)."""
    return getattr(_task, "lost", ())


def set_lost_before(reasons: tuple[str, ...]) -> None:
    """Set what `lost_before()` answers in the current thread; the Ray executor's tasks use it."""
    _task.lost = reasons


def make_executor(
    config: ExecutorConfig, resources: Resources | None = None, out: str | None = None
) -> Executor:
    """The executor named by `config` (Ray is imported only when asked for); the local one ignores
    `resources`. On Ray an ActorRequest runs the items on an actor pool, other resources are given to
    every task; both refuse an `out` their workers cannot all see."""
    if config.kind == "ray":
        if isinstance(resources, ActorRequest):
            from openpairs.executors.ray_actors import RayActorPool

            return RayActorPool(config, resources, out)
        from openpairs.executors.ray import RayExecutor

        return RayExecutor(config, resources or {}, out)
    from openpairs.executors.local import LocalExecutor

    return LocalExecutor(config)
