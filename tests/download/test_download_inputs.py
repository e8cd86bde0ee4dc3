"""Input formats: the same rows from parquet, csv, tsv, jsonl, json and txt (plain and .gz), streamed."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.core.keys import mint_key
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.stages.download_plan import candidates_dir, cut_shards, plan_tasks
from openpairs.stages.inputs import InputSpec, file_format

RECORDS = [
    {"url": f"http://example.com/{i}.jpg", "caption": f"a photo, number {i}", "extra": f"x{i}"}
    for i in range(5)
]


def write(path: Path, fmt: str) -> Path:
    """RECORDS in format `fmt` at `path`."""
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(RECORDS), path)
        return path
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=list(RECORDS[0]), delimiter="\t" if fmt == "tsv" else ","
            )
            writer.writeheader()
            writer.writerows(RECORDS)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    elif fmt == "json":
        path.write_text(json.dumps(RECORDS, indent=1))
    else:
        path.write_text("".join(r["url"] + "\n" for r in RECORDS))
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl", "json", "txt"])
@pytest.mark.parametrize("gz", [False, True])
def test_each_format_gives_the_same_rows(tmp_path: Path, fmt: str, gz: bool) -> None:
    path = write(tmp_path / f"in.{fmt}", fmt)
    if gz:
        gzipped = tmp_path / f"in.{fmt}.gz"
        gzipped.write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
        path = gzipped
    spec = InputSpec(str(path), save_additional_columns=() if fmt == "txt" else ("extra",))
    shards = list(cut_shards(spec, shard_size=2))
    assert [t.num_rows for t in shards] == [2, 2, 1]
    table = pa.concat_tables(shards)
    assert table.schema.names[: len(CANDIDATE_SCHEMA)] == CANDIDATE_SCHEMA.names
    assert table.column("key").to_pylist() == [
        mint_key(s, r) for s, r in ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0))
    ]
    assert table.column("url").to_pylist() == [r["url"] for r in RECORDS]
    if fmt != "txt":
        assert table.column("caption").to_pylist() == [r["caption"] for r in RECORDS]
        assert table.column("extra").to_pylist() == [r["extra"] for r in RECORDS]
    assert table.column("license").null_count == 5
    assert table.column("page_robots").null_count == table.column("page_tdm_reservation").null_count == 5


def test_laion_metadata_columns_work_as_is(tmp_path: Path) -> None:
    path = tmp_path / "laion.parquet"
    pq.write_table(
        pa.table(
            {
                "SAMPLE_ID": [1, 2],
                "URL": ["http://a/1.jpg", "http://a/2.jpg"],
                "TEXT": ["one", "two"],
                "LICENSE": ["?", "http://creativecommons.org/licenses/by/4.0/"],
                "similarity": [0.31, 0.4],
            }
        ),
        path,
    )
    (table,) = cut_shards(InputSpec(str(path), save_additional_columns=("similarity", "SAMPLE_ID")), 10)
    assert table.column("url").to_pylist() == ["http://a/1.jpg", "http://a/2.jpg"]
    assert table.column("caption").to_pylist() == ["one", "two"]
    assert str(table.column("license").to_pylist()[1]).startswith("http://creativecommons.org")
    assert table.column("similarity").to_pylist() == [0.31, 0.4]
    assert table.column("SAMPLE_ID").type == pa.int64()
    assert table.column("page_tdm_reservation").type == pa.int8()  # no page metas: null, typed
    assert table.column("page_robots").null_count == table.column("page_tdm_reservation").null_count == 2


def test_explicit_columns_and_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("link,alt_text\nhttp://a/1.jpg,hello\n")
    (table,) = cut_shards(InputSpec(str(path), url_col="link", caption_col="alt_text"), 10)
    assert table.column("caption").to_pylist() == ["hello"]
    with pytest.raises(ValueError, match="no caption column 'nope'"):
        list(cut_shards(InputSpec(str(path), url_col="link", caption_col="nope"), 10))
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no URL column"):
        list(cut_shards(InputSpec(str(path)), 10))
    with pytest.raises(ValueError, match="cannot tell the format"):
        file_format("in.xlsx")
    with pytest.raises(FileNotFoundError):
        list(cut_shards(InputSpec(str(tmp_path / "missing.parquet")), 10))


def test_broken_jsonl_lines_become_rows_without_url(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"url": "http://a/1.jpg"}\nnot json\n{"url": "http://a/2.jpg", "caption": 3}\n')
    (table,) = cut_shards(InputSpec(str(path)), 10)
    assert table.column("url").to_pylist() == ["http://a/1.jpg", None, "http://a/2.jpg"]
    assert table.column("caption").to_pylist() == [None, None, "3"]


def test_folder_of_files_is_read_in_order_and_planned_once(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    write(folder / "b.jsonl", "jsonl")
    write(folder / "a.csv", "csv")
    (folder / "notes.md").write_text("ignored")
    out = tmp_path / "out"
    tasks = plan_tasks(InputSpec(str(folder)), str(out), shard_size=4)
    assert [t.index for t in tasks] == [0, 1, 2]
    first = pq.read_table(tasks[0].inputs[0]).column("url").to_pylist()
    assert first == [r["url"] for r in RECORDS[:4]]  # a.csv comes first
    stamp = Path(tasks[0].inputs[0]).stat().st_mtime_ns
    assert plan_tasks(InputSpec(str(folder)), str(out), shard_size=4) == tasks
    assert Path(tasks[0].inputs[0]).stat().st_mtime_ns == stamp  # reused, not rewritten


def test_candidates_folder_keeps_its_shards_and_keys(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "candidates"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(
        [{"key": "0000030000007", "url": "http://a/1.jpg", "caption": "c", "hash": 5}], schema=None
    )
    pq.write_table(table, folder / "00003.parquet")
    assert candidates_dir(str(tmp_path / "run")) == str(folder)
    (task,) = plan_tasks(InputSpec(str(tmp_path / "run")), str(tmp_path / "run"), shard_size=100)
    assert task.index == 3 and task.inputs == (str(folder / "00003.parquet"),)


def test_fsspec_urls_are_read_through_fsspec() -> None:
    import fsspec

    with fsspec.open("memory://dl-inputs/list.jsonl.gz", "wb", compression="gzip") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in RECORDS).encode())
    (table,) = cut_shards(InputSpec("memory://dl-inputs/list.jsonl.gz"), 10)
    assert table.column("url").to_pylist() == [r["url"] for r in RECORDS]
