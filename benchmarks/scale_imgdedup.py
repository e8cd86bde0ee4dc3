"""Image dedup at scale: seconds, µs per embedding and the peak RSS of every process, at several sizes.

Generates seeded clip shards (10,000 rows each: 512-d float16 unit embeddings around N/1,000 cluster
centres, 3% of each shard exact copies of an earlier row of it — same embedding, same sha256 — and 3% near
duplicates at cosine 0.96-0.995), runs the image dedup step (local pool) on each size and prints, per size:
seconds, µs per embedding, the ratio to the first size's, CPU µs per embedding, the peak RSS of the driver
and of the largest worker, and the step's counters (groups, leaves, visits, capped rows). The planted
duplicates found are checked: every planted row must be in its original's group.

Usage:
  python benchmarks/scale.py imgdedup [--sizes 1,5] [--workers 2] [--rows-per-task 250000] [--dir D]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_dedup import PeakSampler, _cpu_seconds

ROWS_PER_SHARD = 10_000
DIM = 512
COPY_SHARE, NEAR_SHARE = 0.03, 0.03


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clip_shard(out: Path, shard: int, centres: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write one clip shard (parquet, img_emb, download parquet); returns its planted (row, original)."""
    rng = np.random.default_rng([seed, shard])
    labels = rng.integers(0, len(centres), size=ROWS_PER_SHARD)
    noise = rng.standard_normal((ROWS_PER_SHARD, DIM)).astype(np.float32) * (0.6 / np.sqrt(DIM))
    emb = _unit(centres[labels] + noise)
    sha = [hashlib.sha256(f"{seed} {shard} {i}".encode()).hexdigest() for i in range(ROWS_PER_SHARD)]
    planted = rng.choice(
        np.arange(ROWS_PER_SHARD // 2, ROWS_PER_SHARD),
        int(ROWS_PER_SHARD * (COPY_SHARE + NEAR_SHARE)),
        replace=False,
    )
    originals = rng.integers(0, ROWS_PER_SHARD // 2, size=len(planted))
    copies = len(planted) // 2
    for row, original in zip(planted[:copies], originals[:copies], strict=True):
        emb[row], sha[row] = emb[original], sha[original]
    angle = np.arccos(rng.uniform(0.96, 0.995, size=len(planted) - copies))[:, None]
    base = emb[originals[copies:]]
    away = rng.standard_normal(base.shape).astype(np.float32)
    away = _unit(away - np.sum(away * base, axis=1, keepdims=True) * base)
    emb[planted[copies:]] = np.cos(angle) * base + np.sin(angle) * away
    name = f"{shard:05d}"
    keys = [f"{shard:05d}{i:06d}" for i in range(ROWS_PER_SHARD)]
    np.save(out / "clip" / "img_emb" / f"{name}.npy", emb.astype(np.float16))
    pq.write_table(pa.table({"key": keys}), out / "clip" / f"{name}.parquet")
    pq.write_table(
        pa.table({"key": keys, "status": ["ok"] * len(keys), "sha256": sha}),
        out / "shards" / f"{name}.parquet",
    )
    return planted, originals


def generate(out: Path, rows: int, seed: int = 0) -> dict[str, str]:
    """Write rows // ROWS_PER_SHARD clip shards; returns planted key -> original key."""
    (out / "clip" / "img_emb").mkdir(parents=True)
    (out / "shards").mkdir()
    centres = _unit(
        np.random.default_rng(seed).standard_normal((max(2, rows // 1000), DIM)).astype(np.float32)
    )
    expected = {}
    for shard in range(rows // ROWS_PER_SHARD):
        planted, originals = clip_shard(out, shard, centres, seed)
        expected.update(
            {f"{shard:05d}{r:06d}": f"{shard:05d}{o:06d}" for r, o in zip(planted, originals, strict=True)}
        )
    return expected


def found(out: Path, expected: dict[str, str]) -> float:
    """Share of planted rows that ended in their original's group."""
    groups: dict[str, str] = {}
    for path in sorted((out / "clip" / "dup_groups").glob("*.parquet")):
        table = pq.read_table(path).to_pydict()
        groups.update(zip(table["key"], table["dup_group"], strict=True))
    hits = sum(
        1 for row, original in expected.items() if row in groups and groups[row] == groups.get(original)
    )
    return hits / max(1, len(expected))


def bench(args: argparse.Namespace, root: Path) -> None:
    """Generate, dedup and report each size."""
    import os

    from openpairs.executors import ExecutorConfig
    from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup

    first = None
    for millions in args.sizes:
        rows = int(millions * 1_000_000)
        out = root / f"imgdedup-{millions}M"
        started = time.perf_counter()
        expected = generate(out, rows)
        made = time.perf_counter() - started
        config = ImageDedupConfig(
            rows_per_task=args.rows_per_task, max_leaves=args.max_leaves, max_sample=args.max_sample
        )
        cpu = _cpu_seconds()
        with PeakSampler(os.getpid()) as sampler:
            started = time.perf_counter()
            stats = run_image_dedup(str(out), config, ExecutorConfig(workers=args.workers))
            seconds = time.perf_counter() - started
        per_row = seconds / rows * 1e6
        first = first or per_row
        line = {"rows": rows, "generate_s": round(made, 1), "seconds": round(seconds, 1), "us_per_embedding": round(per_row, 2),
                "ratio_to_first": round(per_row / first, 3), "cpu_us_per_embedding": round((_cpu_seconds() - cpu) / rows * 1e6, 2),
                **sampler.summary(), "planted_found": round(found(out, expected), 5), "counters": dict(stats.counters)}  # fmt: skip
        print(json.dumps(line), flush=True)
        shutil.rmtree(out)


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=lambda s: [float(x) for x in s.split(",")], default=[1, 5])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-task", type=int, default=250_000)
    parser.add_argument("--max-leaves", type=int, default=2)
    parser.add_argument("--max-sample", type=int, default=200_000)  # ImageDedupConfig.max_sample
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="imgdedup-", dir=args.dir))
    try:
        bench(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
