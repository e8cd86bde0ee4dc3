"""The clip weights checked on every node of a Ray cluster before a build downloads anything.

A model file the driver has may be missing on a worker node (another disk, another cache), and a clip
actor there would fail only after hours of downloads. So `openpairs build` and `openpairs clip` first
run one small task pinned to each alive node that can hold a clip actor: it loads the weights the config
names there (on CPU: the files are checked, not the device), and the run stops with one line naming
every node that cannot.
"""

from __future__ import annotations

from dataclasses import replace

from openpairs.executors import ClusterRefused, ExecutorConfig, WorkerLost
from openpairs.stages.clip import ClipConfig, preload


class WeightsMissingOnNode(ClusterRefused):
    """A node of the cluster cannot load the clip models the config names; the message names it."""


def check_weights(config: ClipConfig) -> None:
    """Load every model the config names, on CPU, in this process; raises preload's clear error."""
    preload(replace(config, device="cpu"))


def check_weights_on_nodes(config: ClipConfig, executor: ExecutorConfig) -> int:
    """On a Ray cluster: load the config's weights on every node that can hold a clip actor; raise
    WeightsMissingOnNode naming each node that cannot. Returns how many nodes were checked (0 with the
    local executor or a local Ray, which are this machine: the driver's own check covers them)."""
    from openpairs.executors.ray_actors import run_on_each_node

    outcomes = run_on_each_node(executor, check_weights, config, config.resources())
    failed = [o for o in outcomes if isinstance(o.outcome, BaseException)]
    if failed:
        lines = [
            f"node {o.node_id[:12]} ({o.address}){' lost' if isinstance(o.outcome, WorkerLost) else ''}: "
            f"{o.outcome}"
            for o in failed
        ]
        raise WeightsMissingOnNode(
            f"clip weights cannot be loaded on {len(failed)} of {len(outcomes)} Ray nodes: "
            + "; ".join(lines)
        )
    return len(outcomes)
