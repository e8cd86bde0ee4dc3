"""The local process pool: results by position, draining tasks share a worker, crashes and orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openpairs.executors import draining
from openpairs.executors.pool import DrainingPool, WorkerDied


def _square_or_fail(value: int) -> int:
    if value == 3:
        raise ValueError("three is refused")
    return value * value


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


def _drain_then_wait(job: tuple[str, str, bool]) -> tuple[int, bool]:
    """Role 'first': (maybe) report draining, then wait for the second task's mark; 'second': write it."""
    role, mark, report = job
    if role == "second":
        Path(mark).write_text("started")
        return os.getpid(), True
    if report:
        draining()
    return os.getpid(), _wait_for(Path(mark), 3.0)


def _exit_or_sleep(value: int) -> int:
    if value == 1:
        os._exit(7)
    time.sleep(0.3)
    return value


def _hold(path: str) -> None:
    written = Path(f"{path}.tmp")
    written.write_text(str(os.getpid()))
    written.replace(path)  # whole or absent: the test reads it as soon as it exists
    time.sleep(120)


def _map(workers: int, fn: Callable[[Any], Any], items: list[Any]) -> dict[int, Any]:
    """Every result of one imap over a fresh pool, by position."""
    pool = DrainingPool(workers)
    try:
        return dict(pool.imap(fn, items))
    finally:
        pool.close()


def _first_and_second(tmp_path: Path, report: bool) -> dict[int, tuple[int, bool]]:
    """Two tasks on one worker: the first (maybe draining) waits for the second to start."""
    mark = str(tmp_path / "second-started")
    return _map(1, _drain_then_wait, [("first", mark, report), ("second", mark, report)])


def test_results_and_exceptions_come_back_by_position() -> None:
    pool = DrainingPool(2)
    try:
        results = dict(pool.imap(_square_or_fail, list(range(8))))
        again = dict(pool.imap(_square_or_fail, [5, 6]))  # the pool is reused
    finally:
        pool.close()
    assert isinstance(results.pop(3), ValueError)
    assert results == {i: i * i for i in range(8) if i != 3}
    assert again == {0: 25, 1: 36}


def test_a_draining_task_lets_the_next_one_start_in_the_same_worker(tmp_path: Path) -> None:
    results = _first_and_second(tmp_path, report=True)
    (first_pid, saw_second), (second_pid, _) = results[0], results[1]
    assert saw_second  # the second task ran while the first was still waiting
    assert first_pid == second_pid


def test_a_task_that_does_not_drain_keeps_its_worker_to_itself(tmp_path: Path) -> None:
    results = _first_and_second(tmp_path, report=False)
    assert results[0][1] is False  # waited its 3 s alone: the second started only after it
    assert results[1][1] is True


def test_a_dead_worker_fails_only_its_task_and_is_replaced() -> None:
    results = _map(2, _exit_or_sleep, [0, 1, 2, 3, 4])
    assert isinstance(results[1], WorkerDied)
    assert "code 7" in str(results[1])
    assert {k: v for k, v in results.items() if k != 1} == {0: 0, 2: 2, 3: 3, 4: 4}


def test_an_unpicklable_task_fails_alone() -> None:
    results = _map(2, _square_or_fail, [2, lambda: 0, 4])
    assert isinstance(results[1], Exception)
    assert (results[0], results[2]) == (4, 16)


DRIVER = """
import sys
from openpairs.executors.pool import DrainingPool
from tests.unit.test_pool import _hold
pool = DrainingPool(2)
for _ in pool.imap(_hold, [sys.argv[1], sys.argv[2]]):
    pass
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="orphan check uses getppid")
def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    marks = [tmp_path / "a.pid", tmp_path / "b.pid"]
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", DRIVER, *map(str, marks)]
    driver = subprocess.Popen(command, cwd=root, stderr=subprocess.DEVNULL)  # its semaphores leak: killed
    try:
        assert all(_wait_for(mark, 60.0) for mark in marks)
        pids = [int(mark.read_text()) for mark in marks]
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    return status not in ("Z", "X")


class _Interrupted(Exception):
    """Stands for Ctrl-C in the driver (raised by a timer signal while it waits for results)."""


def test_closing_after_an_interrupt_stops_busy_workers_at_once(tmp_path: Path) -> None:
    mark = tmp_path / "held.pid"

    def interrupt(signum: int, frame: object) -> None:
        if mark.exists():  # the held task is running
            raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
    pool = DrainingPool(1)
    try:
        with pytest.raises(_Interrupted):
            list(pool.imap(_hold, [str(mark)]))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        held = int(mark.read_text())
        assert _alive(held)
        started = time.monotonic()
        pool.close()  # what the runner does on Ctrl-C: the held task is not waited for
    assert time.monotonic() - started < 5
    assert not _alive(held)
