"""Benchmark: driver memory and storage calls of `report`, `export` and a stage resume on many shards.

The shards of SOURCE (a finished build without export, e.g. the tests' pipeline or `openpairs demo`) are
hard-linked `--copies` times under new shard numbers (tars left out: the laion400m export and the
report do not read them), then each step runs once in a fresh process, in-process executor (so every
storage call is counted, tasks' included), printing its driver peak RSS, wall time and the storage
calls it made (outermost fsspec calls: exists, info, ls, find, open), as JSON lines.

    PYTHONPATH=src .venv/bin/python benchmarks/outputs_scale.py SOURCE --copies 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FOLDERS = ("shards", "clip", "clip/img_emb", "clip/text_emb", "filter")
SKIPPED = (".tar",)
COUNTED = ("exists", "info", "ls", "find", "_open")


def replicate(source: Path, target: Path, copies: int) -> int:
    """Hard-link every shard file of `source` `copies` times under new shard numbers; returns the count."""
    shards = sorted(p.name.removesuffix("_stats.json") for p in (source / "shards").glob("*_stats.json"))
    number = 0
    for _ in range(copies):
        for shard in shards:
            for folder in FOLDERS:
                (target / folder).mkdir(parents=True, exist_ok=True)
                for path in (source / folder).glob(f"{shard}[._]*"):
                    if not path.name.endswith(SKIPPED):
                        os.link(path, target / folder / path.name.replace(shard, f"{number:05d}", 1))
            number += 1
    return number


def count_calls() -> Counter[str]:
    """Count the outermost calls of the local filesystem's storage methods (in every thread)."""
    from fsspec.implementations.local import LocalFileSystem

    counts: Counter[str] = Counter()
    depth = threading.local()
    for name in COUNTED:
        setattr(LocalFileSystem, name, _counted(getattr(LocalFileSystem, name), name, counts, depth))
    return counts


def _counted(method: Callable[..., Any], name: str, counts: Counter[str], depth: Any) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        level = getattr(depth, "level", 0)
        if level == 0:
            counts[name] += 1
        depth.level = level + 1
        try:
            return method(*args, **kwargs)
        finally:
            depth.level = level

    return wrapper


def step(name: str, out: str) -> dict[str, Any]:
    """Run one step here; its numbers."""
    from openpairs.executors import ExecutorConfig

    in_process = ExecutorConfig(workers=1)
    counts = count_calls()
    started = time.perf_counter()
    if name == "report":
        from openpairs.report import build_report

        build_report(out, **({"executor": in_process} if _takes_executor() else {}))
    elif name == "export":
        from openpairs.stages.export import ExportConfig, run_export

        args = (in_process,) if _takes_executor() else ()
        run_export(out, ExportConfig(format="laion400m", samples_per_shard=10_000), *args)
    else:  # a resume of the filter's shards: every shard done, nothing to run
        from openpairs.stages import filter as filter_stage
        from openpairs.stages.runner import run_stage

        run_stage(filter_stage.run_shard, None, filter_stage.shard_tasks(out), in_process)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"step": name, "seconds": round(seconds, 2), "driver_peak_mib": round(peak), "calls": dict(counts)}


def _takes_executor() -> bool:
    import inspect

    from openpairs.stages.export import run_export

    return "executor" in inspect.signature(run_export).parameters


def _runs(out: str) -> Iterator[dict[str, Any]]:
    for name in ("resume", "report", "export"):
        command = [sys.executable, __file__, "--step", name, out]
        yield json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    """Replicate, then run each step in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source")
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--step")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.source)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        shards = replicate(Path(args.source), Path(scratch) / "out", args.copies)
        print(json.dumps({"shards": shards}))
        for result in _runs(str(Path(scratch) / "out")):
            print(json.dumps(result))


if __name__ == "__main__":
    main()
