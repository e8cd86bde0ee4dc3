"""Stream WAT files record by record, surviving corrupt gzip members and damaged WARC framing.

Common Crawl writes one gzip member per WARC record. We inflate member by member (never the whole file),
hand each member to fastwarc, and when a member is corrupt we count it and resynchronise on the next gzip
header. Files that fastwarc rejects as WARC (e.g. fragments cut by lines) fall back to a line scan for the
WAT JSON payloads, the way LAION's own scripts read WAT, and that recovery is counted.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastwarc.warc import ArchiveIterator, WarcRecordType
from isal import isal_zlib  # the zlib API, about twice as fast to inflate

from openpairs.core.stats import ShardStats

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_CHUNK = 1 << 16  # small reads: each member end copies the rest of the chunk
MAX_MEMBER_BYTES = 256 << 20  # one WARC record; larger means the file is not gzipped per record
SPOOL_BYTES = 32 << 20  # an uncompressed WARC is spooled to disk past this


@dataclass(frozen=True)
class WatPayload:
    """One WAT metadata record: its JSON payload bytes and its WARC headers (None when line-scanned)."""

    headers: Any
    payload: bytes

    def target_uri(self) -> str:
        """The WARC-Target-URI header (read on demand: the JSON payload carries it too)."""
        return str(self.headers.get("WARC-Target-URI") or "") if self.headers is not None else ""


class CorruptMember(Exception):
    """A gzip member that cannot be inflated to its end."""


class WatFormatError(Exception):
    """The input cannot be read as a WAT file at all."""


def iter_payloads(stream: BinaryIO, stats: ShardStats) -> Iterator[WatPayload]:
    """All metadata payloads of a WAT stream (gzip per record, or plain), counting damage in `stats`."""
    head = stream.read(4)
    if not head:
        raise WatFormatError("empty file")
    rest = _Prefixed(head, stream)
    if head.startswith(GZIP_MAGIC) and _seekable(stream):
        yield from _iter_gzip_fast(stream, stats)
    elif head.startswith(GZIP_MAGIC):
        yield from _iter_gzip_members(rest, stats)
    elif head.startswith(b"WARC"):
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            shutil.copyfileobj(rest, spool, READ_CHUNK)  # fastwarc needs a seekable stream
            spool.seek(0)
            yield from _iter_warc_bytes_stream(spool, stats)  # type: ignore[arg-type]
    elif head.lstrip().startswith(b"{"):
        yield from _scan_json_lines(rest.read(), stats)
    else:
        raise WatFormatError(f"not a WARC/WAT file (starts with {head!r})")


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable()) and stream.seek(0) == 0
    except (OSError, ValueError, AttributeError):
        return False


def _iter_gzip_fast(stream: BinaryIO, stats: ShardStats) -> Iterator[WatPayload]:
    """fastwarc reads a seekable file natively; the rest after its last good record (damage, a truncated
    tail) is then read member by member, which counts and skips what is broken."""
    last_good = -1
    records = metadata = 0  # counted here and added once: this loop runs once per record
    try:
        for position, payload in _records(stream):
            last_good = position
            records += 1
            if payload is not None:
                metadata += 1
                yield payload
    except OSError:
        pass
    finally:
        _count(stats, records, metadata, gzip_members=records)
    stream.seek(max(last_good, 0))
    yield from _iter_gzip_members(stream, stats, skip=1 if last_good >= 0 else 0)


def _iter_gzip_members(stream: BinaryIO, stats: ShardStats, skip: int = 0) -> Iterator[WatPayload]:
    """Payloads member by member; the first `skip` intact members were already read."""
    for member, damaged in _inflate_members(stream, stats):
        if skip and not damaged:
            skip -= 1
            continue
        stats.bump("gzip_members")
        if member.startswith(b"WARC/") and not damaged:
            payloads, error = _parse_warc_member(member, stats)
            if error is None:
                yield from payloads
                continue
        yield from _scan_json_lines(member, stats)


def _inflate_members(stream: BinaryIO, stats: ShardStats) -> Iterator[tuple[bytes, bool]]:
    """Yield (decompressed member, was_damaged); corrupt members are counted and skipped past."""
    buffer = stream.read(READ_CHUNK)
    while buffer:
        inflater = isal_zlib.decompressobj(wbits=31)
        parts: list[bytes] = []
        size = 0
        data = buffer
        try:
            while True:
                parts.append(inflater.decompress(data))
                size += len(parts[-1])
                if size > MAX_MEMBER_BYTES:
                    raise WatFormatError(
                        "gzip member over 256 MiB: the file is not gzipped one record per member"
                    )
                if inflater.eof:
                    break
                data = stream.read(READ_CHUNK)
                if not data:
                    raise CorruptMember("truncated gzip member at end of file")
            buffer = inflater.unused_data or stream.read(READ_CHUNK)
            yield b"".join(parts), False
        except (isal_zlib.error, CorruptMember) as exc:  # type: ignore[misc]
            stats.bump("corrupt_gzip_members")
            stats.error(f"corrupt gzip member: {exc}")
            if size:
                yield b"".join(parts), True
            buffer = _resync(data, stream)


def _resync(data: bytes, stream: BinaryIO) -> bytes:
    """Bytes from the next gzip header after a corrupt member (empty at end of file)."""
    search_from = 1
    while True:
        found = data.find(GZIP_MAGIC, search_from)
        if found >= 0:
            return data[found:]
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return b""
        data = data[-2:] + chunk
        search_from = 0


def _records(stream: BinaryIO) -> Iterator[tuple[int, WatPayload | None]]:
    """(stream position, payload) per WARC record, payload None unless it is metadata; OSError on damage."""
    for record in ArchiveIterator(stream, parse_http=False, fsspec_args=False):
        if record.record_type == WarcRecordType.unknown:
            raise OSError("record of unknown type (damaged WARC framing)")
        payload = None
        if record.record_type == WarcRecordType.metadata:
            payload = WatPayload(record.headers, record.reader.read())
        yield record.stream_pos, payload


def _count(stats: ShardStats, records: int, metadata: int, **more: int) -> None:
    """Add a stretch of records (and of metadata records, and other counts) to `stats`, zeros left out."""
    for name, count in {"records": records, "metadata_records": metadata, **more}.items():
        if count:
            stats.bump(name, count)


def _parse_warc_member(member: bytes, stats: ShardStats) -> tuple[list[WatPayload], str | None]:
    """Payloads of one decompressed member, or an error when fastwarc cannot frame it (nothing counted)."""
    try:
        found = [payload for _, payload in _records(io.BytesIO(member))]
    except OSError as exc:
        return [], str(exc)
    payloads = [payload for payload in found if payload is not None]
    _count(stats, len(found), len(payloads))
    return payloads, None


def _iter_warc_bytes_stream(stream: BinaryIO, stats: ShardStats) -> Iterator[WatPayload]:
    """Stream an uncompressed WARC with fastwarc, counting records; damage ends the file with an error."""
    records = metadata = 0
    try:
        for _, payload in _records(stream):
            records += 1
            if payload is not None:
                metadata += 1
                yield payload
    except OSError as exc:
        stats.bump("unreadable_members")
        stats.error(f"WARC parse error after {records} records: {exc}")
    finally:
        _count(stats, records, metadata)


def _scan_json_lines(data: bytes, stats: ShardStats) -> Iterator[WatPayload]:
    """Recover WAT JSON payloads from damaged WARC framing: every line that starts with '{'."""
    recovered = 0
    for line in data.split(b"\n"):
        line = line.strip()
        if line.startswith(b"{") and b'"Envelope"' in line:
            recovered += 1
            yield WatPayload(None, line)
    _count(stats, recovered, recovered, records_recovered_by_line_scan=recovered)
    if recovered:
        stats.error(f"damaged WARC framing: recovered {recovered} WAT JSON payloads by line scan")
    elif data.strip():
        stats.bump("unreadable_members")
        stats.error("damaged WARC record with no recoverable WAT JSON payload")


class _Prefixed(io.RawIOBase, BinaryIO):  # type: ignore[misc]
    """A stream that first returns `head`, then the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        """Always readable."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all when negative)."""
        if self._head:
            if size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        """Fill `buffer` (used by fastwarc's Python stream adapter)."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
