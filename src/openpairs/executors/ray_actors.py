"""Ray actor pool: stages that load a model run on long-lived actors, so each loads it once.

Each actor holds the stage's resources for the whole stage (`num_gpus`, fractions allowed: Ray then
sets its CUDA_VISIBLE_DEVICES to the GPU it was given; `num_cpus`, which bound its decode threads). The
pool has as many actors as the alive nodes hold, node by node (optionally capped), recounted as nodes
join and leave. Each actor has at most `WINDOW_PER_ACTOR` items in flight (one running, the next
queued); the other items stay plain items in the driver. An actor that dies fails only the items it
held, with WorkerLost (the runner runs them again), and a new actor takes its place.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpairs.executors import (
    ActorRequest,
    ClusterRefused,
    ExecutorConfig,
    WorkerLost,
    call_safely,
)
from openpairs.executors.ray import SLOTS_EVERY_SECONDS, alive_nodes, join, node_fits, slots

WINDOW_PER_ACTOR = 2  # items in flight per actor: one running, one waiting so the actor never idles


class ModelWorker:
    """One actor of the pool: runs the items it is handed, one at a time, in one process that keeps what
    they load (the model cache of stages/clip_models.py)."""

    def __init__(self, num_gpus: float) -> None:
        if num_gpus == 0:  # an actor that asked for no GPU must not take one from those that did
            os.environ["CUDA_VISIBLE_DEVICES"] = ""

    def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
        """fn(item), or the exception it raised."""
        return call_safely(fn, item)


@dataclass
class _Actor:
    handle: Any
    held: set[Any] = field(default_factory=set)  # refs of the items in flight on it


class RayActorPool:
    """Maps a function over items on a pool of Ray actors, each holding `request`'s resources."""

    def __init__(self, config: ExecutorConfig, request: ActorRequest, out: str | None = None) -> None:
        import ray

        self._ray = ray
        self._started_here = join(config, out)
        self._request = request
        self._resources = request.resources()
        self._actors: list[_Actor] = []
        self._remote = ray.remote(ModelWorker).options(**self._resources, max_restarts=0, max_task_retries=0)

    def size(self) -> int:
        """How many actors the pool aims for now: what the alive nodes hold, capped by max_actors."""
        fit = slots(self._resources)
        return min(fit, self._request.max_actors) if self._request.max_actors > 0 else fit

    def imap(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result-or-exception) as items finish; an item whose actor died yields WorkerLost."""
        if not items:
            return
        target = self.size()
        if target == 0:
            raise no_node_holds(self._resources)
        function = self._ray.put(fn)  # sent once, not with every item
        todo = deque(range(len(items)))
        pending: dict[Any, tuple[int, _Actor]] = {}
        counted = time.monotonic()
        while todo or pending:
            self._grow(min(target, len(todo) + len(pending)))
            yield from self._hand_out(function, items, todo, pending)
            if not pending:
                continue  # every item handed out this round was one Ray could not send
            ready, _ = self._ray.wait(list(pending), num_returns=1, timeout=SLOTS_EVERY_SECONDS)
            for ref in ready:
                position, actor = pending.pop(ref)
                actor.held.discard(ref)
                yield position, self._outcome(ref, actor)
            if time.monotonic() - counted > SLOTS_EVERY_SECONDS:
                target, counted = max(1, self.size()), time.monotonic()

    def _grow(self, wanted: int) -> None:
        """Start actors until the pool has `wanted` (they load their model on their first item)."""
        while len(self._actors) < wanted:
            self._actors.append(_Actor(self._remote.remote(self._request.num_gpus)))

    def _hand_out(
        self, function: Any, items: Sequence[Any], todo: deque[int], pending: dict[Any, tuple[int, _Actor]]
    ) -> Iterator[tuple[int, BaseException]]:
        """Give items one by one to the least busy actor with room (so every actor gets work before any
        gets a second item); yield the items Ray cannot send."""
        while todo and self._actors:
            actor = min(self._actors, key=lambda a: len(a.held))
            if len(actor.held) >= WINDOW_PER_ACTOR:
                return
            position = todo.popleft()
            try:
                ref = actor.handle.run.remote(function, items[position])
            except Exception as exc:  # an item Ray cannot send: its own failure, as in the pool
                yield position, exc
                continue
            actor.held.add(ref)
            pending[ref] = (position, actor)

    def _outcome(self, ref: Any, actor: _Actor) -> Any:
        """The item's result; WorkerLost when its actor died (the actor leaves the pool: a new one
        replaces it when the pool next grows)."""
        try:
            return self._ray.get(ref)
        except Exception as exc:  # call_safely returns the item's own errors: the actor or its node died
            if actor in self._actors:
                self._actors.remove(actor)
                with contextlib.suppress(Exception):  # already dead: nothing left to stop
                    self._ray.kill(actor.handle, no_restart=True)
            return WorkerLost(f"the actor running this item died: {type(exc).__name__}: {exc}"[:2000])

    def close(self) -> None:
        """Stop the actors; stop the local Ray this pool started (a given cluster is left running)."""
        if self._ray.is_initialized():
            for actor in self._actors:
                self._ray.kill(actor.handle, no_restart=True)
        self._actors = []
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def no_node_holds(resources: dict[str, float]) -> ClusterRefused:
    """The refusal of a pool whose actor no alive node can hold (it would wait forever)."""
    have = [node.get("Resources", {}) for node in alive_nodes()]
    return ClusterRefused(
        f"no node of the Ray cluster can hold one actor ({resources}); its nodes have {have}"
    )


@dataclass(frozen=True)
class NodeOutcome:
    """What a function returned (or raised) on one node."""

    node_id: str
    address: str
    outcome: Any


def run_on_each_node(
    config: ExecutorConfig, fn: Callable[[Any], Any], item: Any, request: ActorRequest
) -> list[NodeOutcome]:
    """fn(item) once on every alive node that can hold one actor of `request` (pinned to the node, asking
    for no resources of its own), joining the cluster `config` names; [] when no cluster is named or
    joined (a local Ray would be this machine). ClusterRefused when no node can hold one actor."""
    if config.kind != "ray":
        return []
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not (config.ray_address or ray.is_initialized()):
        return []
    join(config, None)
    nodes = [node for node in alive_nodes() if node_fits(request.resources(), node.get("Resources", {})) > 0]
    if not nodes:
        raise no_node_holds(request.resources())
    remote = ray.remote(call_safely)
    refs = [
        remote.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(fn, item)
        for node in nodes
    ]
    outcomes = []
    for node, ref in zip(nodes, refs, strict=True):
        try:
            outcome = ray.get(ref)
        except Exception as exc:  # the node died or could not run the task
            outcome = WorkerLost(f"{type(exc).__name__}: {exc}"[:2000])
        outcomes.append(NodeOutcome(node["NodeID"], str(node.get("NodeManagerAddress", "")), outcome))
    return outcomes
