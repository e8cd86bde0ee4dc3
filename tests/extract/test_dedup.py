"""Global dedup: exact, bounded-memory tasks, exact history across runs, resharding, language split."""

from __future__ import annotations

import glob

import pyarrow.parquet as pq
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.stages.dedup import language_group
from tests.extract.conftest import candidates
from tests.extract.watfiles import DERIVED, payload_member, real_payloads


def _copy_twice(tmp_path) -> list[str]:
    data = DERIVED.read_bytes()
    paths = [tmp_path / "a.wat.gz", tmp_path / "b.wat.gz"]
    for path in paths:
        path.write_bytes(data)
    return [str(p) for p in paths]


def test_url_caption_dedup_keeps_the_first_of_each_pair(run, tmp_path) -> None:
    outcome = run(_copy_twice(tmp_path), language="off", english_only=False, drop_extensions=())
    table = candidates(str(tmp_path / "out"))
    pairs = list(zip(table["url"].to_pylist(), table["caption"].to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs))
    assert outcome.dedup is not None
    assert outcome.dedup.statuses["duplicate"] == outcome.extract.total.rows_out - table.num_rows
    assert all(key.startswith("000000") for key in table["key"].to_pylist())  # first file's keys win


def test_url_dedup_drops_more_than_url_caption(run, tmp_path) -> None:
    inputs = _copy_twice(tmp_path)
    by_pair = run(inputs, out=str(tmp_path / "p"), language="off", english_only=False, dedup="url+caption")
    by_url = run(inputs, out=str(tmp_path / "u"), language="off", english_only=False, dedup="url")
    none = run(inputs, out=str(tmp_path / "n"), language="off", english_only=False, dedup="none")
    assert none.dedup and by_pair.dedup and by_url.dedup
    assert none.dedup.statuses["ok"] > by_pair.dedup.statuses["ok"] >= by_url.dedup.statuses["ok"]
    urls = candidates(str(tmp_path / "u"))["url"].to_pylist()
    assert len(urls) == len(set(urls))


def test_partitioned_dedup_equals_in_memory_dedup(run, tmp_path) -> None:
    inputs = _copy_twice(tmp_path)
    run(inputs, out=str(tmp_path / "one"), language="off", english_only=False)
    run(inputs, out=str(tmp_path / "many"), language="off", english_only=False, rows_per_task=100)
    one, many = candidates(str(tmp_path / "one")), candidates(str(tmp_path / "many"))
    assert sorted(one["key"].to_pylist()) == sorted(many["key"].to_pylist())


def test_shard_size_reshards_with_stats(run, tmp_path) -> None:
    outcome = run([str(DERIVED)], language="off", english_only=False, shard_size=100)
    files = sorted(glob.glob(f"{tmp_path}/out/candidates/*.parquet"))
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert outcome.dedup is not None and sum(sizes) == outcome.dedup.statuses["ok"]
    assert all(size == 100 for size in sizes[:-1]) and 0 < sizes[-1] <= 100
    assert len(glob.glob(f"{tmp_path}/out/candidates/*_stats.json")) == len(files)


def test_history_drops_pairs_seen_in_an_earlier_run(run, tmp_path) -> None:
    seen = str(tmp_path / "history")
    payloads = real_payloads()
    first, second = tmp_path / "first.wat.gz", tmp_path / "second.wat.gz"
    first.write_bytes(b"".join(payload_member(p) for p in payloads[:10]))
    second.write_bytes(b"".join(payload_member(p) for p in payloads[5:]))
    one = run([str(first)], out=str(tmp_path / "r1"), language="off", english_only=False, history=seen)
    two = run([str(second)], out=str(tmp_path / "r2"), language="off", english_only=False, history=seen)
    assert one.dedup and two.dedup
    assert one.dedup.statuses.get("seen_before", 0) == 0
    old = set(candidates(str(tmp_path / "r1"))["url"].to_pylist())
    new = set(candidates(str(tmp_path / "r2"))["url"].to_pylist())
    assert two.dedup.statuses["seen_before"] > 0
    assert not (old & new)


def test_language_split_writes_three_groups(run, tmp_path) -> None:
    run([str(DERIVED)], preset="laion5b", split_languages=True, relative_urls="resolve")
    groups = {}
    for group in ("en", "multi", "nolang"):
        files = glob.glob(f"{tmp_path}/out/candidates/{group}/*.parquet")
        groups[group] = [code for f in files for code in pq.read_table(f)["language"].to_pylist()]
    assert groups["multi"] and groups["nolang"]
    for group, codes in groups.items():
        assert all(language_group(code) == group for code in codes)


def test_rerun_reuses_dedup_and_redoes_it_when_inputs_complete(run, tmp_path) -> None:
    missing = tmp_path / "late.wat.gz"
    inputs = [str(DERIVED), str(missing)]
    first = run(inputs, language="off", english_only=False)
    assert first.extract.failed and first.dedup is not None
    missing.write_bytes(DERIVED.read_bytes())
    second = run(inputs, language="off", english_only=False)
    assert not second.extract.failed and second.extract.skipped == 1
    assert second.dedup is not None and second.dedup.rows_in == 2 * first.dedup.rows_in


def test_bloom_is_refused_with_a_pointer_to_history_and_a_history_needs_a_key(tmp_path) -> None:
    result = CliRunner().invoke(app, ["extract", str(DERIVED), "--out", str(tmp_path / "o"), "--bloom", "x"])
    assert result.exit_code == 2 and "--history" in result.output
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(
        app, ["extract", str(DERIVED), "--out", str(tmp_path / "o"), "--dedup", "none", "--history", "h"]
    )
    assert result.exit_code == 2 and "needs a dedup key" in " ".join(result.output.split())
