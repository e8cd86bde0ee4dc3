"""atheris harness: bytes as a WAT file through the whole extract shard (framing, JSON, rules, parquet)."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import fuzz, instrumented

with instrumented():
    from openpairs.cc.rules import ExtractConfig
    from openpairs.cc.wat import WatFormatError
    from openpairs.stages import extract
    from openpairs.stages.runner import ShardTask
    from tests.extract.watfiles import ALL_WATS

CONFIG = ExtractConfig(language="off", english_only=False)
MAX_SEED_BYTES = 64 * 1024
WORK = Path(tempfile.mkdtemp(prefix="openpairs-fuzz-wat-"))


def seeds() -> Iterator[tuple[str, bytes]]:
    """Small real inputs: each real WAT under MAX_SEED_BYTES, and the first records of each, gzipped one
    per member as Common Crawl writes them, as plain WARC, and as bare JSON payload lines."""
    for path in ALL_WATS:
        data = path.read_bytes()
        if len(data) <= MAX_SEED_BYTES:
            yield path.name, data
        plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        records = [b"WARC/1.0\r\n" + part for part in plain.split(b"WARC/1.0\r\n")[1:]]
        for number, record in enumerate(records[:12]):
            yield f"{path.name}.{number}.gz", gzip.compress(record, mtime=0)
            yield f"{path.name}.{number}.warc", record
            for line in record.split(b"\n"):
                if line.startswith(b"{") and b'"response"' in line:
                    yield f"{path.name}.{number}.json", line


def one_input(data: bytes) -> None:
    """Extract `data` as a WAT: the shard completes and balances, unless the file is not a WAT at all."""
    wat = WORK / "in.warc.wat"
    wat.write_bytes(data)
    try:
        stats = extract.run_shard(CONFIG, ShardTask(extract.STAGE, 0, (str(wat),), str(WORK)))
    except WatFormatError:
        return
    if not stats.is_balanced():
        raise AssertionError(f"unbalanced shard stats: {stats.to_dict()}")


if __name__ == "__main__":
    fuzz("wat", one_input, seeds(), max_len=MAX_SEED_BYTES)
