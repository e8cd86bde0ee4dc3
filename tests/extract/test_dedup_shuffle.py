"""Dedup as map → reduce → cut tasks: tiny task sizes (many tasks) give the same bytes as one task and the
same survivors as a whole-table dedup; the history is exact; `--dedup none` keeps every row in order."""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.presets import stage_config
from openpairs.stages.dedup import DedupConfig, dedup_keys, language_group, run_dedup
from openpairs.stages.extract import ExtractConfig
from openpairs.stages.extract_run import run_extract
from openpairs.stages.history import HistoryMismatch
from tests.extract.watfiles import DERIVED, FRAGMENT_1, WAT_2014

INPUTS = [DERIVED, WAT_2014, FRAGMENT_1, DERIVED]  # the last repeats the first: many duplicates


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """extract/ made by our own extract stage from real WATs (4 shards, all languages)."""
    out = tmp_path_factory.mktemp("extracted")
    rules = stage_config(ExtractConfig, "extract", "laion5b", relative_urls="resolve")
    outcome = run_extract(
        [str(p) for p in INPUTS], str(out), rules, DedupConfig(dedup="none"), ExecutorConfig(workers=1)
    )
    assert not outcome.extract.failed
    return out / "extract"


def _with(extracted: Path, out: Path, shards: tuple[int, ...] = (0, 1, 2, 3)) -> str:
    """A fresh output directory holding (some of) the extract shards, rewritten in row groups of 64 rows
    (as a WAT's shard is in row groups of 64k): tasks then read parts of a shard."""
    (out / "extract").mkdir(parents=True)
    for shard in shards:
        table = pq.read_table(extracted / f"{shard:05d}.parquet")
        pq.write_table(table, out / "extract" / f"{shard:05d}.parquet", row_group_size=64)
    return str(out)


def _rows(out: str, folder: str) -> pa.Table:
    files = sorted(glob.glob(f"{out}/{folder}/*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def _shard_bytes(out: str) -> dict[str, bytes]:
    """Every candidates shard and stats file (the _dedup.json record also counts the tasks)."""
    files = glob.glob(f"{out}/candidates/**/0*", recursive=True)
    return {name: Path(name).read_bytes() for name in sorted(files)}


def _reference(table: pa.Table, mode: str) -> set[str]:
    """Keys a plain whole-table dedup keeps: the smallest key of each dedup string."""
    smallest: dict[str, str] = {}
    for key, text in zip(table["key"].to_pylist(), dedup_keys(table, mode).to_pylist(), strict=True):
        smallest[text] = min(key, smallest.get(text, key))
    return set(smallest.values())


@pytest.mark.parametrize("mode", ["url", "url+caption"])
def test_tiny_tasks_give_one_tasks_bytes_and_a_whole_table_dedups_survivors(
    extracted, tmp_path, mode
) -> None:
    one, many = _with(extracted, tmp_path / "one"), _with(extracted, tmp_path / "many")
    stats = run_dedup(DedupConfig(dedup=mode, shard_size=50), one)
    tiny = DedupConfig(dedup=mode, shard_size=50, rows_per_task=150)  # many maps, reducers and cuts
    many_stats = run_dedup(tiny, many, ExecutorConfig(workers=2))
    assert many_stats.counters["partitions"] > 10 and many_stats.counters["map_tasks"] > 10
    assert _shard_bytes(one).values() and list(_shard_bytes(one).values()) == list(
        _shard_bytes(many).values()
    )
    rows = _rows(one, "extract")
    survivors = _rows(one, "candidates")
    assert set(survivors["key"].to_pylist()) == _reference(rows, mode)
    assert stats.statuses["ok"] == survivors.num_rows
    assert stats.statuses["ok"] + stats.statuses["duplicate"] == rows.num_rows == stats.rows_in
    assert many_stats.to_dict() == stats.to_dict() | {"counters": many_stats.to_dict()["counters"]}
    assert not Path(one, "_scratch").exists() and not Path(many, "_scratch").exists()


def _urls(out: str) -> set[str]:
    return set(_rows(out, "candidates")["url"].to_pylist())


def test_history_is_exact_at_ten_times_the_task_size(extracted, tmp_path) -> None:
    seen = str(tmp_path / "history")
    first, second = _with(extracted, tmp_path / "r1", (0, 1)), _with(extracted, tmp_path / "r2", (1, 2, 3))
    run_dedup(DedupConfig(dedup="url", rows_per_task=100, history=seen), first)
    two = run_dedup(DedupConfig(dedup="url", rows_per_task=40, history=seen), second)
    old = _urls(first)
    new = set(_rows(second, "extract")["url"].to_pylist())
    assert len(old | new) > 10 * 40  # the history outgrew the task size tenfold
    assert _urls(second) == new - old  # nothing never seen was dropped, everything seen was
    assert two.statuses["seen_before"] == len(new & old)
    assert two.statuses["ok"] + two.statuses["duplicate"] + two.statuses["seen_before"] == two.rows_in
    assert sorted(p.name for p in Path(seen).iterdir()) == ["_current.json", "gen-000002"]
    with pytest.raises(HistoryMismatch, match="url"):
        run_dedup(DedupConfig(dedup="url+caption", history=seen), _with(extracted, tmp_path / "r3", (3,)))


def test_no_dedup_streams_every_row_in_input_order(extracted, tmp_path) -> None:
    plain, split = _with(extracted, tmp_path / "plain"), _with(extracted, tmp_path / "split")
    stats = run_dedup(
        DedupConfig(dedup="none", shard_size=37, rows_per_task=300), plain, ExecutorConfig(workers=2)
    )
    rows = _rows(plain, "extract")
    assert _rows(plain, "candidates").equals(rows) and stats.statuses["ok"] == rows.num_rows
    run_dedup(DedupConfig(dedup="none", shard_size=37, rows_per_task=300, split_languages=True), split)
    groups = [language_group(code) for code in rows["language"].to_pylist()]
    assert len(set(groups)) > 1
    for group in set(groups):
        wanted = rows.filter(pa.array([g == group for g in groups]))
        assert _rows(split, f"candidates/{group}").equals(wanted)
