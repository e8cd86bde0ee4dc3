"""SIGKILL inside every step of a build, then resume: the final directory is an uninterrupted run's, byte for byte.

The local chain: `openpairs build` is killed inside extract (a WAT half read), dedup (candidates
partly written), download (a shard half fetched; a shard's tar committed but not its parquet), clip (a
shard half embedded; embeddings committed but not the parquet), filter and export (a part half
written), each run resuming the one before; then `openpairs index` is killed while adding vectors. Every
kill lands inside its work (the run froze at the crash point, tests/fault/harness.py), and each test
checks on disk that it did. The Ray chain kills the driver inside each kind of Ray task (RAY_POINTS);
the cluster outlives every killed driver, as a real one does.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openpairs.demo import wat_files
from openpairs.demo.miniweb import MiniWeb
from openpairs.executors.ray_cluster import on_loopback
from tests.e2e.chain import demo_settings
from tests.fault.harness import (
    Frozen,
    run_killed_at,
    run_to_end,
    run_with_worker_killed,
    temporaries,
    tree_digests,
)
from tests.fixtures.tiny_clip import tiny_checkpoint

COMPARED = ("extract", "candidates", "shards", "clip", "filter", "dataset", "index")
BUILD_POINTS = (
    "extract.file",
    "dedup.shard",
    "download.shard",
    "download.commit",
    "clip.shard",
    "clip.commit",
    "filter.shard",
    "export.part",
)
# On Ray the chain kills the driver inside the steps whose work runs as Ray tasks of each kind: a global
# shuffle (dedup's cut), a per-shard stage's commit, and an export part. Every point is killed in the
# local chain; a worker or node lost inside a Ray task is tests/executors/test_ray_cluster.py's.
RAY_POINTS = ("dedup.shard", "download.commit", "export.part")


def _exists(out: Path, pattern: str) -> bool:
    return any(out.glob(pattern))


def _name(index: int) -> str:
    return f"{index:05d}"


# What must be true on disk right after each kill: the named work had started and not finished.
LANDED: dict[str, Callable[[Path, Frozen], bool]] = {
    "extract.file": lambda out, f: (
        _exists(out, f"extract/{_name(f.index)}.parquet.tmp-*")
        and not _exists(out, f"extract/{_name(f.index)}_stats.json")
    ),
    "dedup.shard": lambda out, f: (
        _exists(out, f"candidates/{_name(f.index)}_stats.json") and not _exists(out, "candidates/_dedup.json")
    ),
    "download.shard": lambda out, f: not _exists(out, f"shards/{_name(f.index)}.*"),
    "download.commit": lambda out, f: (
        _exists(out, f"shards/{_name(f.index)}.tar") and not _exists(out, f"shards/{_name(f.index)}.parquet")
    ),
    "clip.shard": lambda out, f: not _exists(out, f"clip/**/{_name(f.index)}.*"),
    "clip.commit": lambda out, f: (
        _exists(out, f"clip/img_emb/{_name(f.index)}.npy")
        and not _exists(out, f"clip/{_name(f.index)}.parquet")
    ),
    "filter.shard": lambda out, f: (
        not _exists(out, f"filter/{_name(f.index)}_stats.json") and not _exists(out, "dataset")
    ),
    "export.part": lambda out, f: (
        _exists(out, f"dataset/*/part-{_name(f.index)}.parquet")
        and not _exists(out, "dataset/*/_manifest.json")
    ),
    "index.add": lambda out, f: _exists(out, "index/metadata.arrow") and not _exists(out, "index/index.json"),
}


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with MiniWeb() as mini:
        yield mini.url


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tiny_checkpoint(tmp_path_factory.mktemp("model"))


def _build(out: Path, mirror: str, checkpoint: str, executor: list[str]) -> list[str]:
    settings = [arg for s in demo_settings(mirror, checkpoint) for arg in ("--set", s)]
    return [
        sys.executable, "-m", "openpairs", "build", *wat_files(), "--out", str(out), *settings,
        "--export", "laion400m,webdataset", "--samples-per-shard", "64", "--workers", "2", *executor,
    ]  # fmt: skip


def _index(out: Path) -> list[str]:
    return [sys.executable, "-m", "openpairs", "index", str(out), "--text", "--tune-queries", "50"]


@dataclass(frozen=True)
class Reference:
    """An uninterrupted build + index: its directory and the digest of every compared file."""

    out: Path
    digests: dict[str, str]

    def under(self, folders: tuple[str, ...]) -> dict[str, str]:
        """The digests of the files under `folders` only."""
        return {name: digest for name, digest in self.digests.items() if name.split("/")[0] in folders}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, web: str, checkpoint: str) -> Reference:
    """Every compared file of an uninterrupted build + index (local executor)."""
    work = tmp_path_factory.mktemp("reference")
    out = work / "out"
    run_to_end(_build(out, web, checkpoint, []), work, "build")
    run_to_end(_index(out), work, "index")
    digests = tree_digests(out, COMPARED)
    assert {name.split("/")[0] for name in digests} == set(COMPARED)
    return Reference(out, digests)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray cluster that outlives every driver the tests start and kill, as a real one does."""
    import ray

    with on_loopback():  # our own, every process on 127.0.0.1
        context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def _killed_everywhere(
    work: Path, build: list[str], out: Path, points: tuple[str, ...] = BUILD_POINTS
) -> list[Frozen]:
    """Kill the build inside each step in turn (each run resumes the last), finish it, then the index."""
    landed = []
    for point in points:
        frozen = run_killed_at(build, point, work)
        assert LANDED[point](out, frozen), f"the kill at {frozen} did not land inside its work"
        landed.append(frozen)
    run_to_end(build, work, "build")
    frozen = run_killed_at(_index(out), "index.add", work)
    assert LANDED["index.add"](out, frozen), f"the kill at {frozen} did not land inside its work"
    landed.append(frozen)
    run_to_end(_index(out), work, "index")
    return landed


@pytest.mark.timeout(1800)
def test_local_build_killed_inside_every_step_resumes_to_the_same_bytes(
    tmp_path: Path, web: str, checkpoint: str, reference: Reference
) -> None:
    out = tmp_path / "out"
    landed = _killed_everywhere(tmp_path, _build(out, web, checkpoint, []), out)
    assert [f.point for f in landed] == [*BUILD_POINTS, "index.add"]
    assert temporaries(out) == []
    assert tree_digests(out, COMPARED) == reference.digests


@pytest.mark.timeout(1800)
def test_ray_build_killed_inside_every_step_resumes_to_the_same_bytes(
    tmp_path: Path, web: str, checkpoint: str, reference: Reference, ray_address: str
) -> None:
    out = tmp_path / "out"
    executor = ["--executor", "ray", "--ray-address", ray_address]
    landed = _killed_everywhere(tmp_path, _build(out, web, checkpoint, executor), out, RAY_POINTS)
    assert [f.point for f in landed] == [*RAY_POINTS, "index.add"]
    assert temporaries(out) == []
    assert tree_digests(out, COMPARED) == reference.digests


DOWNSTREAM = ("shards", "clip", "filter", "dataset")


def _from_candidates(reference: Reference, out: Path) -> Path:
    """A copy of the reference build with everything after dedup removed (the next build downloads)."""
    shutil.copytree(
        reference.out, out, ignore=shutil.ignore_patterns(*DOWNSTREAM, "index", "report", "_versions")
    )
    return out


def _worker_loss_counted(out: Path, frozen: Frozen, reference: Reference) -> None:
    """Every file equals the reference's but the stats of the shards the killed worker held (the frozen
    one, and any other it had taken on while that one drained), which count the loss and say why."""
    digests = tree_digests(out, DOWNSTREAM)
    expected = reference.under(DOWNSTREAM)
    assert digests.keys() == expected.keys()
    differing = [name for name in digests if digests[name] != expected[name]]
    assert f"shards/{_name(frozen.index)}_stats.json" in differing
    for name in differing:
        assert name.startswith("shards/") and name.endswith("_stats.json"), name
        lost, clean = json.loads((out / name).read_text()), json.loads((reference.out / name).read_text())
        assert lost["counters"].pop("worker_lost") == 1
        errors = lost.pop("errors")
        (reason,) = [message for message in errors if message.startswith("worker_lost: ")]
        said = ("exited with code -9", "WorkerCrashedError", "Ray ran the task again")  # pool, runner, Ray
        assert any(word in reason for word in said), reason
        del errors[reason]
        assert errors == clean.pop("errors") and lost == clean


@pytest.mark.timeout(900)
def test_local_worker_killed_mid_shard_is_run_again_and_counted(
    tmp_path: Path, web: str, checkpoint: str, reference: Reference
) -> None:
    out = _from_candidates(reference, tmp_path / "out")
    frozen = run_with_worker_killed(_build(out, web, checkpoint, []), "download.shard", tmp_path)
    assert not (out / "shards" / "failed_shards.jsonl").exists()
    _worker_loss_counted(out, frozen, reference)
