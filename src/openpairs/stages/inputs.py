"""Reading download inputs: `candidates/` shards, or any file/folder img2dataset accepts, streamed.

Formats: parquet, csv, tsv, jsonl, json, txt (and `.gz` of each), local or any fsspec URL. Rows come out
as record batches with the candidate columns (missing ones null) plus the requested extra columns; a file
is never loaded whole.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from isal import isal_zlib

from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.io import fs as ofs
from openpairs.stages.input_readers import INPUT_ERROR, raw_batches, to_text

FORMATS = ("parquet", "csv", "tsv", "jsonl", "json", "txt")
PER_RECORD = ("jsonl", "json", "txt")  # formats whose records name their own fields
# Column names tried, in order, when --url-col / --caption-col are not given (LAION's first letters up).
URL_ALIASES = ("url", "URL", "link", "image_url")
CAPTION_ALIASES = ("caption", "TEXT", "text", "alt", "ALT")
# Other candidate columns and their names in LAION metadata.
COLUMN_ALIASES = {"license": ("license", "LICENSE"), "language": ("language", "LANGUAGE")}
# Where `normalise` puts the values of InputSpec.hash_col (hex strings); never written to an output.
EXPECTED_SHA256 = "_expected_sha256"
# What reading a file that cannot be read at all raises: bad structure, I/O, a damaged .gz (zlib or isal).
UNREADABLE_FILE = (
    ValueError,
    OSError,
    EOFError,
    zlib.error,
    isal_zlib.error,
    pa.ArrowException,
)
# Columns of a normalised table that only the download reads (never written to an output).
INTERNAL_COLUMNS = (EXPECTED_SHA256, INPUT_ERROR)


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
        try:
            for batch in raw_batches(path, fmt):
                if batch.num_rows:
                    table = pa.Table.from_batches([batch])
                    yield normalise(
                        table, spec, stringify_extras=fmt != "parquet", per_record=fmt in PER_RECORD
                    )
        except FileNotFoundError:
            raise
        except UNREADABLE_FILE as exc:  # type: ignore[misc]  # (isal's stub: its error is a class)
            raise ValueError(f"cannot read {fmt} input {path}: {exc}") from exc


def normalise(
    raw: pa.Table, spec: InputSpec, stringify_extras: bool = False, per_record: bool = False
) -> pa.Table:
    """Map a raw batch onto CANDIDATE_SCHEMA (missing columns null) plus the extra columns asked for and
    the INTERNAL_COLUMNS. `per_record`: the batch's columns are its records' fields (JSON), so a missing
    URL or caption column means these records have none, not that the input lacks it."""
    names = raw.column_names
    picked: dict[str, str | None] = {
        "url": _pick(names, spec.url_col, URL_ALIASES, "url", per_record),
        "caption": _pick(names, spec.caption_col, CAPTION_ALIASES, "caption", per_record),
    }
    if picked["url"] is None and not per_record:
        raise ValueError(f"no URL column in input (columns: {', '.join(names)}); pass --url-col")
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
            values = pa.array([to_text(v) for v in values.to_pylist()], pa.string())
        arrays.append(values)
        fields.append(pa.field(extra, values.type))
    if spec.hash_col:
        hashes = _pick(names, spec.hash_col, (), "--verify-hash", per_record)
        arrays.append(_hex_digests(raw.column(hashes) if hashes else pa.nulls(raw.num_rows)))
        fields.append(pa.field(EXPECTED_SHA256, pa.string()))
    arrays.append(_column(raw, INPUT_ERROR if INPUT_ERROR in names else None, pa.string()))
    fields.append(pa.field(INPUT_ERROR, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _hex_digests(column: Any) -> pa.Array:
    """Expected digests as lower-case hex strings (binary digests hex-encoded; blanks become null)."""
    digests = []
    for value in column.to_pylist():
        text = value.hex() if isinstance(value, bytes) else str(value or "")
        digests.append(text.strip().lower() or None)
    return pa.array(digests, pa.string())


def _pick(
    names: list[str], wanted: str, aliases: tuple[str, ...], what: str, optional: bool = False
) -> str | None:
    if wanted:
        if wanted not in names and not optional:
            raise ValueError(f"input has no {what} column {wanted!r} (columns: {', '.join(names)})")
        return wanted if wanted in names else None
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


def _is_dir(path: str) -> bool:
    fs, p = ofs.filesystem(path)
    return bool(fs.isdir(p))


def _known(path: str, forced: str) -> bool:
    try:
        file_format(path, forced)
    except ValueError:
        return False
    return True
