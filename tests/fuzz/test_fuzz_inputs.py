"""Fuzzing the download's input readers: every format with garbage rows, and garbage files.

A file that is well-formed as a whole (a header with a URL column, a JSON array, a readable parquet) keeps
every row, however broken: a row that cannot be read is a row without a URL that says why. A file that is
not readable at all fails with one clear error that names it."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.stages.download_plan import cut_shards
from openpairs.stages.inputs import INPUT_ERROR, InputSpec
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.strategies import ANY_TEXT, json_values, urls

CELLS = ANY_TEXT | urls() | st.sampled_from(["", '"', '""', ",", "\t", "\n", "\r\n", "a\x00b", "\ufeff"])
NAMES = st.lists(
    st.sampled_from(["caption", "TEXT", "license", "extra", "key", "hash"]) | ANY_TEXT, max_size=3
)
BAD_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x00", b"\r", b"\xef\xbb\xbf"])


@st.composite
def _csv(draw: st.DrawFn, delimiter: str) -> tuple[bytes, int]:
    """A CSV/TSV with a URL column and any rows, some ragged, some with bytes that are not UTF-8."""
    header = ["url", *draw(NAMES)]
    records = draw(st.lists(st.lists(CELLS, min_size=1, max_size=len(header) + 2), max_size=12))
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=delimiter, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    )
    writer.writerow(header)
    writer.writerows(records)
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + buffer.getvalue().encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(data.index(b"\n") + 1, len(data)))  # in a row, not the header
        data = data[:position] + draw(BAD_BYTES) + data[position:]
    return data, -1  # quoting makes the row count the reader's business: checked by its own invariants


@st.composite
def _jsonl(draw: st.DrawFn) -> tuple[bytes, int]:
    lines = draw(
        st.lists(
            st.fixed_dictionaries({"url": urls()}, optional={"caption": json_values()}).map(json.dumps)
            | json_values().map(json.dumps)
            | ANY_TEXT.filter(lambda s: "\n" not in s and "\r" not in s),
            max_size=12,
        )
    )
    text = "\n".join(lines).encode("utf-8", "surrogatepass")
    return text, len([line for line in io.TextIOWrapper(io.BytesIO(text), errors="replace") if line.strip()])


@st.composite
def _json(draw: st.DrawFn) -> tuple[bytes, int]:
    items = draw(st.lists(st.fixed_dictionaries({"url": urls()}) | json_values(), max_size=10))
    return json.dumps(items, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass"), len(items)


@st.composite
def _txt(draw: st.DrawFn) -> tuple[bytes, int]:
    parts = draw(st.lists(urls().map(lambda u: u.encode("utf-8", "surrogatepass")) | BAD_BYTES, max_size=12))
    data = b"\n".join(parts)
    return data, len([line for line in io.TextIOWrapper(io.BytesIO(data), errors="replace") if line.strip()])


PARQUET_TYPES = st.sampled_from(
    [
        *(pa.string(), pa.binary(), pa.int64(), pa.float64(), pa.bool_(), pa.list_(pa.int32()), pa.null()),
        *(pa.struct([("a", pa.string())]), pa.timestamp("ms"), pa.dictionary(pa.int8(), pa.string())),
    ]
)


@st.composite
def _parquet(draw: st.DrawFn) -> tuple[bytes, int]:
    """A parquet file whose url (and other) columns may have any type and any values."""
    rows = draw(st.integers(0, 8))
    names = ["url", *draw(NAMES)]
    columns = {}
    for name in dict.fromkeys(names):
        kind = draw(PARQUET_TYPES) if name != "url" or draw(st.booleans()) else pa.string()
        values = [draw(_value(kind)) for _ in range(rows)]
        columns[name] = pa.array(values, kind) if kind != pa.null() else pa.nulls(rows)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, row_group_size=max(rows // 2, 1))
    return buffer.getvalue(), rows


def _value(kind: pa.DataType) -> st.SearchStrategy[Any]:
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "string": CELLS | urls(),
        "binary": st.binary(max_size=12) | urls().map(lambda u: u.encode("utf-8", "surrogatepass")),
        "int64": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(),
        "bool": st.booleans(),
        "list<item: int32>": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3),
        "struct<a: string>": st.fixed_dictionaries({"a": CELLS}),
        "timestamp[ms]": st.integers(-(10**12), 10**12),
        "dictionary<values=string, indices=int8, ordered=0>": CELLS,
    }
    return st.none() | by_type.get(str(kind), st.none())


WELL_FORMED = {
    "csv": _csv(","),
    "tsv": _csv("\t"),
    "jsonl": _jsonl(),
    "json": _json(),
    "txt": _txt(),
    "parquet": _parquet(),
}


def _compressed(data: bytes, how: str) -> bytes:
    """`data` as is (""), gzipped ("gzip"), or gzipped with its deflate stream damaged ("damaged")."""
    if not how:
        return data
    packed = bytearray(gzip.compress(data, mtime=0))
    if how == "damaged":
        for i in range(10, len(packed) - 8, 7):
            packed[i] ^= 0x5A
    return bytes(packed)


def _read(fmt: str, data: bytes, gz: str) -> pa.Table:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input.{fmt}{'.gz' if gz else ''}"
        path.write_bytes(_compressed(data, gz))
        spec = InputSpec(str(path), save_additional_columns=("extra",))
        tables = list(cut_shards(spec, shard_size=5))
    return pa.concat_tables(tables) if tables else pa.table({})


@pytest.mark.parametrize("fmt", sorted(WELL_FORMED))
@fuzz_settings(40)
@given(data=st.data(), gz=st.sampled_from(["", "gzip"]))
def test_well_formed_file_keeps_every_row(fmt: str, data: st.DataObject, gz: str) -> None:
    """Each row of a readable file comes out once, keyed, with the candidate columns; a row that could
    not be read has no URL and says why."""
    content, rows = data.draw(WELL_FORMED[fmt])
    table = _read(fmt, content, gz)
    if rows >= 0:
        assert table.num_rows == rows
    if not table.num_rows:
        return
    assert table.schema.names[: len(CANDIDATE_SCHEMA)] == CANDIDATE_SCHEMA.names
    keys = table.column("key").to_pylist()
    assert len(set(keys)) == len(keys)
    for url, error in zip(
        table.column("url").to_pylist(), table.column(INPUT_ERROR).to_pylist(), strict=True
    ):
        assert error is None or (url is None and error)


@pytest.mark.parametrize("fmt", sorted(WELL_FORMED))
@fuzz_settings(30)
@given(content=st.binary(max_size=200), gz=st.sampled_from(["", "gzip", "damaged"]))
def test_garbage_file_is_read_or_refused_by_name(fmt: str, content: bytes, gz: str) -> None:
    """Random bytes in any format, maybe in a damaged .gz: rows, or one ValueError that names the file,
    never a crash."""
    try:
        _read(fmt, content, gz)
    except ValueError as exc:
        assert f"input.{fmt}" in str(exc), exc
