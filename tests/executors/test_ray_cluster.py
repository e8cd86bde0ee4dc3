"""A stage on a 3-node Ray cluster (ray.cluster_utils.Cluster, on this machine) whose node is removed, or
whose worker is killed, inside a task: the stage completes, its output is byte for byte a local run's,
and the lost attempt is counted in the shard's stats.

The task freezes at the `extract.file` crash point (tests/fault/harness.py), so the removal and the kill
provably land inside its work; Ray reruns it on a surviving worker (the point fires once per log).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openpairs.core.crashpoints import ENV_LOG, ENV_POINT
from openpairs.executors import ExecutorConfig
from openpairs.executors.ray_cluster import on_loopback
from openpairs.presets import stage_config
from openpairs.stages.dedup import DedupConfig
from openpairs.stages.extract import ExtractConfig
from openpairs.stages.extract_run import ExtractOutcome, run_extract
from tests.extract.watfiles import DERIVED, FRAGMENT_0, FRAGMENT_1, WAT_2014
from tests.fault.harness import Frozen, tree_digests, wait_frozen

INPUTS = [str(DERIVED), str(FRAGMENT_1), str(WAT_2014), str(FRAGMENT_0)]
FOLDERS = ("extract", "candidates")


def _extract(out: Path, executor: ExecutorConfig) -> ExtractOutcome:
    rules = stage_config(ExtractConfig, "extract", "laion5b", relative_urls="resolve")
    dedup = stage_config(DedupConfig, "dedup", "laion5b", shard_size=200)
    return run_extract(INPUTS, str(out), rules, dedup, executor)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert _extract(out, ExecutorConfig(kind="local", workers=1)).extract.ok
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head that runs no tasks and two 1-CPU worker nodes."""
    from ray.cluster_utils import Cluster

    with on_loopback():  # every process of the cluster on 127.0.0.1
        made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for _ in range(2):
            made.add_node(num_cpus=1)
        made.wait_for_nodes()
    assert {node.node_ip_address for node in made.list_all_nodes()} == {"127.0.0.1"}
    try:
        yield made
    finally:
        made.shutdown()


class FrozenRun:
    """The extract stage running on the cluster in a thread, until a task freezes at extract.file:1."""

    def __init__(self, cluster: Any, out: Path, log: Path) -> None:
        import ray

        with on_loopback():  # the cluster is on 127.0.0.1: the driver must look for its raylet there
            ray.init(
                address=cluster.address,
                runtime_env={"env_vars": {ENV_POINT: "extract.file:1", ENV_LOG: str(log)}},
            )
        self.outcome: list[ExtractOutcome] = []
        self._thread = threading.Thread(
            target=lambda: self.outcome.append(_extract(out, ExecutorConfig(kind="ray"))), daemon=True
        )
        self._thread.start()
        self.frozen = wait_frozen(_Alive(self._thread), log, "extract.file", log.with_suffix(".txt"))

    def finish(self) -> ExtractOutcome:
        """Wait for the stage to end; disconnect from the cluster."""
        import ray

        self._thread.join(timeout=600)
        ray.shutdown()
        assert self.outcome, "the stage did not finish"
        return self.outcome[0]


class _Alive:
    """What wait_frozen polls: `poll()` is None while the stage's thread runs."""

    def __init__(self, thread: threading.Thread) -> None:
        self._thread = thread

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else 0


def _node_of(cluster: Any, pid: int) -> Any:
    """The worker node whose raylet started the process `pid`."""
    import psutil

    ancestors = {parent.pid for parent in psutil.Process(pid).parents()}
    for node in cluster.worker_nodes:
        if any(info.process.pid in ancestors for info in node.all_processes["raylet"]):
            return node
    raise AssertionError(f"process {pid} is under no worker node's raylet")


def _same_as_local_but_the_loss(out: Path, reference: Path, frozen: Frozen) -> str:
    """Every file equals the local run's but the frozen shard's stats, which count one lost attempt and
    say why; returns that reason."""
    digests, expected = tree_digests(out, FOLDERS), tree_digests(reference, FOLDERS)
    assert digests.keys() == expected.keys()
    lost_name = f"extract/{frozen.index:05d}_stats.json"
    assert [name for name in digests if digests[name] != expected[name]] == [lost_name]
    lost, clean = json.loads((out / lost_name).read_text()), json.loads((reference / lost_name).read_text())
    assert lost["counters"].pop("worker_lost") == 1
    (reason,) = [message for message in lost.pop("errors") if message.startswith("worker_lost: ")]
    del clean["errors"]
    assert lost == clean
    return reason


def _release(pid: int) -> None:
    """Kill a frozen process that outlived its node (it would sleep forever)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(600)
def test_a_node_removed_inside_a_task_is_rerun_elsewhere(
    cluster: Any, reference: Path, tmp_path: Path
) -> None:
    run = FrozenRun(cluster, tmp_path / "out", tmp_path / "crash.jsonl")
    node = _node_of(cluster, run.frozen.pid)
    cluster.remove_node(node, allow_graceful=False)
    try:
        outcome = run.finish()
    finally:
        _release(run.frozen.pid)
        with on_loopback():
            cluster.add_node(num_cpus=1)  # the next test has two worker nodes again
    assert outcome.extract.ok and run.frozen.index == 1
    reason = _same_as_local_but_the_loss(tmp_path / "out", reference, run.frozen)
    assert f"pid {run.frozen.pid} on node {node.node_id[:12]}" in reason


@pytest.mark.timeout(600)
def test_a_worker_killed_inside_a_task_is_rerun(cluster: Any, reference: Path, tmp_path: Path) -> None:
    run = FrozenRun(cluster, tmp_path / "out", tmp_path / "crash.jsonl")
    os.kill(run.frozen.pid, signal.SIGKILL)
    outcome = run.finish()
    assert outcome.extract.ok and run.frozen.index == 1
    reason = _same_as_local_but_the_loss(tmp_path / "out", reference, run.frozen)
    assert f"pid {run.frozen.pid} on node" in reason
