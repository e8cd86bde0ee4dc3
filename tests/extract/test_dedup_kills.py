"""`openpairs extract` SIGKILLed inside a dedup map task, a reduce task and the cut, each run resuming the
last: the candidates and the history end as an uninterrupted run's, byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.extract.watfiles import DERIVED, FRAGMENT_1, WAT_2014
from tests.fault.harness import run_killed_at, run_to_end, temporaries, tree_digests

INPUTS = [DERIVED, WAT_2014, FRAGMENT_1, DERIVED]
SCRATCH = "_scratch/dedup"


def _extract(out: Path, seen: Path) -> list[str]:
    return [
        sys.executable, "-m", "openpairs", "extract", *map(str, INPUTS), "--out", str(out), "--preset", "laion5b",
        "--relative-urls", "resolve", "--rows-per-task", "150", "--shard-size", "100", "--workers", "1",
        "--history", str(seen),
    ]  # fmt: skip


LANDED = {  # on disk right after each kill: the named task had started and not finished
    "dedup.map:1": lambda out: (
        (out / SCRATCH / "map/00000.json").exists() and not (out / SCRATCH / "map/00001.json").exists()
    ),
    "dedup.reduce:3": lambda out: (
        (out / SCRATCH / "reduce/00002.json").exists() and not (out / SCRATCH / "reduce/00003.json").exists()
    ),
    "dedup.shard:2": lambda out: (
        (out / "candidates/00002_stats.json").exists()
        and not (out / "candidates/00003.parquet").exists()
        and not (out / "candidates/_dedup.json").exists()
    ),
}


def test_killed_inside_map_reduce_and_cut_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    reference, out = tmp_path / "reference", tmp_path / "out"
    run_to_end(_extract(reference, tmp_path / "reference-history"), tmp_path, "reference")
    for point, landed in LANDED.items():
        run_killed_at(_extract(out, tmp_path / "history"), point, tmp_path)
        assert landed(out), f"the kill at {point} did not land inside its work"
    run_to_end(_extract(out, tmp_path / "history"), tmp_path)
    assert tree_digests(out, ("candidates",)) == tree_digests(reference, ("candidates",))
    history = tree_digests(tmp_path, ("history",))
    assert list(history.values()) == list(tree_digests(tmp_path, ("reference-history",)).values())
    assert [name.split("/", 1)[1] for name in history] == ["_current.json", "gen-000001/00000.parquet"] + [
        f"gen-000001/{part:05d}.parquet" for part in range(1, len(history) - 1)
    ]
    assert not (out / "_scratch").exists() and temporaries(out) == []
