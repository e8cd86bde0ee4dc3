"""A cluster started with `ray start`, whose workers cannot import openpairs (a stand-in package that
refuses to load comes first on their path), runs an openpairs stage: the driver ships the package to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.extract.watfiles import DERIVED
from tests.fault.harness import tree_digests

RAY = str(Path(sys.executable).with_name("ray"))
REFUSAL = "openpairs is not installed on this node"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node `ray start --head` cluster on loopback whose workers find a refusing `openpairs` first."""
    shadow = tmp_path_factory.mktemp("shadow")
    (shadow / "openpairs").mkdir()
    (shadow / "openpairs" / "__init__.py").write_text(f"raise ImportError({REFUSAL!r})\n")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(shadow), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_until_up(port, head)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started (its own group)
        head.wait()


def _wait_until_up(port: int, head: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Wait until the head's GCS accepts connections (or the head ends, or 300 s pass)."""
    for _ in range(3000):
        assert head.poll() is None, "ray start --head ended"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("the head never listened")


def _driver(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a Python driver; RAY_AUTH_MODE=token: it sends the cluster's token (~/.ray/auth_token)."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def test_the_workers_cannot_import_openpairs_by_themselves(address: str) -> None:
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False)\n"
        "task = ray.remote(lambda: __import__('openpairs')).options(max_retries=0)\n"
        "try:\n    ray.get(task.remote())\nexcept Exception as error:\n    print(error)\n"
    )
    assert REFUSAL in _driver("-c", probe, address).stdout


def test_a_stage_runs_on_them_with_the_shipped_package(address: str, tmp_path: Path) -> None:
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    extract = ["-m", "openpairs", "extract", str(DERIVED), "--workers", "1"]
    done = _driver(*extract, "--out", str(ray_out), "--executor", "ray", "--ray-address", address)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _driver(*extract, "--out", str(local_out)).returncode == 0
    compared = ("extract", "candidates")
    assert tree_digests(ray_out, compared) == tree_digests(local_out, compared) != {}
