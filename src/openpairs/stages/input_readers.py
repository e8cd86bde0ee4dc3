"""Raw record batches of one input file, per format (parquet, csv, tsv, jsonl, json, txt), streamed.

A row that cannot be read (a CSV row with the wrong number of fields, a JSON line that is not an object)
is still a row: it comes out without a URL and with its reason in the INPUT_ERROR column, so the download
counts it (`invalid_url`, with that message) instead of the file failing. Bytes that are not UTF-8 are
replaced (U+FFFD) in every text format. Only a file that cannot be read as a whole raises.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.io import fs as ofs

BATCH_ROWS = 8192
CSV_BLOCK_BYTES = 1 << 20
# Where a row that could not be read says why (never written to an output).
INPUT_ERROR = "_input_error"


def raw_batches(path: str, fmt: str) -> Iterator[pa.RecordBatch]:
    """The record batches of the file at `path`, read as `fmt`."""
    with ofs.open_file(path, "rb", compression="infer") as handle:
        if fmt == "parquet":
            yield from map(_utf8_columns, pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS))
        elif fmt in ("csv", "tsv"):
            yield from _csv_batches(handle, "\t" if fmt == "tsv" else ",")
        elif fmt == "txt":
            yield from _pylist_batches({"url": line.strip()} for line in _lines(handle) if line.strip())
        elif fmt == "jsonl":
            yield from _pylist_batches(_json_lines(handle))
        else:
            yield from _pylist_batches(_json_array(handle))


def to_text(value: Any) -> str | None:
    """A cell as text: strings as they are, other values as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _utf8_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with invalid UTF-8 in its text columns replaced (parquet readers do not check it, and one
    bad value would fail every later step that reads the column)."""
    for index, column in enumerate(batch.columns):
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            column = column.dictionary_decode()
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())
            text = [None if b is None else b.decode("utf-8", "replace") for b in raw.to_pylist()]
            batch = batch.set_column(index, batch.schema.field(index).name, pa.array(text, column.type))
    return batch


class Utf8Repaired(io.RawIOBase):
    """A byte stream with every invalid UTF-8 sequence replaced by U+FFFD (pyarrow's CSV reader refuses
    a whole file for one bad byte)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = b""
        self._ended = False

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` with repaired bytes (0 at the end)."""
        while not self._pending and not self._ended:
            chunk = self._raw.read(max(len(buffer), 1 << 16))
            self._ended = not chunk
            self._pending = self._decoder.decode(chunk, final=self._ended).encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _csv_batches(handle: IO[bytes], delimiter: str) -> Iterator[pa.RecordBatch]:
    """CSV/TSV with a header row, every column read as text, block by block; each row with the wrong
    number of fields follows the batch it was found in, as an INPUT_ERROR row."""
    import pyarrow.csv as pcsv

    stream = io.BufferedReader(Utf8Repaired(handle), CSV_BLOCK_BYTES)
    names = _csv_header(stream.readline().decode("utf-8"), delimiter)
    if not names or not stream.peek(1):  # no header, or no row after it
        return
    unreadable: list[str] = []

    def skip(row: Any) -> str:
        fields = f"{row.actual_columns} field(s), the header has {row.expected_columns}"
        unreadable.append(f"unreadable CSV row ({fields}): {row.text[:200]!r}")
        return "skip"

    reader = pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(column_names=names, block_size=CSV_BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=skip
        ),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    for batch in reader:
        yield batch
        if unreadable:
            empty = pa.nulls(len(unreadable), pa.string())
            yield pa.RecordBatch.from_arrays([empty] * len(names) + [pa.array(unreadable, pa.string())],
                                             [*names, INPUT_ERROR])  # fmt: skip
            unreadable.clear()


def _csv_header(line: str, delimiter: str) -> list[str]:
    """The column names of a CSV header line, a repeated name numbered as pandas does ('a', 'a.1');
    ValueError when the line does not parse."""
    try:
        names = next(csv.reader([line.removeprefix("\ufeff").rstrip("\r\n")], delimiter=delimiter), [])
    except csv.Error as exc:
        raise ValueError(f"unreadable header row: {exc}") from None
    unique: list[str] = []
    for name in names:
        numbered, copy = name, 0
        while numbered in unique:
            copy += 1
            numbered = f"{name}.{copy}"
        unique.append(numbered)
    return unique


def _lines(handle: IO[bytes]) -> Iterator[str]:
    yield from io.TextIOWrapper(handle, encoding="utf-8", errors="replace")


def _json_lines(handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file; a line that is not a JSON object is an INPUT_ERROR row."""
    for number, line in enumerate(_lines(handle), 1):
        if line.strip():
            yield _json_object(line, f"line {number}")


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return {INPUT_ERROR: f"{where} is not JSON: {str(exc)[:200]}"}
    return _record(value, where)


def _record(value: Any, where: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else an INPUT_ERROR row saying what it is."""
    if isinstance(value, dict):
        return value
    return {INPUT_ERROR: f"{where} is a JSON {type(value).__name__}, not an object: {to_text(value)!s:.100}"}


def _json_array(handle: IO[bytes], chunk: int = 1 << 20) -> Iterator[dict[str, Any]]:
    """The objects of a top-level JSON array, decoded incrementally."""
    decoder = json.JSONDecoder()
    reader = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
    buffer, position, started, count = "", 0, False, 0
    while True:
        more = reader.read(chunk)
        buffer = buffer[position:] + more
        position = 0
        while True:
            while position < len(buffer) and (
                buffer[position] in " \t\r\n," or (buffer[position] == "[" and not started)
            ):
                started = started or buffer[position] == "["
                position += 1
            if position >= len(buffer) or buffer[position] == "]":
                break
            try:
                value, end = decoder.raw_decode(buffer, position)
            except (json.JSONDecodeError, RecursionError):
                if not more:
                    raise ValueError("malformed JSON input (expected an array of objects)") from None
                break  # need more text
            position, count = end, count + 1
            yield _record(value, f"item {count}")
        if not more:
            if not started:
                raise ValueError("JSON input must be an array of objects")
            return


def _pylist_batches(records: Iterator[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH_ROWS:
            yield _records_batch(batch)
            batch = []
    if batch:
        yield _records_batch(batch)


def _records_batch(records: list[dict[str, Any]]) -> pa.RecordBatch:
    names = list(dict.fromkeys(k for r in records for k in r)) or ["url"]
    columns = {n: [to_text(r.get(n)) for r in records] for n in names}
    return pa.RecordBatch.from_pydict({n: pa.array(v, pa.string()) for n, v in columns.items()})
