"""Core contract: statuses, ShardStats accounting and merging, keys, presets, atomic commits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from openpairs.core.keys import mint_key, split_key
from openpairs.core.stats import MAX_ERROR_MESSAGES, OTHER_ERRORS, ShardStats
from openpairs.core.status import Status, http_status, is_transient
from openpairs.io import fs as ofs
from openpairs.io.commit import ShardPaths, atomic_open, shard_index, shard_name
from openpairs.presets import stage_config
from openpairs.stages.dedup import DedupConfig
from openpairs.stages.extract import ExtractConfig


def test_stats_balance_merge_and_round_trip() -> None:
    a, b = ShardStats("download", 0), ShardStats("download", 1)
    a.count(Status.OK, 3)
    a.count(http_status(404))
    b.count(Status.TIMEOUT, 2)
    b.bump("bytes", 10)
    total = a.merge(b)
    assert (total.rows_in, total.rows_out) == (6, 3)
    assert total.is_balanced()
    assert ShardStats.from_dict(json.loads(total.to_json())).to_dict() == total.to_dict()


def test_error_messages_are_capped() -> None:
    stats = ShardStats("x")
    for i in range(MAX_ERROR_MESSAGES + 10):
        stats.error(f"message {i}")
    assert len(stats.errors) == MAX_ERROR_MESSAGES + 1
    assert stats.errors[OTHER_ERRORS] == 10


def test_transient_statuses() -> None:
    assert is_transient("http_503") and is_transient("http_429") and is_transient(Status.TIMEOUT)
    assert not is_transient("http_404") and not is_transient(Status.OK)


def test_keys_sort_in_input_order_and_round_trip() -> None:
    shards = (0, 1, 12, 99_999, 100_000, 999_999, 1_000_000, 123_456_789)
    keys = [mint_key(s, r) for s in shards for r in (0, 5, 999_999, 9_999_999)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 4 * len(shards)
    assert {len(key) for key in keys} == {16}
    assert split_key(mint_key(1_000_000, 34)) == (1_000_000, 34)
    for shard, row in ((0, 10**7), (10**9, 0), (-1, 0)):
        with pytest.raises(ValueError, match="does not fit"):
            mint_key(shard, row)


def test_shard_names_sort_as_numbers_past_five_digits(tmp_path) -> None:
    indices = [0, 2, 10, 9_999, 10_000, 10_001, 99_999, 100_000, 100_001, 1_000_000, 12_345_678]
    for index in reversed(indices):
        (tmp_path / f"{shard_name(index)}.parquet").write_bytes(b"")
        (tmp_path / f"{shard_name(index)}_stats.json").write_bytes(b"")
    listed = ofs.list_files(str(tmp_path), ".parquet")
    assert [shard_index(path) for path in listed] == indices
    stats = ofs.list_files(str(tmp_path), "_stats.json")
    assert [shard_index(path) for path in stats] == indices
    assert shard_name(42) == "00042" and shard_name(100_000) == "100000"
    assert shard_index("notes.txt") is None


def test_presets_and_overrides() -> None:
    laion400m = stage_config(ExtractConfig, "extract", "laion400m")
    laion5b = stage_config(ExtractConfig, "extract", "laion5b", min_alt_length=3)
    assert (
        laion400m.relative_urls == "resolve"
        and laion400m.english_only
        and ".webp" in laion400m.drop_extensions
    )
    assert laion5b.relative_urls == "drop" and not laion5b.english_only and laion5b.min_alt_length == 3
    assert stage_config(DedupConfig, "dedup", "laion5b").dedup == "url"
    assert stage_config(DedupConfig, "dedup", "laion400m").dedup == "url+caption"
    with pytest.raises(ValueError, match="unknown preset"):
        stage_config(ExtractConfig, "extract", "laion9b")
    with pytest.raises(ValueError, match="no field"):
        stage_config(ExtractConfig, "extract", "laion5b", nonsense=1)


def test_atomic_open_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "x" / "00000.parquet"
    with pytest.raises(RuntimeError), atomic_open(str(target)) as handle:
        handle.write(b"partial")
        raise RuntimeError("killed")
    assert not target.exists() and not list((tmp_path / "x").iterdir())
    paths = ShardPaths(str(tmp_path), "stage", 3)
    assert not paths.is_done()
    paths.commit_stats(ShardStats("stage", 3))
    assert paths.is_done() and paths.read_stats().shard == 3


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, openpairs.cli; "
        "print([m for m in ('torch', 'pyarrow', 'ray', 'aiohttp', 'faiss', 'open_clip', 'fastapi') if m in sys.modules])"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert heavy == "[]"


def test_pyarrow_conversions_leave_pandas_unloaded_but_available() -> None:
    code = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq, tempfile, os; "
        "from openpairs.core.lean import arrow_without_pandas; arrow_without_pandas(); "
        "path = os.path.join(tempfile.mkdtemp(), 't.parquet'); "
        "pq.write_table(pa.table({'a': pa.array(['x', None]), 'b': [1, 2]}), path); "
        "table = pq.read_table(path); loaded = 'pandas' in sys.modules; "
        "print(loaded, table.to_pandas().shape, 'pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "(2,", "2)", "True"]


def _pandas_loaded_after_a_conversion(_: int) -> bool:
    import pyarrow as pa

    pa.array(["x"])
    return "pandas" in sys.modules


def test_pool_workers_leave_pandas_unloaded() -> None:
    from openpairs.executors import ExecutorConfig
    from openpairs.executors.local import LocalExecutor

    pool = LocalExecutor(ExecutorConfig(workers=2))
    try:
        assert [loaded for _, loaded in pool.imap(_pandas_loaded_after_a_conversion, [0, 1])] == [
            False,
            False,
        ]
    finally:
        pool.close()
