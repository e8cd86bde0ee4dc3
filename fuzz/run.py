"""`make fuzz`: run each atheris harness for a time budget, one after another; exit 1 if any crashed.

    python fuzz/run.py [--seconds N] [TARGET ...]      (targets: wat, images, inputs; default all)

Each target fuzzes for N seconds (FUZZ_SECONDS, default 60) from its corpus in .fuzz-corpus/<target>/,
seeded with real files and kept between runs. A crashing input is saved in fuzz/crashes/<target>/ and
listed at the end; rerun it with `python fuzz/<target>.py fuzz/crashes/<target>/<file>`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("wat", "images", "inputs")
STARTUP_SECONDS = 300  # seeding and imports, on top of the fuzzing budget


def run_target(target: str, seconds: int) -> list[Path]:
    """Fuzz one target for `seconds`; the crash files it left (empty when it found none)."""
    crashes = HERE / "crashes" / target
    before = set(crashes.glob("*")) if crashes.exists() else set()
    print(f"== fuzz {target}: {seconds} s", flush=True)
    command = [
        sys.executable,
        str(HERE / f"{target}.py"),
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
    ]
    try:
        code = subprocess.call(command, cwd=HERE.parent, timeout=seconds + STARTUP_SECONDS)
    except subprocess.TimeoutExpired:  # libFuzzer's -timeout catches a slow input; this, a stuck process
        code = -1
    found = sorted(set(crashes.glob("*")) - before)
    if code != 0 and not found:  # it died without leaving an input: report it all the same
        print(f"!! fuzz {target} exited with {code} and left no crash file", flush=True)
        return [crashes]
    return found


def main() -> int:
    """Run the chosen targets; print every crash file; 0 only when none crashed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    options = parser.parse_args()
    unknown = sorted(set(options.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    crashed = {target: run_target(target, options.seconds) for target in options.targets or TARGETS}
    failures = {target: files for target, files in crashed.items() if files}
    for target, files in failures.items():
        for path in files:
            print(f"!! {target} crash: {path}  (rerun: python fuzz/{target}.py {path})")
    print(f"fuzz: {len(crashed) - len(failures)} of {len(crashed)} targets found no crash")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
