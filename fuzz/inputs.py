"""atheris harness: bytes as a download input file of each format (csv, tsv, jsonl, json, txt, parquet)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import fuzz, instrumented

with instrumented():
    import pyarrow as pa
    import pyarrow.parquet as pq

    from openpairs.stages.download_plan import cut_shards
    from openpairs.stages.inputs import FORMATS, INPUT_ERROR, InputSpec

WORK = Path(tempfile.mkdtemp(prefix="openpairs-fuzz-inputs-"))
SAMPLE = [
    {"url": "http://a.example/1.jpg", "caption": "a cat, asleep", "extra": 1},
    {"url": "https://b.example/x/2.png?q=1", "caption": 'a "quoted"\nline', "extra": None},
    {"url": None, "caption": "café ☕", "extra": 3},
]


def _encoded(fmt: str) -> bytes:
    """SAMPLE written in `fmt`, as a user's file would be."""
    table = pa.Table.from_pylist(SAMPLE)
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer)
    elif fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, buffer, pcsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ","))
    elif fmt == "txt":
        buffer.write(b"".join(f"{row['url']}\n".encode() for row in SAMPLE if row["url"]))
    else:
        import json

        rows = [json.dumps(row) for row in SAMPLE]
        buffer.write(("\n".join(rows) if fmt == "jsonl" else "[" + ",".join(rows) + "]").encode())
    return buffer.getvalue()


def seeds() -> Iterator[tuple[str, bytes]]:
    """A small real file of each format, behind its format byte."""
    for number, fmt in enumerate(FORMATS):
        yield fmt, bytes([number]) + _encoded(fmt)


def one_input(data: bytes) -> None:
    """Rows (every unreadable one without a URL and with its reason), or one ValueError naming the file."""
    if not data:
        return
    fmt = FORMATS[data[0] % len(FORMATS)]
    path = WORK / f"input.{fmt}"
    path.write_bytes(data[1:])
    try:
        tables = list(cut_shards(InputSpec(str(path), save_additional_columns=("extra",)), 4))
    except ValueError as exc:
        if str(path) not in str(exc):
            raise AssertionError(f"an input error that does not name its file: {exc}") from exc
        return
    for table in tables:
        for url, error in zip(
            table.column("url").to_pylist(), table.column(INPUT_ERROR).to_pylist(), strict=True
        ):
            if error is not None and url is not None:
                raise AssertionError(f"an unreadable row with a URL: {url!r} ({error})")


if __name__ == "__main__":
    fuzz("inputs", one_input, seeds())
