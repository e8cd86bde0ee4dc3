"""The local Ray openpairs starts: every socket of its processes on loopback; the window and its refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from openpairs.executors import ActorRequest, ClusterRefused, ExecutorConfig, make_executor
from openpairs.executors.ray import RayExecutor
from openpairs.executors.ray_cluster import LOOPBACK_SWITCH, unshared_out_error


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    """A RayExecutor that started its own local Ray (2 CPUs)."""
    import ray

    assert not ray.is_initialized(), "another test left Ray connected: this one must start its own"
    started = RayExecutor(ExecutorConfig(kind="ray", workers=2), {})
    try:
        yield started
    finally:
        started.close()


def _listening(processes: list) -> list[tuple[str, str, int]]:  # type: ignore[type-arg]
    """(process name, address, port) of every TCP socket these processes listen on."""
    import psutil  # Ray's own copy (ray/thirdparty_files), on the path once ray is imported

    found = []
    for process in processes:
        try:
            sockets = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [
            (process.name(), s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN
        ]
    return found


def test_a_local_ray_listens_on_loopback_only(executor: RayExecutor) -> None:
    import psutil
    import ray

    pids = dict(executor.imap(lambda _: os.getpid(), range(4)))
    assert len(pids) == 4  # workers ran: they, the raylet and the GCS are children of this process
    me = psutil.Process()
    sockets = _listening([me, *me.children(recursive=True)])
    names = {name for name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # not vacuous: Ray's own servers are in the list
    assert any(name.startswith("ray::") for name in names), sockets  # and its workers
    exposed = [s for s in sockets if s[1] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    assert exposed == [], f"Ray processes listening beyond loopback: {exposed}"
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert LOOPBACK_SWITCH not in os.environ  # the process itself may still join a cluster on the network


def test_a_long_sequence_runs_through_the_window_in_order_of_positions(executor: RayExecutor) -> None:
    assert executor.slots() == 2
    results = dict(executor.imap(lambda n: n * n, range(300)))
    assert results == {n: n * n for n in range(300)}


def test_a_large_window_collects_results_in_lingering_sweeps(
    executor: RayExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpairs.executors import ray as ray_executor

    monkeypatch.setattr(ray_executor, "LARGE_WINDOW", 1)  # (256 in production) this window of 4 lingers
    assert executor._window() > ray_executor.LARGE_WINDOW
    results = dict(executor.imap(lambda n: -n, range(40)))
    assert results == {n: -n for n in range(40)}


def test_an_item_ray_cannot_send_fails_alone(executor: RayExecutor) -> None:
    import threading

    results = dict(executor.imap(str, [1, threading.Lock(), 3]))
    assert results[0] == "1" and results[2] == "3"
    assert isinstance(results[1], Exception) and "lock" in str(results[1]).lower()


def test_a_task_no_node_can_run_is_refused_not_left_waiting(executor: RayExecutor) -> None:
    from openpairs.stages.clip import ClipConfig

    gpu = RayExecutor(
        ExecutorConfig(kind="ray", workers=2), {"num_gpus": 1}
    )  # joins the running (CPU-only) Ray
    with pytest.raises(ValueError, match="no node of the Ray cluster has what one task needs"):
        list(gpu.imap(str, [1]))
    declared = ClipConfig(device="cuda").resources()  # what build and `openpairs clip` pass to run_stage
    assert declared == ActorRequest(num_cpus=4, num_gpus=1)
    pool = make_executor(ExecutorConfig(kind="ray", workers=2), declared)
    with pytest.raises(ClusterRefused, match="no node of the Ray cluster can hold one actor"):
        list(pool.imap(str, [1]))


def test_a_local_out_is_refused_when_a_node_is_another_machine() -> None:
    here, other = "10.0.0.1", "10.0.0.2"
    error = unshared_out_error("/data/out", False, [here, other], here)
    assert error is not None and "10.0.0.2" in error and "--shared-out" in error and "s3://" in error
    assert unshared_out_error("/data/out", True, [here, other], here) is None  # said to be shared
    assert unshared_out_error("s3://bucket/out", False, [here, other], here) is None
    assert unshared_out_error("/data/out", False, [here, "127.0.0.1"], here) is None  # all this machine
