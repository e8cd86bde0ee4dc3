"""Resume from one listing: the done shards, stale ones and the merged totals are what a per-shard check
and `merge_all` over every shard's stats give; the summary is written outside the stage's outputs."""

from __future__ import annotations

import json
from pathlib import Path

from openpairs.core.stats import MAX_ERROR_MESSAGES, ShardStats, merge_all
from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.stages.runner import ShardTask, run_stage

IN_PROCESS = ExecutorConfig(workers=1)


def count_lines(config: str, task: ShardTask) -> ShardStats:
    """A real little stage: one row per input line, ok or `empty`, each line's text as an error message
    (more distinct messages than the cap, so the merge order decides which are kept)."""
    stats = ShardStats(stage=task.stage, shard=task.index)
    lines = Path(task.inputs[0]).read_text().splitlines()
    for line in lines:
        stats.count("ok" if line else "empty")
        if line:
            stats.error(f"{config}: {line}")
    commit.write_bytes_atomic(task.paths.file("txt"), f"{len(lines)}\n".encode())
    return stats


def _tasks(out: Path, shards: int) -> list[ShardTask]:
    tasks = []
    for index in range(shards):
        source = out / "inputs" / f"{index}.txt"  # under DIR: tracked, so rewriting it makes the shard stale
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(f"line {index}-{n}\n" if n % 4 else "\n" for n in range(12)))
        tasks.append(ShardTask(stage="lines", index=index, inputs=(str(source),), out=str(out)))
    return tasks


def test_resume_from_listing_skips_done_redoes_stale_and_merges_in_shard_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    tasks = _tasks(out, 7)
    first = run_stage(count_lines, "run", tasks[:5], IN_PROCESS)
    assert first.ok and first.done_shards == [0, 1, 2, 3, 4] and first.skipped == 0
    (out / "inputs" / "2.txt").write_text("rewritten\n")  # shard 2's input changes: it is stale
    again = run_stage(count_lines, "run", tasks, IN_PROCESS)
    assert (again.skipped, again.stale, again.done_shards) == (4, 1, list(range(7)))
    per_shard = [
        ShardStats.from_dict(json.loads((out / "lines" / f"{i:05d}_stats.json").read_text()))
        for i in range(7)
    ]
    expected = merge_all("lines", per_shard)
    assert again.total.to_dict() == expected.to_dict()
    assert len(expected.errors) == MAX_ERROR_MESSAGES + 1  # the cap was reached: order mattered
    assert [s.to_dict() for s in again.shards] == [s.to_dict() for s in per_shard]
    assert again.total.statuses == {"ok": 6 * 9 + 1, "empty": 6 * 3}
    summary = json.loads((out / "_summary" / "lines.json").read_text())
    assert summary["total"] == expected.to_dict() and summary["shards_done"] == 7
    assert summary["shards_failed"] == 0 and "shards_skipped" not in summary  # the same after any resume
    assert not (out / "lines" / "_summary.json").exists()


def test_a_dataset_copied_whole_compares_its_own_inputs(tmp_path: Path) -> None:
    import shutil

    original, copy = tmp_path / "original", tmp_path / "copy"
    run_stage(count_lines, "run", _tasks(original, 3), IN_PROCESS)
    shutil.copytree(original, copy)  # file times kept, as `cp -a` or a sync does
    recorded = json.loads((copy / "_versions" / "lines" / "00001.json").read_text())
    assert list(recorded) == ["inputs/1.txt"]  # relative to DIR, not naming the original
    (copy / "inputs" / "1.txt").write_text("rewritten in the copy\n")
    tasks = [
        ShardTask(stage="lines", index=i, inputs=(str(copy / "inputs" / f"{i}.txt"),), out=str(copy))
        for i in range(3)
    ]
    again = run_stage(count_lines, "run", tasks, IN_PROCESS)
    assert (again.skipped, again.stale) == (2, 1)
    (original / "inputs" / "0.txt").write_text("rewritten in the original\n")  # not the copy's input
    assert run_stage(count_lines, "run", tasks, IN_PROCESS).stale == 0
