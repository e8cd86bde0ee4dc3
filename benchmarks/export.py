"""Benchmark: export (three formats), `openpairs.load` (images, embeddings) and report on a finished build.

The shards of SOURCE (a finished build: shards/, clip/, filter/, e.g. `openpairs demo --out demo-out`) are
copied `--copies` times into a scratch directory, then every step is timed once and printed as a table.

    .venv/bin/python benchmarks/export.py demo-out --copies 20
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import openpairs
from openpairs.report import build_report
from openpairs.stages.export import FORMATS, ExportConfig, run_export

FILES = (
    ("shards", "{}.tar"), ("shards", "{}.parquet"), ("shards", "{}_stats.json"),
    ("clip", "{}.parquet"), ("clip", "{}_stats.json"),
    ("clip/img_emb", "{}.npy"), ("clip/text_emb", "{}.npy"),
    ("filter", "{}.parquet"), ("filter", "{}_stats.json"),
)  # fmt: skip


def replicate(source: Path, target: Path, copies: int) -> None:
    """Copy every shard of `source` `copies` times under new shard numbers."""
    shards = sorted(p.name.removesuffix("_stats.json") for p in (source / "shards").glob("*_stats.json"))
    number = 0
    for _ in range(copies):
        for shard in shards:
            for folder, pattern in FILES:
                (target / folder).mkdir(parents=True, exist_ok=True)
                shutil.copy(
                    source / folder / pattern.format(shard), target / folder / pattern.format(f"{number:05d}")
                )
            number += 1


def _export(out: str, config: ExportConfig) -> int:
    return run_export(out, config).samples


def timed(label: str, step: Callable[[], int], rows: list[tuple[str, float, int]]) -> None:
    """Run `step` (returning a sample count) and record its wall time."""
    started = time.perf_counter()
    count = step()
    rows.append((label, time.perf_counter() - started, count))


def main() -> None:
    """Parse arguments, replicate, time every step, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--samples-per-shard", type=int, default=1000)
    args = parser.parse_args()
    rows: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        replicate(args.source, out, args.copies)
        for name in FORMATS:
            config = ExportConfig(format=name, samples_per_shard=args.samples_per_shard)  # type: ignore[arg-type]
            timed(f"export {name}", partial(_export, str(out), config), rows)
        timed("load images", lambda: sum(1 for _ in openpairs.load(str(out))), rows)
        timed("load embeddings", lambda: sum(1 for _ in openpairs.load(str(out), "embeddings")), rows)
        timed("report", lambda: len(build_report(str(out)).plots) * 0, rows)
    print("| step | seconds | samples | samples/s |\n|---|---|---|---|")
    for label, seconds, count in rows:
        rate = f"{count / seconds:,.0f}" if count else ""
        print(f"| {label} | {seconds:.2f} | {count:,} | {rate} |")


if __name__ == "__main__":
    main()
