"""The clip stage on Ray actor pools, on a 3-node `ray.cluster_utils.Cluster` on loopback: a head with
CPUs only, a node with two fake GPUs and a node with one. The model is the tiny RANDOM-weight CLIP on CPU
(fake GPUs are Ray resources: the actors hold them and see their ids, the model never touches them); the
input is the download output of the session's pipeline build (tests/fixtures/pipeline_build.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.core.stats import ShardStats
from openpairs.executors import ActorRequest, ExecutorConfig, WorkerLost, task_cpus, worker_place
from openpairs.executors.local import LocalExecutor
from openpairs.executors.ray import node_fits
from openpairs.executors.ray_actors import RayActorPool
from openpairs.executors.ray_cluster import on_loopback
from openpairs.stages import clip
from openpairs.stages.runner import StageResult, run_stage
from tests.fault.harness import tree_digests
from tests.fixtures.pipeline_output import PipelineOutput
from tests.fixtures.tiny_clip import TINY_MODEL, tiny_checkpoint

MODELS_VAR = "OPENPAIRS_TEST_MODELS"  # where each node keeps its model files (a per-node environment)


@dataclasses.dataclass
class Nodes:
    """The cluster and its nodes' ids."""

    cluster: Any
    head: str
    two_gpus: str
    one_gpu: str
    empty: Path  # the one-GPU node's models folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny checkpoint (the nodes that have it point MODELS_VAR here)."""
    folder = tmp_path_factory.mktemp("models")
    tiny_checkpoint(folder)
    return folder


@pytest.fixture(scope="module")
def nodes(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Head: 1 CPU, no GPU. Then 2 CPUs + 2 GPUs, and 2 CPUs + 1 GPU whose MODELS_VAR is an empty folder."""
    from ray.cluster_utils import Cluster

    empty = tmp_path_factory.mktemp("no-models")
    with on_loopback():  # every process of the cluster on 127.0.0.1
        made = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "include_dashboard": False, "env_vars": {MODELS_VAR: str(models)}},
        )
        two = made.add_node(num_cpus=2, num_gpus=2, env_vars={MODELS_VAR: str(models)})
        one = made.add_node(num_cpus=2, num_gpus=1, env_vars={MODELS_VAR: str(empty)})
        made.wait_for_nodes()
    try:
        yield Nodes(made, made.head_node.node_id, two.node_id, one.node_id, empty)
    finally:
        made.shutdown()


@pytest.fixture
def on_cluster(nodes: Nodes) -> Iterator[ExecutorConfig]:
    """The executor settings joining the cluster (the product connects); disconnects afterwards."""
    import ray

    yield ExecutorConfig(kind="ray", ray_address=nodes.cluster.address)
    ray.shutdown()


def _config(models: Path, **fields: Any) -> clip.ClipConfig:
    checkpoint = str(models / "tiny-random.pt")
    base = clip.ClipConfig(model=TINY_MODEL, pretrained=None, checkpoint=checkpoint, device="cpu", threads=1)
    return dataclasses.replace(base, batch_size=8, **fields)


def _clip(
    source: PipelineOutput, out: Path, config: clip.ClipConfig, executor: ExecutorConfig
) -> list[ShardStats]:
    """Run the clip stage over a copy of `source`'s download shards; the shards' in-memory stats."""
    shutil.copytree(source.root / "shards", out / "shards")
    seen: list[ShardStats] = []
    result: StageResult[clip.ClipConfig] = run_stage(
        clip.run_shard,
        config,
        clip.shard_tasks(str(out)),
        executor,
        lambda _done, _total, stats: seen.append(stats) if stats else None,
        config.resources(),
    )
    assert result.ok, result.failed
    return seen


@pytest.fixture(scope="module")
def local_clip(
    built_pipeline: PipelineOutput, models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The clip stage's output with the local executor (the bytes every Ray run must give)."""
    out = tmp_path_factory.mktemp("local") / "out"
    _clip(built_pipeline, out, _config(models), ExecutorConfig(kind="local", workers=1))
    return out


def _actors(seen: list[ShardStats]) -> dict[str, dict[str, str]]:
    """Where each actor (process) that ran shards was, by pid; asserts the model loaded once in each."""
    loads: dict[str, list[str]] = defaultdict(list)
    for stats in seen:
        loads[stats.worker["pid"]].append(stats.worker["clip_loads"])
    assert all(set(counts) == {"1"} for counts in loads.values()), loads  # each later shard reused it
    assert len(loads) < len(seen)  # some actor ran more than one shard
    return {stats.worker["pid"]: stats.worker for stats in seen}


@pytest.mark.timeout(600)
def test_gpu_actors_see_their_own_gpu_and_give_the_local_bytes(
    nodes: Nodes,
    on_cluster: ExecutorConfig,
    built_pipeline: PipelineOutput,
    local_clip: Path,
    models: Path,
    tmp_path: Path,
) -> None:
    config = _config(models, gpus_per_actor=1, cpus_per_actor=1, max_actors=2)
    seen = _clip(built_pipeline, tmp_path / "out", config, on_cluster)
    gpus_by_node: dict[str, list[str]] = defaultdict(list)
    for place in _actors(seen).values():
        gpus_by_node[place["node"]].append(place["cuda_visible_devices"])
    assert nodes.head not in gpus_by_node  # the GPU-less head runs no shard
    ids = {nodes.two_gpus: {"0", "1"}, nodes.one_gpu: {"0"}}
    for node, gpus in gpus_by_node.items():
        assert set(gpus) <= ids[node] and len(set(gpus)) == len(gpus), gpus_by_node  # each its own GPU
    assert tree_digests(tmp_path / "out", ("clip",)) == tree_digests(local_clip, ("clip",))


@pytest.mark.timeout(600)
def test_half_gpu_actors_share_a_gpu_two_by_two(nodes: Nodes, on_cluster: ExecutorConfig) -> None:
    pool = RayActorPool(on_cluster, ActorRequest(num_cpus=0.5, num_gpus=0.5))
    try:
        assert pool.size() == 6  # two GPUs and one, two actors each
        places = [place for _, place in pool.imap(lambda _item: worker_place(), list(range(12)))]
    finally:
        pool.close()
    actors = {place["pid"]: (place["node"], place["cuda_visible_devices"]) for place in places}
    assert Counter(actors.values()) == {
        (nodes.two_gpus, "0"): 2,
        (nodes.two_gpus, "1"): 2,
        (nodes.one_gpu, "0"): 2,
    }


@pytest.mark.timeout(600)
def test_a_node_without_the_weights_stops_the_run_before_any_work(
    nodes: Nodes,
    built_pipeline: PipelineOutput,
    models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    monkeypatch.setenv(MODELS_VAR, str(models))  # the driver has the file, as does the two-GPU node
    shutil.copytree(built_pipeline.root / "shards", tmp_path / "out" / "shards")
    wat = built_pipeline.root.parent / "inputs" / "captions.warc.wat.gz"
    model = ["--clip-model", TINY_MODEL, "--clip-checkpoint", f"${MODELS_VAR}/tiny-random.pt"]
    actors = ["--gpus-per-actor", "1", "--cpus-per-actor", "1"]
    on_ray = [*actors, "--executor", "ray", "--ray-address", nodes.cluster.address]
    try:
        scored = CliRunner().invoke(app, ["clip", str(tmp_path / "out"), *model, "--device", "cpu", *on_ray])
        built = CliRunner().invoke(
            app,
            [
                "build",
                str(wat),
                "--out",
                str(tmp_path / "build"),
                *model,
                "--set",
                "clip.device=cpu",
                *on_ray,
            ],
        )
    finally:
        ray.shutdown()
    for result, command in ((scored, "clip"), (built, "build")):
        assert result.exit_code == 2, result.output
        message = "".join(result.output.split())  # the console wraps long lines anywhere
        refusal = f"{command}: clip weights cannot be loaded on 1 of 2 Ray nodes: node {nodes.one_gpu[:12]}"
        missing = (
            f"(127.0.0.1): --clip-checkpoint {nodes.empty}/tiny-random.pt does not exist or is not a file"
        )
        # the one-GPU node, whose models folder is empty (the head holds no actor: it is not asked)
        assert "".join(refusal.split()) in message and message.endswith("".join(missing.split()))
    assert not (tmp_path / "out" / "clip").exists()
    assert not (tmp_path / "build").exists()


@pytest.mark.timeout(600)
def test_cpu_actors_ask_for_no_gpu_and_see_none(
    on_cluster: ExecutorConfig, built_pipeline: PipelineOutput, local_clip: Path, models: Path, tmp_path: Path
) -> None:
    config = _config(models, max_actors=1)  # device cpu: no GPU asked for
    seen = _clip(built_pipeline, tmp_path / "out", config, on_cluster)
    assert [place["cuda_visible_devices"] for place in _actors(seen).values()] == [""]  # Ray leaves it unset
    assert tree_digests(tmp_path / "out", ("clip",)) == tree_digests(local_clip, ("clip",))


def _pid_unless_told_to_die(item: str) -> tuple[int, int]:
    if item == "die":
        os._exit(1)  # the actor's process ends inside the item
    return os.getpid(), task_cpus()


def _gone(pid: int, patience: float = 60.0) -> bool:
    """Whether the process ends (or is a zombie) within `patience` seconds: Ray may hear of a death while
    the kernel is still tearing the process down."""
    import psutil  # Ray's own copy (ray/thirdparty_files), on the path once ray is imported

    deadline = time.monotonic() + patience
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.timeout(600)
def test_a_dead_actor_fails_only_its_items_and_is_replaced(on_cluster: ExecutorConfig) -> None:
    pool = RayActorPool(on_cluster, ActorRequest(num_cpus=1, max_actors=1))
    try:
        outcomes = dict(pool.imap(_pid_unless_told_to_die, ["first", "die", "held", "after"]))
    finally:
        pool.close()
    first, died, held, after = (outcomes[i] for i in range(4))
    assert isinstance(died, WorkerLost) and "actor" in str(died), outcomes
    assert _gone(first[0]), outcomes  # the process that ran "first" and then "die" ended
    # "held" waited on the dying actor (two items in flight per actor) unless the death was seen first
    assert isinstance(held, WorkerLost) or held[0] != first[0], outcomes
    assert after[0] != first[0], outcomes  # a new actor ran the rest
    assert first[1] == after[1] == 1, outcomes  # the CPUs the actor holds, not the machine's cores


def test_a_local_worker_may_use_its_share_of_the_cores() -> None:
    pool = LocalExecutor(ExecutorConfig(kind="local", workers=2))
    try:
        shares = [cpus for _, cpus in pool.imap(_task_cpus, [0, 1])]
    finally:
        pool.close()
    assert shares == [max(1, (os.cpu_count() or 1) // 2)] * 2


def _task_cpus(_item: int) -> int:
    return task_cpus()


def test_a_node_without_gpus_holds_cpu_actors_only() -> None:
    cpu_node = {"CPU": 2.0, "memory": 1e9}
    assert node_fits(ActorRequest(num_cpus=1).resources(), cpu_node) == 2
    assert node_fits(ActorRequest(num_cpus=1, num_gpus=0.5).resources(), cpu_node) == 0
    assert node_fits(ActorRequest(num_cpus=0.5, num_gpus=0.25).resources(), {"CPU": 2.0, "GPU": 0.75}) == 3
