"""Ray executor scale benchmark: the driver's cost per task for 10k, 50k and 100k no-op tasks on a local Ray.

Each N runs in its own process (so its peak RSS is its own): a RayExecutor starts a local Ray with
--workers CPUs, maps a no-op over range(N) and drains the results. Printed per N: wall seconds, µs per
task, the driver's peak RSS and the µs per task relative to the first N. `--old N` also times the
executor as it was (every task submitted at once, one `ray.wait(num_returns=1)` per result) on N tasks.
Usage: python benchmarks/scale_executor.py [--sizes 10000 50000 100000] [--workers 2] [--old 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

RUN = """
import json, resource, sys, time
from openpairs.executors import ExecutorConfig
from openpairs.executors.ray import RayExecutor

def noop(item):
    return item

count, workers, old = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "old"
executor = RayExecutor(ExecutorConfig(kind="ray", workers=workers), {})
list(executor.imap(noop, range(workers * 20)))  # workers started, function exported: not timed
started = time.perf_counter()
if old:
    import ray
    remote = ray.remote(noop).options(num_cpus=1, max_retries=0)
    pending = {remote.remote(i): i for i in range(count)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            pending.pop(ref)
            ray.get(ref)
    seen = count
else:
    seen = sum(1 for _ in executor.imap(noop, range(count)))
seconds = time.perf_counter() - started
executor.close()
assert seen == count
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(count: int, workers: int, old: bool) -> dict[str, float]:
    """One N in a fresh process: its seconds and the driver's peak RSS (MB)."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(count), str(workers), "old" if old else "new"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run every size (and the old behaviour when asked), print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--old", type=int, default=0, help="also time the old executor on this many tasks")
    args = parser.parse_args()
    rows = [("window", n, measure(n, args.workers, False)) for n in args.sizes]
    if args.old:
        rows.append(("old", args.old, measure(args.old, args.workers, True)))
    first = rows[0][2]["seconds"] / rows[0][1]
    print(f"{'executor':<8} {'N':>8} {'seconds':>9} {'µs/task':>9} {'peak RSS MB':>12} {'vs first':>9}")
    for name, count, result in rows:
        per_task = result["seconds"] / count
        print(
            f"{name:<8} {count:>8,} {result['seconds']:>9.1f} {per_task * 1e6:>9.0f} "
            f"{result['rss_mb']:>12.0f} {per_task / first:>8.2f}x"
        )


if __name__ == "__main__":
    main()
