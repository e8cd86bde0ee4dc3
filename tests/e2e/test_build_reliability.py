"""`openpairs build` SIGKILLed at random moments and re-run ends with the dataset an uninterrupted run makes.

Same keys, same bytes, same metadata: every file under DIR/dataset is compared by sha256, on the local
executor and on a local Ray cluster (started by the test; the killed builds attach to it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpairs.demo import wat_files
from openpairs.demo.miniweb import MiniWeb
from tests.e2e.chain import dataset_digests, demo_settings
from tests.fixtures.tiny_clip import tiny_checkpoint

KILLS = 3


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with MiniWeb() as mini:
        yield mini.url


def _command(out: Path, mirror: str, checkpoint: str, executor: list[str]) -> list[str]:
    settings = [arg for s in demo_settings(mirror, checkpoint) for arg in ("--set", s)]
    return [
        sys.executable,
        "-m",
        "openpairs",
        "build",
        *wat_files(),
        "--out",
        str(out),
        *settings,
        "--export",
        "laion400m,webdataset",
        "--samples-per-shard",
        "64",
        "--workers",
        "2",
        *executor,
    ]


def _run(command: list[str], kill_after: float | None) -> int | None:
    """Run the build in its own process group; SIGKILL the whole group after `kill_after` seconds."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        return process.wait(timeout=kill_after if kill_after is not None else 600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def _killed_then_finished(out: Path, command: list[str], seed: int) -> dict[str, str]:
    chance = random.Random(seed)
    for _ in range(KILLS):
        if _run(command, kill_after=chance.uniform(2.0, 20.0)) == 0:
            break  # it finished before the kill: later runs only resume
    assert _run(command, kill_after=None) == 0
    assert not list(out.rglob("*.tmp-*"))
    return dataset_digests(str(out))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, web: str) -> tuple[dict[str, str], str]:
    root = tmp_path_factory.mktemp("reference")
    checkpoint = tiny_checkpoint(root)
    out = root / "out"
    assert _run(_command(out, web, checkpoint, []), kill_after=None) == 0
    digests = dataset_digests(str(out))
    assert any(name.endswith(".tar") for name in digests) and any(
        name.endswith(".parquet") for name in digests
    )
    return digests, checkpoint


def test_killed_local_builds_resume_to_the_same_dataset(tmp_path: Path, web: str, reference) -> None:
    digests, checkpoint = reference
    out = tmp_path / "out"
    assert _killed_then_finished(out, _command(out, web, checkpoint, []), seed=1) == digests


def test_killed_ray_builds_resume_to_the_same_dataset(tmp_path: Path, web: str, reference) -> None:
    import ray

    digests, checkpoint = reference
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "out"
        executor = ["--executor", "ray", "--ray-address", context.address_info["gcs_address"]]
        started = time.monotonic()
        assert _killed_then_finished(out, _command(out, web, checkpoint, executor), seed=2) == digests
        assert time.monotonic() - started < 900
    finally:
        ray.shutdown()
