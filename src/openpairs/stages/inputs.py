"""Reading download inputs: `candidates/` shards, or any file/folder img2dataset accepts, streamed.

Formats: parquet, csv, tsv, jsonl, json, txt (and `.gz` of each), local or any fsspec URL. Rows come out
as record batches with the candidate columns (missing ones null) plus the requested extra columns; a file
is never loaded whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.io import fs as ofs

FORMATS = ("parquet", "csv", "tsv", "jsonl", "json", "txt")
BATCH_ROWS = 8192
# Column names tried, in order, when --url-col / --caption-col are not given (LAION's first letters up).
URL_ALIASES = ("url", "URL", "link", "image_url")
CAPTION_ALIASES = ("caption", "TEXT", "text", "alt", "ALT")
# Other candidate columns and their names in LAION metadata.
COLUMN_ALIASES = {"license": ("license", "LICENSE"), "language": ("language", "LANGUAGE")}
# Where `normalise` puts the values of InputSpec.hash_col (hex strings); never written to an output.
EXPECTED_SHA256 = "_expected_sha256"


@dataclass(frozen=True)
class InputSpec:
    """What to read and which columns mean what."""

    path: str
    input_format: str = ""  # "" = from each file's extension
    url_col: str = ""  # "" = first of URL_ALIASES present
    caption_col: str = ""  # "" = first of CAPTION_ALIASES present (none: empty captions)
    save_additional_columns: tuple[str, ...] = ()
    hash_col: str = ""  # column of expected sha256 digests (must exist when set), read as EXPECTED_SHA256


def file_format(path: str, forced: str = "") -> str:
    """The input format of `path` (from its extension unless `forced`)."""
    if forced:
        if forced not in FORMATS:
            raise ValueError(f"input format must be one of {', '.join(FORMATS)}, got {forced!r}")
        return forced
    name = path.lower().removesuffix(".gz")
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    raise ValueError(f"cannot tell the format of {path!r}: expected .{', .'.join(FORMATS)} (optionally .gz)")


def input_files(spec: InputSpec) -> list[str]:
    """The files to read, in order: a glob, a folder (its files of known formats) or one file."""
    paths = ofs.expand(spec.path)
    if len(paths) == 1 and _is_dir(paths[0]):
        names = [p for p in ofs.list_files(paths[0]) if _known(p, spec.input_format)]
        if not names:
            raise ValueError(f"no input files ({', '.join(FORMATS)}) in folder {spec.path}")
        return names
    missing = [p for p in paths if not ofs.exists(p)]
    if missing or not paths:
        raise FileNotFoundError(f"input not found: {missing[0] if missing else spec.path}")
    return paths


def iter_rows(spec: InputSpec) -> Iterator[pa.Table]:
    """Normalised batches (candidate columns + extra columns, no key) of every input file, in order."""
    for path in input_files(spec):
        fmt = file_format(path, spec.input_format)
        for batch in _raw_batches(path, fmt):
            if batch.num_rows:
                yield normalise(pa.Table.from_batches([batch]), spec, stringify_extras=fmt != "parquet")


def normalise(raw: pa.Table, spec: InputSpec, stringify_extras: bool = False) -> pa.Table:
    """Map a raw batch onto CANDIDATE_SCHEMA (missing columns null) plus the extra columns asked for."""
    names = raw.column_names
    url = _pick(names, spec.url_col, URL_ALIASES, "url")
    if url is None:
        raise ValueError(f"no URL column in input (columns: {', '.join(names)}); pass --url-col")
    picked: dict[str, str | None] = {
        "url": url,
        "caption": _pick(names, spec.caption_col, CAPTION_ALIASES, "caption"),
    }
    for column in CANDIDATE_SCHEMA.names:
        if column not in picked:
            picked[column] = _pick(names, "", COLUMN_ALIASES.get(column, (column,)), column)
    arrays = [_column(raw, picked[f.name], f.type) for f in CANDIDATE_SCHEMA]
    fields = list(CANDIDATE_SCHEMA)
    for extra in spec.save_additional_columns:
        if extra in CANDIDATE_SCHEMA.names:
            continue
        values: Any = raw.column(extra) if extra in names else pa.nulls(raw.num_rows, pa.string())
        if stringify_extras and not pa.types.is_string(values.type):
            values = pa.array([_to_text(v) for v in values.to_pylist()], pa.string())
        arrays.append(values)
        fields.append(pa.field(extra, values.type))
    if spec.hash_col:
        arrays.append(_hex_digests(raw.column(_pick(names, spec.hash_col, (), "--verify-hash"))))
        fields.append(pa.field(EXPECTED_SHA256, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _hex_digests(column: Any) -> pa.Array:
    """Expected digests as lower-case hex strings (binary digests hex-encoded; blanks become null)."""
    digests = []
    for value in column.to_pylist():
        text = value.hex() if isinstance(value, bytes) else str(value or "")
        digests.append(text.strip().lower() or None)
    return pa.array(digests, pa.string())


def _pick(names: list[str], wanted: str, aliases: tuple[str, ...], what: str) -> str | None:
    if wanted:
        if wanted not in names:
            raise ValueError(f"input has no {what} column {wanted!r} (columns: {', '.join(names)})")
        return wanted
    return next((a for a in aliases if a in names), None)


def _column(raw: pa.Table, name: str | None, kind: Any) -> Any:
    if name is None:
        return pa.nulls(raw.num_rows, kind)
    column = raw.column(name)
    if column.type == kind:
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_safe_cast(v, kind) for v in column.to_pylist()], kind)


def _safe_cast(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    try:
        return pa.scalar(value).cast(kind).as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return str(value) if pa.types.is_string(kind) else None


def _to_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _raw_batches(path: str, fmt: str) -> Iterator[pa.RecordBatch]:
    with ofs.open_file(path, "rb", compression="infer") as handle:
        if fmt == "parquet":
            yield from pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS)
        elif fmt in ("csv", "tsv"):
            yield from _csv_batches(handle, "\t" if fmt == "tsv" else ",")
        elif fmt == "txt":
            yield from _pylist_batches({"url": line.strip()} for line in _lines(handle) if line.strip())
        elif fmt == "jsonl":
            yield from _pylist_batches(_json_object(line) for line in _lines(handle) if line.strip())
        else:
            yield from _pylist_batches(_json_array(handle))


def _csv_batches(handle: IO[bytes], delimiter: str) -> Iterator[pa.RecordBatch]:
    """CSV/TSV with a header row, every column read as text, block by block."""
    import pyarrow.csv as pcsv

    header = handle.readline().decode("utf-8-sig")
    names = next(csv.reader([header], delimiter=delimiter), [])
    if not names:
        return
    stream = pcsv.open_csv(
        handle,
        read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 20),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    yield from stream


def _lines(handle: IO[bytes]) -> Iterator[str]:
    yield from io.TextIOWrapper(handle, encoding="utf-8", errors="replace")


def _json_object(line: str) -> dict[str, Any]:
    """One JSON-lines record; a broken line becomes a row without a URL (counted invalid_url)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_array(handle: IO[bytes], chunk: int = 1 << 20) -> Iterator[dict[str, Any]]:
    """The objects of a top-level JSON array, decoded incrementally."""
    decoder = json.JSONDecoder()
    reader = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
    buffer, position, started = "", 0, False
    while True:
        more = reader.read(chunk)
        buffer = buffer[position:] + more
        position = 0
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,[":
                started = started or buffer[position] == "["
                position += 1
            if position >= len(buffer) or buffer[position] == "]":
                break
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                if not more:
                    raise ValueError("malformed JSON input (expected an array of objects)") from None
                break  # need more text
            position = end
            yield value if isinstance(value, dict) else {}
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
    columns = {
        n: [_to_text(r.get(n)) if not isinstance(r.get(n), str) else r.get(n) for r in records] for n in names
    }
    return pa.RecordBatch.from_pydict({n: pa.array(v, pa.string()) for n, v in columns.items()})


def _is_dir(path: str) -> bool:
    fs, p = ofs.filesystem(path)
    return bool(fs.isdir(p))


def _known(path: str, forced: str) -> bool:
    try:
        file_format(path, forced)
    except ValueError:
        return False
    return True
