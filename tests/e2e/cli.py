"""Running `python -m openpairs ...` as a user does, and reading what it left behind."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from openpairs.demo import wat_files

# The bundled real Common Crawl WAT of 2014 (one page, 2 IMG links with usable alt text).
WAT_2014 = next(path for path in wat_files() if "CC-MAIN-2014" in path)
DERIVED_WAT = next(path for path in wat_files() if "derived" in path)


def openpairs(*args: str, timeout: float = 900) -> tuple[int, str]:
    """Run the CLI in a subprocess; returns (exit code, stdout + stderr with whitespace runs collapsed)."""
    done = subprocess.run(
        [sys.executable, "-m", "openpairs", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "400"},  # rich wraps at the terminal width
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def failed_shards(out: Path, stage: str) -> list[dict[str, Any]]:
    """The entries of `<out>/<stage>/failed_shards.jsonl` ([] when the file is absent)."""
    path = out / stage / "failed_shards.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root`: relative path -> (sha256, mtime in ns). Equal snapshots: nothing written."""
    return {
        str(path.relative_to(root)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def head_of_wat(source: str, records: int, target: Path) -> Path:
    """The first `records` WARC records of a bundled WAT, written uncompressed to `target` (real records,
    cut at a record boundary: a smaller WAT of the same crawl data)."""
    if source.endswith(".gz"):
        with gzip.open(source) as handle:
            raw = handle.read()
    else:
        raw = Path(source).read_bytes()
    starts = [match.start() for match in re.finditer(rb"WARC/1\.0\r\n", raw)]
    end = starts[records] if records < len(starts) else len(raw)
    target.write_bytes(raw[:end])
    return target
