"""Dedup at scale: seconds, µs per row and the peak RSS of every process, at several sizes.

`dedup` generates seeded candidate rows as extract shards (about half the rows repeat an earlier pair, as
LAION saw across a crawl; URL and caption lengths spread log-normally around Common Crawl's), runs the
dedup step (local pool) on each size and prints, per size: seconds, µs per row, the ratio of µs per row to
the first size's, the peak RSS of the driver and of the largest worker. The first size's survivors are
compared with a plain whole-table dedup (pyarrow group_by). `extract` measures the peak RSS of the whole
`openpairs extract` process tree on WAT files made by ../shared/bench/make_wat.py, with and without dedup.

Usage:
  python benchmarks/scale_dedup.py dedup [--sizes 5,20,50] [--workers 2] [--rows-per-task 500000] [--dir D]
  python benchmarks/scale_dedup.py extract [--replicas 600,6000] [--workers 2] [--dir D]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"
REFERENCE_MAX_ROWS = 10_000_000  # the whole-table reference dedup needs ~0.4 KB per row in one process
ROWS_PER_SHARD = 250_000  # about one WAT file's IMG+alt links
REPEAT_SHARE = 0.5  # unique pairs = half the rows: ~57% of the rows then repeat an earlier pair
WORDS = np.array(
    [
        "the",
        "a",
        "photo",
        "of",
        "red",
        "blue",
        "small",
        "large",
        "old",
        "new",
        "house",
        "car",
        "dog",
        "cat",
        "city",
        "tree",
        "sea",
        "art",
    ]
)


def _tree(root: int) -> list[int]:
    """The pid `root` and all its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _rss(pid: int, field: str = "VmRSS") -> int:
    """Resident set size in bytes (0 when the process is gone); `field` RssAnon: its own memory only,
    without the file pages it maps."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((line for line in status.splitlines() if line.startswith(f"{field}:")), f"{field}: 0 kB")
    return int(line.split()[1]) * 1024


class PeakSampler:
    """Samples the RSS of a process and all its descendants every `every` seconds (from /proc): each
    process's peak, and the peak of their sum."""

    def __init__(self, root: int, every: float = 0.1, field: str = "VmRSS") -> None:
        self.root, self.every, self.field = root, every, field
        self.peaks: dict[int, int] = {}
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = {pid: _rss(pid, self.field) for pid in _tree(self.root)}
            for pid, rss in sizes.items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            self.tree_peak = max(self.tree_peak, sum(sizes.values()))
            self._stop.wait(self.every)

    def summary(self) -> dict[str, float]:
        """Peak RSS (MB): the root process, the largest other process, the whole tree; processes seen."""
        others = [rss for pid, rss in self.peaks.items() if pid != self.root]
        return {
            "root_mb": round(self.peaks.get(self.root, 0) / 2**20, 1),
            "max_worker_mb": round(max(others, default=0) / 2**20, 1),
            "tree_mb": round(self.tree_peak / 2**20, 1),
            "processes": len(self.peaks),
        }


def _texts(items: np.ndarray, mean_words: float, prefix: str) -> pa.Array:
    """Strings made of words plus the item number, the same for the same item: word counts spread
    log-normally around `mean_words` (drawn from the item number), vectorised."""
    rng = np.random.default_rng(int(mean_words * 1000))
    quantiles = np.clip(rng.lognormal(np.log(mean_words), 0.6, 4096).astype(np.int64), 1, 60)
    counts = quantiles[(items * 2654435761) % 4096]
    pool = pa.array([" ".join(rng.choice(WORDS, size=n)) for n in range(1, 61)])
    words = pc.take(pool, pa.array(counts - 1))
    return pc.binary_join_element_wise(prefix, words, pc.cast(pa.array(items), pa.string()), " ")


def candidate_shard(shard: int, rows: int, unique: int, seed: int) -> pa.Table:
    """One extract shard of seeded candidates; item ids below `unique` repeat across shards."""
    from openpairs.core.schemas import CANDIDATE_SCHEMA

    rng = np.random.default_rng([seed, shard])
    items = rng.integers(0, unique, rows)
    hosts = pc.binary_join_element_wise(
        "https://cdn", pc.cast(pa.array(items % 50_000), pa.string()), ".example.com/"
    )
    paths = pc.replace_substring(_texts(items, 3.0, "img"), " ", "/")
    captions = _texts(items, 8.0, "")
    keys = pc.utf8_lpad(pc.cast(pa.array(shard * 10**7 + np.arange(rows)), pa.string()), 13, "0")
    columns = {
        "key": keys,
        "url": pc.binary_join_element_wise(hosts, paths, ".jpg", ""),
        "caption": pc.utf8_slice_codeunits(captions, 0, 2000),
        "page_url": pc.binary_join_element_wise(hosts, "page", ""),
        "language": pa.array(np.where(items % 3 == 0, "", "en")),
        "language_score": pa.array(np.full(rows, 0.9, dtype=np.float32)),
        "license": pa.array(["?"] * rows),
        "hash": pa.array(items.astype(np.int64)),
        "source": pa.array(["bench"] * rows),
        "page_robots": pa.nulls(rows, pa.string()),
        "page_tdm_reservation": pa.nulls(rows, pa.int8()),
    }
    return pa.table(columns).cast(CANDIDATE_SCHEMA)


def generate(out: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` candidates as extract shards under out/extract/."""
    (out / "extract").mkdir(parents=True, exist_ok=True)
    unique = int(rows * REPEAT_SHARE)
    for shard, start in enumerate(range(0, rows, ROWS_PER_SHARD)):
        table = candidate_shard(shard, min(ROWS_PER_SHARD, rows - start), unique, seed)
        pq.write_table(
            table, out / "extract" / f"{shard:05d}.parquet", compression="zstd", row_group_size=65_536
        )


def timed_dedup(config: Any, out: Path, workers: int) -> tuple[float, PeakSampler, dict[str, Any]]:
    """Seconds the dedup step took, the peak RSS of this process and its workers meanwhile, its stats."""
    import os

    from openpairs.executors import ExecutorConfig
    from openpairs.stages.dedup import run_dedup

    cpu = _cpu_seconds()
    with PeakSampler(os.getpid()) as sampler:
        started = time.perf_counter()
        stats = run_dedup(config, str(out), ExecutorConfig(workers=workers))
        seconds = time.perf_counter() - started
    return seconds, sampler, {**stats.to_dict(), "cpu_s": _cpu_seconds() - cpu}


def _cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (the pool's workers, once it closed)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference_keys(out: Path) -> pa.Array:
    """The survivors of a plain whole-table dedup on url+caption (smallest key per pair), sorted."""
    table = pa.concat_tables(
        pq.read_table(f, columns=["key", "url", "caption"])
        for f in sorted((out / "extract").glob("*.parquet"))
    )
    pairs = pc.binary_join_element_wise(table["url"], table["caption"], "\x00")
    grouped = pa.table({"pair": pairs, "key": table["key"]}).group_by("pair").aggregate([("key", "min")])
    return grouped["key_min"].combine_chunks().sort()


def bench_dedup(args: argparse.Namespace, root: Path) -> None:
    from openpairs.stages.dedup import DedupConfig

    first = None
    for millions in args.sizes:
        rows = int(millions * 1_000_000)
        out = root / f"dedup-{millions}M"
        started = time.perf_counter()
        generate(out, rows)
        made = time.perf_counter() - started
        config = DedupConfig(dedup="url+caption", rows_per_task=args.rows_per_task)
        seconds, sampler, stats = timed_dedup(config, out, args.workers)
        per_row = seconds / rows * 1e6
        first = first or per_row
        line = {"rows": rows, "generate_s": round(made, 1), "seconds": round(seconds, 1), "us_per_row": round(per_row, 3),
                "ratio_to_first": round(per_row / first, 3), "cpu_us_per_row": round(stats["cpu_s"] / rows * 1e6, 3),
                **sampler.summary(),
                "statuses": stats["statuses"], "partitions": stats["counters"]["partitions"]}  # fmt: skip
        if millions == args.sizes[0] and rows <= REFERENCE_MAX_ROWS:
            got = pa.concat_tables(
                pq.read_table(f, columns=["key"]) for f in sorted((out / "candidates").glob("*.parquet"))
            )
            line["equals_reference"] = got["key"].combine_chunks().sort().equals(reference_keys(out))
        print(json.dumps(line), flush=True)
        shutil.rmtree(out)


def bench_extract(args: argparse.Namespace, root: Path) -> None:
    for replicas in args.replicas:
        wat = root / f"bench-{replicas}.warc.wat.gz"
        subprocess.run(
            [sys.executable, str(SHARED / "make_wat.py"), str(wat), "--replicas", str(replicas)], check=True
        )
        for dedup in ("none", "url+caption"):
            out = root / f"extract-{replicas}-{dedup}"
            command = [sys.executable, "-m", "openpairs", "extract", str(wat), "--out", str(out), "--dedup", dedup,
                       "--language", "off", "--all-languages", "--relative-urls", "resolve", "--min-alt-length", "0", "--drop-extensions", "",
                       "--workers", str(args.workers), "--rows-per-task", str(args.rows_per_task)]  # fmt: skip
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            with PeakSampler(process.pid) as sampler:
                code = process.wait()
            line = {
                "replicas": replicas,
                "dedup": dedup,
                "exit": code,
                "seconds": round(time.perf_counter() - started, 1),
            }
            line["candidates"] = sum(
                pq.ParquetFile(f).metadata.num_rows for f in (out / "candidates").glob("*.parquet")
            )
            print(json.dumps(line | sampler.summary()), flush=True)
            shutil.rmtree(out)
        wat.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["dedup", "extract"])
    parser.add_argument("--sizes", type=lambda s: [float(x) for x in s.split(",")], default=[5, 20, 50])
    parser.add_argument("--replicas", type=lambda s: [int(x) for x in s.split(",")], default=[600, 6000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-per-task", type=int, default=500_000)
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="openpairs-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        (bench_dedup if args.what == "dedup" else bench_extract)(args, root)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
