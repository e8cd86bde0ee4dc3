"""Kill a run inside named work: start it with a crash point set, wait until it freezes there, SIGKILL.

The product freezes at the crash point (openpairs.core.crashpoints) and says so in the crash log, so the
kill always lands inside the named work, never before or after it, however loaded the machine is: no
timer decides anything here (the loop below only waits for the frozen process to report).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openpairs.core.crashpoints import ENV_LOG, ENV_POINT

WAIT_SECONDS = 600.0  # how long a run may take to reach its point before the test gives up


@dataclass(frozen=True)
class Frozen:
    """Where a run froze: the point, its index (shard, part, row) and the process that froze."""

    point: str
    index: int
    pid: int


def start(command: list[str], log: Path, stderr: Path, env: dict[str, str] | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start `command` in its own process group, its stderr to a file."""
    with stderr.open("ab") as errors:
        return subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def wait_frozen(process: subprocess.Popen, log: Path, point: str, stderr: Path) -> Frozen:  # type: ignore[type-arg]
    """Wait until the run reports it froze at `point`; fail if it ends or never gets there."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (record := _record(log, point)) is None:
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            tail = stderr.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the run never reached crash point {point} (exit {code}):\n{tail}")
        time.sleep(0.05)
    return record


def kill_group(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """SIGKILL the run's whole process group (the driver and its local workers) and reap it."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def owned(process: subprocess.Popen) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """Kill the run's process group if the block fails (a test's timeout too): no frozen or hung run
    outlives its test."""
    try:
        yield process
    except BaseException:
        kill_group(process)
        raise


def run_killed_at(command: list[str], point: str, workdir: Path) -> Frozen:
    """Run `command` until it freezes inside `point`, then SIGKILL its process group."""
    log, stderr = workdir / f"crash-{point}.jsonl", workdir / f"stderr-{point}.txt"
    with owned(start(command, log, stderr, {ENV_POINT: point, ENV_LOG: str(log)})) as process:
        frozen = wait_frozen(process, log, point, stderr)
    kill_group(process)
    return frozen


def run_with_worker_killed(command: list[str], point: str, workdir: Path) -> Frozen:
    """Run `command` until a worker freezes inside `point`, SIGKILL that worker alone, and let the run
    finish (it must succeed: the executor runs the lost task again)."""
    log, stderr = workdir / f"crash-worker-{point}.jsonl", workdir / f"stderr-worker-{point}.txt"
    with owned(start(command, log, stderr, {ENV_POINT: point, ENV_LOG: str(log)})) as process:
        frozen = wait_frozen(process, log, point, stderr)
        assert frozen.pid != process.pid, f"{point} froze in the driver ({frozen.pid}), not in a worker"
        os.kill(frozen.pid, signal.SIGKILL)
        code = process.wait(timeout=WAIT_SECONDS)
    assert code == 0, (
        f"the run with its worker killed exited {code}:\n{stderr.read_text(errors='replace')[-3000:]}"
    )
    return frozen


def run_to_end(command: list[str], workdir: Path, name: str = "final") -> None:
    """Run `command` to its end; it must succeed."""
    stderr = workdir / f"stderr-{name}.txt"
    with owned(start(command, workdir / "unused.jsonl", stderr)) as process:
        code = process.wait(timeout=WAIT_SECONDS)
    assert code == 0, (
        f"{' '.join(command[:5])} … exited {code}:\n{stderr.read_text(errors='replace')[-3000:]}"
    )


def _record(log: Path, point: str) -> Frozen | None:
    """The frozen run's record for `point` (`POINT` or `POINT:INDEX`), once it has written one."""
    if not log.exists():
        return None
    name, _, index = point.partition(":")
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["point"] == name and (not index or int(entry["index"]) == int(index)):
            return Frozen(entry["point"], int(entry["index"]), int(entry["pid"]))
    return None


def tree_digests(out: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file under each of `folders` of `out`, by path relative to `out`."""
    digests = {}
    for folder in folders:
        for path in sorted((out / folder).rglob("*")):
            if path.is_file():
                digests[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def temporaries(out: Path) -> list[str]:
    """Temporary files (openpairs's `.tmp-` names and index `.tmp` files) left anywhere under `out`."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if ".tmp" in p.name)
