"""Joining Ray for a run: a local Ray on loopback only, or a given cluster with the project shipped to it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from openpairs.core.crashpoints import forwarded_environment

# Ray picks the address its processes listen on from this: off, a local Ray's GCS, raylet, workers and
# runtime-env agent all bind 127.0.0.1 (on, they bind every interface, and Ray runs whatever it is sent).
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SHIPPED_EXCLUDES = ["__pycache__", "*.pyc"]


@contextmanager
def on_loopback() -> Iterator[None]:
    """While Ray starts or joins in this block, it takes this machine to be 127.0.0.1 (the processes it
    starts keep that); afterwards the process is as before, free to join a cluster on the network."""
    before = os.environ.get(LOOPBACK_SWITCH)
    os.environ[LOOPBACK_SWITCH] = "0"  # read when ray is imported, and inherited by the processes it starts
    from ray._private import ray_constants

    enabled, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False  # imported before?
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled
        if before is None:
            del os.environ[LOOPBACK_SWITCH]
        else:
            os.environ[LOOPBACK_SWITCH] = before


def start_local(workers: int) -> Any:
    """Start a Ray for this process alone, every one of its sockets on 127.0.0.1."""
    import ray

    with on_loopback():
        return ray.init(
            address="local",  # a new Ray of our own, never one `ray start` left listed on this machine
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": forwarded_environment()},
        )


def connect(address: str) -> Any:
    """Join the cluster at `address`, shipping this openpairs package and the crash-point variables to
    its workers (its nodes need only openpairs's dependencies installed)."""
    import ray

    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    loopback_host = host == "localhost" or host.startswith("127.")
    # a cluster on loopback (started with the same switch): else Ray looks for its raylet at this
    # machine's network address, and waits for it forever
    with on_loopback() if loopback_host else nullcontext():
        return ray.init(address=address, log_to_driver=False, runtime_env=shipped_environment())


def shipped_environment() -> dict[str, Any]:
    """The Ray runtime environment a given cluster's workers get: the openpairs package as a py_module
    (uploaded once per content hash) and the forwarded environment variables."""
    return {
        "py_modules": [str(package_directory())],
        "excludes": SHIPPED_EXCLUDES,
        "env_vars": forwarded_environment(),
    }


def package_directory() -> Path:
    """The directory of the openpairs package this process runs."""
    return Path(sys.modules["openpairs"].__file__ or "").resolve().parent


def unshared_out_error(out: str, shared: bool, node_addresses: list[str], here: str) -> str | None:
    """Why `out` cannot be the output of a run on these nodes, or None: a local path (no scheme://) is
    only seen by every worker when all nodes are this machine, or when it is said to be shared."""
    if shared or "://" in out:
        return None
    elsewhere = sorted({a for a in node_addresses if a != here and not a.startswith("127.")})
    if not elsewhere:
        return None
    return (
        f"--out {out} is a local path, but the Ray cluster has nodes on other machines ({', '.join(elsewhere)}) "
        "that would write their shards to their own disks. Use an object store URL (s3://bucket/path or "
        "gs://bucket/path), or pass --shared-out when this path is a shared filesystem mounted at the same "
        "place on every node."
    )


def cluster_node_addresses() -> list[str]:
    """The addresses of the alive nodes of the connected cluster."""
    import ray

    return [str(node["NodeManagerAddress"]) for node in ray.nodes() if node.get("Alive")]


def this_node_address() -> str:
    """The address Ray knows this (driver's) machine by."""
    import ray

    return str(ray.util.get_node_ip_address())
