"""Sample keys: minted once at extract as `<shard><row>`, zero-padded so they sort in input order.

Nine shard digits hold a billion input files (Common Crawl has ~100k WAT files per crawl) and seven row
digits ten million rows per file, so keys of every crawl ever published are distinct, fixed-width, and sort
as strings in the same order as numbers. A shard or row that does not fit is refused, never wrapped.
"""

from __future__ import annotations

SHARD_DIGITS = 9
ROW_DIGITS = 7
KEY_DIGITS = SHARD_DIGITS + ROW_DIGITS  # LAION's integer SAMPLE_ID, zero-padded, is the key


def mint_key(shard: int, row: int) -> str:
    """The key of row `row` of shard `shard`, e.g. mint_key(3, 41) == '0000000030000041'."""
    if not 0 <= shard < 10**SHARD_DIGITS:
        raise ValueError(f"shard index {shard} does not fit in a key ({SHARD_DIGITS} digits)")
    if not 0 <= row < 10**ROW_DIGITS:
        raise ValueError(f"row {row} does not fit in a key ({ROW_DIGITS} digits); use smaller input shards")
    return f"{shard:0{SHARD_DIGITS}d}{row:0{ROW_DIGITS}d}"


def split_key(key: str) -> tuple[int, int]:
    """(shard, row) of a key made by `mint_key`."""
    return int(key[:SHARD_DIGITS]), int(key[SHARD_DIGITS:])
