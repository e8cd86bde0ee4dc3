"""Inputs the fuzzers found that broke the download's input readers (each failed before its fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.core.status import Status
from openpairs.stages.download_plan import cut_shards
from openpairs.stages.inputs import INPUT_ERROR, InputSpec
from tests.download.helpers import FAST, download, rows


def _table(path: Path, data: bytes, **spec: object) -> pa.Table:
    path.write_bytes(data)
    tables = list(cut_shards(InputSpec(str(path), **spec), 100))  # type: ignore[arg-type]
    return pa.concat_tables(tables) if tables else pa.table({})


def test_csv_row_with_wrong_field_count_is_a_row_that_says_why(tmp_path: Path) -> None:
    """Was: pyarrow's 'CSV parse error: Expected 2 columns, got 3' failed the whole input."""
    table = _table(
        tmp_path / "in.csv",
        b"url,caption\nhttp://a.example/1.jpg,one\nnot,a,row\nhttp://a.example/2.jpg,two\n",
    )
    assert table.column("url").to_pylist() == ["http://a.example/1.jpg", "http://a.example/2.jpg", None]
    errors = table.column(INPUT_ERROR).to_pylist()
    assert errors[:2] == [None, None] and "3 field(s), the header has 2" in errors[2]


def test_csv_bytes_that_are_not_utf8_are_replaced(tmp_path: Path) -> None:
    """Was: 'CSV conversion error to string: invalid UTF8 data' failed the whole input."""
    table = _table(tmp_path / "in.tsv", b"url\tcaption\nhttp://a.example/1.jpg\tcaf\xe9\n")
    assert table.column("caption").to_pylist() == ["caf\ufffd"]


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    """Was: 'Empty CSV file' failed the whole input."""
    assert _table(tmp_path / "in.csv", b"url,caption\r\n").num_rows == 0


def test_repeated_csv_header_names_are_numbered(tmp_path: Path) -> None:
    """Was: 'Field caption exists 2 times' (or a wrong column) failed the input; now numbered as pandas does."""
    table = _table(tmp_path / "in.csv", b"url,caption,caption\nhttp://a.example/1.jpg,one,two\n",
                   save_additional_columns=("caption.1",))  # fmt: skip
    assert table.column("caption").to_pylist() == ["one"]
    assert table.column("caption.1").to_pylist() == ["two"]


def test_unreadable_csv_header_names_the_file(tmp_path: Path) -> None:
    """Was: csv.Error ('new-line character seen in unquoted field') escaped without naming the file."""
    with pytest.raises(ValueError, match=r"in\.csv: unreadable header row"):
        _table(tmp_path / "in.csv", b"u\rrl,caption\nx,y\n")


def test_damaged_gzip_input_names_the_file(tmp_path: Path) -> None:
    """Was: isal's IsalError ('Invalid deflate block found') escaped the planning, naming no file."""
    with pytest.raises(ValueError, match=r"in\.jsonl\.gz: .*deflate"):
        _table(tmp_path / "in.jsonl.gz", b"\x1f\x8b\x08\x00" + b"not deflate at all" * 4)


def test_json_lines_without_any_url_field_are_rows_without_url(tmp_path: Path) -> None:
    """Was: a batch of JSON lines none of which had a url field failed the whole input ('no URL column')."""
    table = _table(tmp_path / "in.jsonl", b'{"caption": "one"}\n[1, 2]\n')
    assert table.column("url").to_pylist() == [None, None]
    assert table.column("caption").to_pylist() == ["one", None]
    assert "line 2 is a JSON list, not an object" in table.column(INPUT_ERROR).to_pylist()[1]


def test_array_inside_a_json_array_does_not_swallow_what_follows(tmp_path: Path) -> None:
    """Was: '[[1, 2], {...}]' skipped the inner '[' as if it opened the file, read 1 and 2 as items and
    stopped at the inner ']': the object after it was silently lost."""
    data = json.dumps([[1, 2], {"url": "http://a.example/1.jpg"}]).encode()
    table = _table(tmp_path / "in.json", data)
    assert table.column("url").to_pylist() == [None, "http://a.example/1.jpg"]
    assert "item 1 is a JSON list" in table.column(INPUT_ERROR).to_pylist()[0]


def test_unreadable_rows_are_counted_with_their_reason(tmp_path: Path) -> None:
    """A download over such an input accounts for every row: the unreadable one is invalid_url, with why."""
    path = tmp_path / "in.csv"
    path.write_bytes(b"url,caption\nnot a url,one\nbroken,row,here\n")
    result = download(path, tmp_path / "out", FAST)
    assert result.ok and result.total.is_balanced() and result.total.rows_in == 2
    written = {row["url"]: row for row in rows(tmp_path / "out")}
    assert written[None]["status"] == Status.INVALID_URL
    assert "unreadable CSV row" in written[None]["error"]
    assert INPUT_ERROR not in written[None]


def test_parquet_text_that_is_not_utf8_is_replaced(tmp_path: Path) -> None:
    """Was (found by atheris): parquet strings are not checked for UTF-8 on read, so one bad value was
    planned as is and failed its whole download shard (UnicodeDecodeError reading the url column)."""
    bad = pa.array([b"http://10.0.0.1/\xff.jpg", b"http://10.0.0.1/ok.jpg"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"url": bad, "caption": bad}), tmp_path / "in.parquet")
    result = download(
        tmp_path / "in.parquet", tmp_path / "out", FAST
    )  # a private address: refused, unfetched
    assert result.ok and result.total.statuses == {Status.BLOCKED_ADDRESS: 2}
    assert [row["caption"] for row in rows(tmp_path / "out")] == [
        "http://10.0.0.1/\ufffd.jpg",
        "http://10.0.0.1/ok.jpg",
    ]
