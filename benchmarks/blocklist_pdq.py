"""Benchmark: PDQ lookups in a safety list, the multi-index (safety/pdq_index.py) against a full scan.

Lists of N random PDQ hashes (random 256-bit hashes: real lists cluster more, which only shortens the
candidate lists), queries at distance 10 from a listed hash and unrelated ones, default threshold 31. Prints
one table: load time, memory of the index, microseconds per lookup with the index and with a numpy scan.

    .venv/bin/python benchmarks/blocklist_pdq.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import numpy as np

from openpairs.safety.pdq_index import PdqIndex

THRESHOLD = 31


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def run(size: int, queries: int, rng: random.Random) -> dict[str, float]:
    """Build an index of `size` random hashes and time `queries` lookups both ways."""
    listed = [rng.getrandbits(256) for _ in range(size)]
    raw = b"".join(value.to_bytes(32, "big") for value in listed)
    started = time.perf_counter()
    index = PdqIndex(raw, [0] * size, THRESHOLD)
    built = time.perf_counter() - started
    asks = [_flip(rng.choice(listed), 10, rng) if i % 2 else rng.getrandbits(256) for i in range(queries)]
    started = time.perf_counter()
    found = [index.nearest(q.to_bytes(32, "big")) for q in asks]
    indexed = (time.perf_counter() - started) / queries
    started = time.perf_counter()
    for q, hit in zip(asks[:50], found[:50], strict=True):
        words = np.frombuffer(q.to_bytes(32, "big"), dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(index.words ^ words).sum(axis=1)
        best = int(distances.min())
        assert (best <= THRESHOLD) == (hit is not None), (best, hit)  # the scan agrees with the index
    scanned = (time.perf_counter() - started) / 50
    bytes_held = index.words.nbytes + index.offsets.nbytes + index.order.nbytes + index.payloads.nbytes
    return {"build_s": built, "mb": bytes_held / 1e6, "index_us": indexed * 1e6, "scan_us": scanned * 1e6}


def main() -> None:
    """Print one row per list size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"{'hashes':>10} {'build s':>8} {'index MB':>9} {'lookup us':>10} {'scan us':>10} {'speed-up':>9}")
    for size in args.sizes:
        r = run(size, args.queries, rng)
        speedup = r["scan_us"] / r["index_us"]
        print(
            f"{size:>10,} {r['build_s']:>8.2f} {r['mb']:>9.1f} {r['index_us']:>10.0f} {r['scan_us']:>10.0f} {speedup:>8.0f}x"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
