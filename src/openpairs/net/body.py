"""Reading a response body: whole, capped, and never left waiting on a connection that is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

DRAIN_BYTES = 65536  # a refused answer's body up to this size is read so its connection can be reused
DRAIN_SECONDS = 1.0  # and only when it arrives within this time; otherwise the connection is closed


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes (the rest is never read); raises
    aiohttp.ClientPayloadError when the connection ends before the body does."""
    with _fails_when_closed(response):
        if response.content_length is not None:
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


async def drain_short(response: aiohttp.ClientResponse) -> None:
    """Read a short body that is not kept (a redirect's, an error's: known length up to DRAIN_BYTES,
    within DRAIN_SECONDS) so the connection goes back to the pool instead of being closed and opened
    again; a longer, unknown-length, slow or broken body leaves the connection to be closed as before."""
    length = response.content_length
    if length is None or length > DRAIN_BYTES:
        return
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return


@contextmanager
def _fails_when_closed(response: aiohttp.ClientResponse) -> Iterator[None]:
    """While the body is read, a close of its connection before the body's end fails the read.

    aiohttp's parser, on a malformed chunk (a chunk-size line that is not hex), closes the connection
    without telling the body's reader: a read already waiting then waits out the whole request timeout
    (and ends as a `timeout`), a read starting after it raises RuntimeError("Connection closed.")."""
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:  # released: the body is complete (or the response closed) already
        yield
        return
    closed = protocol.closed
    if closed is None or closed.done():  # None: the connection was lost before anyone asked
        _fail_unfinished(response, protocol.exception())
        yield
        return

    def on_close(future: asyncio.Future[None]) -> None:
        error = None if future.cancelled() else future.exception()
        _fail_unfinished(response, error or protocol.exception())

    closed.add_done_callback(on_close)
    try:
        yield
    finally:
        closed.remove_done_callback(on_close)
        closed.remove_done_callback(_retrieve)  # at most one, however many bodies this connection carries
        closed.add_done_callback(_retrieve)


def _fail_unfinished(response: aiohttp.ClientResponse, cause: BaseException | None) -> None:
    """Fail the body's reader if the closed connection left it unfinished (no end, no error)."""
    content = response.content
    if content.is_eof() or content.exception() is not None:
        return
    reason = f": {type(cause).__name__}: {' '.join(str(cause).split())}" if cause is not None else ""
    content.set_exception(aiohttp.ClientPayloadError(f"connection closed before the body ended{reason}"))


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a closed connection's error as seen (asyncio logs unseen ones)."""
    if not future.cancelled():
        future.exception()
