"""Dataset-wide image dedup (stages/image_dedup.py): the all-pairs groups, the same bytes whatever the
tasks and executor, a filter that reads only its shard's slice, and a kill inside map, reduce and a star
round."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.stages.clip_dedup import dup_groups
from openpairs.stages.clip_table import output_schema
from openpairs.stages.filter import FilterConfig, run_filter
from openpairs.stages.image_dedup import SCRATCH, ImageDedupConfig, run_image_dedup
from tests.fault.harness import run_killed_at, temporaries, tree_digests
from tests.fixtures.image_dups import Planted, planted, write_clip_shards
from tests.fixtures.tiny_clip import Sample, write_download_shard

ONE_TASK = ExecutorConfig(kind="local", workers=1)
SLICES = ("clip/dup_groups",)


def _slices(out: Path) -> dict[str, tuple[str, str]]:
    """key -> (dup_group, method) over every slice."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted((out / "clip" / "dup_groups").glob("*.parquet")):
        table = pq.read_table(path).to_pydict()
        found.update(zip(table["key"], zip(table["dup_group"], table["method"], strict=True), strict=True))
    return found


def _reference(data: Planted, threshold: float) -> dict[str, tuple[str, str]]:
    """The all-pairs groups of two or more (cosine, or the same sha256), with how each row joined."""
    rows = np.flatnonzero(data.has_image)
    groups = dup_groups([data.keys[i] for i in rows], data.emb[rows], np.ones(len(rows), bool), threshold)
    sizes = Counter(groups)
    shas = [data.sha[i] for i in rows]
    copies = {sha for sha, n in Counter(shas).items() if n > 1}
    return {
        data.keys[i]: (str(group), "exact" if sha in copies else "near")
        for i, group, sha in zip(rows, groups, shas, strict=True)
        if group is not None and sizes[group] > 1
    }


def test_groups_equal_the_all_pairs_method_on_planted_duplicates(tmp_path: Path) -> None:
    data = planted(20_000, 256, seed=1)
    write_clip_shards(str(tmp_path), data, shard_rows=2_000)
    stats = run_image_dedup(str(tmp_path), ImageDedupConfig(), ONE_TASK)
    expected = _reference(data, 0.95)
    assert _slices(tmp_path) == expected
    methods = [method for _, method in expected.values()]
    assert methods.count("exact") > 300 and methods.count("near") > 500  # both kinds, at scale
    assert stats.counters["images"] == int(data.has_image.sum()) and stats.counters["leaves"] > 30
    assert not (tmp_path / SCRATCH).exists() and temporaries(tmp_path) == []


def test_same_bytes_with_one_task_many_tasks_and_ray(tmp_path: Path) -> None:
    data = planted(2_000, 32, seed=2)
    runs = {
        "one": (ImageDedupConfig(leaf_size=64), ONE_TASK),
        "many": (ImageDedupConfig(leaf_size=64, rows_per_task=300), ExecutorConfig(kind="local", workers=2)),
        "ray": (ImageDedupConfig(leaf_size=64, rows_per_task=700), ExecutorConfig(kind="ray", workers=2)),
    }
    digests, counters = {}, {}
    for name, (config, executor) in runs.items():
        write_clip_shards(str(tmp_path / name), data, shard_rows=125)
        counters[name] = run_image_dedup(str(tmp_path / name), config, executor).counters
        digests[name] = {
            k: v for k, v in tree_digests(tmp_path / name, SLICES).items() if k.endswith("parquet")
        }
    assert counters["one"]["reducers"] == 1 < counters["ray"]["reducers"] < counters["many"]["reducers"]
    assert len(digests["one"]) == 16 and digests["one"] == digests["many"] == digests["ray"]
    assert counters["one"]["groups"] > 50 and counters["one"] == counters["many"] | {"reducers": 1}


def _scored(out: Path, shard: int, images: list[int]) -> list[str]:
    """A download shard and its clip output (one row per image; rows with equal numbers share an image)."""
    keys = write_download_shard(out, shard, [Sample(f"caption {i}") for i in images])
    columns = {name: [None] * len(keys) for name in output_schema().names}
    columns |= {"key": keys, "similarity": [0.5] * len(keys), "status": ["ok"] * len(keys)}
    (out / "clip" / "img_emb").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=output_schema()), out / "clip" / f"{shard:05d}.parquet")
    np.save(out / "clip" / "img_emb" / f"{shard:05d}.npy", np.eye(16, dtype=np.float16)[images])
    return keys


def test_filter_keeps_the_smallest_key_of_each_group_from_its_own_slice(tmp_path: Path) -> None:
    first = _scored(tmp_path, 0, [0, 1, 2, 1])
    second = _scored(tmp_path, 1, [2, 3, 3, 0])
    run_image_dedup(str(tmp_path), ImageDedupConfig(), ONE_TASK)
    (tmp_path / "clip" / "dup_groups" / "00000.parquet").unlink()  # shard 1 must not need shard 0's slice
    result = run_filter(
        str(tmp_path), FilterConfig(drop_duplicates=True), ExecutorConfig(workers=1, retries=0)
    )
    assert [f["shard"] for f in result.failed] == [0] and "image dedup groups" in result.failed[0]["error"]
    statuses = pq.read_table(tmp_path / "filter" / "00001.parquet").to_pydict()
    assert statuses["key"] == second
    assert statuses["status"] == ["near_duplicate", "ok", "near_duplicate", "near_duplicate"]
    assert _slices(tmp_path)[second[3]] == (first[0], "near")  # its group's smallest key is in shard 0


def _run_in_a_process(out: Path) -> list[str]:
    code = (
        "import sys; from openpairs.executors import ExecutorConfig; "
        "from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup; "
        "run_image_dedup(sys.argv[1], ImageDedupConfig(leaf_size=64, rows_per_task=600), "
        "ExecutorConfig(workers=2))"
    )
    return [sys.executable, "-c", code, str(out)]


def test_killed_inside_map_reduce_and_star_rounds_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    data = planted(3_000, 32, seed=3, chain=12)  # the chain needs a small-star round
    reference, out = tmp_path / "reference", tmp_path / "out"
    for folder in (reference, out):
        write_clip_shards(str(folder), data, shard_rows=250)
    config = ImageDedupConfig(leaf_size=64, rows_per_task=600)
    run_image_dedup(str(reference), config, ONE_TASK)
    scratch = out / SCRATCH
    run_killed_at(_run_in_a_process(out), "image_dedup.map:2", tmp_path)
    assert (scratch / "tree/tree.json").exists() and not (scratch / "map/00002.json").exists()
    run_killed_at(_run_in_a_process(out), "image_dedup.reduce:3", tmp_path)
    assert (scratch / "map/00002.json").exists() and not (scratch / "reduce/00003.json").exists()
    run_killed_at(_run_in_a_process(out), "image_dedup.large_star:4", tmp_path)
    assert (scratch / "reduce/00009.json").exists() and not (scratch / "large.0/00004.json").exists()
    run_killed_at(_run_in_a_process(out), "image_dedup.small_star:4", tmp_path)
    assert (scratch / "large.0/00009.json").exists() and not (scratch / "small.0/00004.json").exists()
    run_image_dedup(str(out), config, ONE_TASK)
    assert tree_digests(out, SLICES) == tree_digests(reference, SLICES)
    assert not scratch.exists() and temporaries(out) == []


def test_keys_of_different_widths_stop_with_a_message(tmp_path: Path) -> None:
    data = planted(400, 16, seed=4)
    keys = [key if row < 200 else key[1:] for row, key in enumerate(data.keys)]  # shard 1: one digit fewer
    write_clip_shards(str(tmp_path), Planted(keys, data.emb, data.sha, data.has_image), shard_rows=200)
    with pytest.raises(ValueError, match=r"keys of one width .* found widths \[10, 11\]"):
        run_image_dedup(str(tmp_path), ImageDedupConfig(), ONE_TASK)
    assert not (tmp_path / "clip" / "dup_groups" / "_image_dedup.json").exists()
