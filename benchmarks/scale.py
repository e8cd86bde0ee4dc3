"""Scale benchmarks, one entry point: how time and memory grow with N for each global piece.

  python benchmarks/scale.py executor [--sizes 10000 50000 100000] [--workers 2] [--old 10000]
      the Ray executor's driver cost per task (benchmarks/scale_executor.py)
  python benchmarks/scale.py dedup [--sizes 5,20,50] [--workers 2] [--rows-per-task 500000]
      dedup on seeded candidates: µs per row, peak RSS of every process, checked against a plain
      whole-table dedup (benchmarks/scale_dedup.py)
  python benchmarks/scale.py imgdedup [--sizes 1,5] [--workers 2] [--rows-per-task 250000]
      image dedup on seeded clustered 512-d float16 clip shards with planted duplicates: µs per
      embedding, peak RSS of every process, share of planted duplicates found
      (benchmarks/scale_imgdedup.py)
  python benchmarks/scale.py extract [--replicas 600,6000]
      `openpairs extract` peak RSS, with and without dedup, on the bench WAT and a 10x larger one
  python benchmarks/scale.py outputs SOURCE [--copies 1000]
      resume, report and export: driver peak RSS and storage calls on many shards
      (benchmarks/outputs_scale.py)

Each prints one table; docs/scale.md has the latest numbers and the projection made from them.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "executor": ("scale_executor.py", []),
    "dedup": ("scale_dedup.py", ["dedup"]),
    "extract": ("scale_dedup.py", ["extract"]),
    "imgdedup": ("scale_imgdedup.py", []),
    "outputs": ("outputs_scale.py", []),
}


def main() -> None:
    """Run the named scale benchmark with the remaining arguments."""
    if len(sys.argv) < 2 or sys.argv[1] not in SCRIPTS:
        sys.exit(__doc__)
    script, leading = SCRIPTS[sys.argv[1]]
    sys.argv = [str(HERE / script), *leading, *sys.argv[2:]]
    runpy.run_path(str(HERE / script), run_name="__main__")


if __name__ == "__main__":
    main()
