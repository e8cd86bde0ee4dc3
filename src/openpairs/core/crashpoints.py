"""Crash points: named places inside long work where a run can be frozen, to rehearse a crash right there.

`reached(point, index)` does nothing unless OPENPAIRS_CRASH_AT names that point, as `POINT` or
`POINT:INDEX` (e.g. `download.shard:1`). Then the process appends one JSON line (point, index, pid, host)
to the file OPENPAIRS_CRASH_LOG names and stops there, doing nothing more, until it is killed. Whoever
watches that file (tests/fault/harness.py, or an operator rehearsing a crash on a real cluster) then
SIGKILLs the run, so the kill lands inside the named work, whatever the machine's load. A point fires
once per log file: a retried task passes it. Executors forward both variables to their workers.
"""

from __future__ import annotations

import json
import os
import socket
import time

ENV_POINT = "OPENPAIRS_CRASH_AT"
ENV_LOG = "OPENPAIRS_CRASH_LOG"
POINTS = (
    "extract.file",  # a WAT file partly read, its parquet temporary open
    "dedup.map",  # a dedup map task's rows hashed and partitioned, its file not written
    "dedup.reduce",  # a dedup reduce task's range deduplicated, its outputs not written
    "dedup.shard",  # candidates shards up to INDEX written, the rest and _dedup.json not
    "download.shard",  # half of a shard's rows fetched, nothing of it written
    "download.commit",  # a shard's tar committed, its parquet and stats not
    "clip.shard",  # a shard's first batch embedded, nothing of it written
    "clip.commit",  # a shard's embeddings committed, its parquet and stats not
    "image_dedup.map",  # an image dedup map task's rows assigned to leaves, its files not written
    "image_dedup.reduce",  # an image dedup reduce task's edges found, not written
    "image_dedup.large_star",  # a large-star round's part read, its labels and pairs not written
    "image_dedup.small_star",  # a small-star round's part read, its pairs not written
    "filter.shard",  # a filter shard computed, not written
    "export.part",  # export parts up to INDEX written, the rest and the manifest not
    "index.add",  # the index trained, vectors being added, nothing written
    "scrub.shard",  # a download shard's tar scrubbed, its parquet and stats not
    "scrub.step",  # every download shard scrubbed, the step named by INDEX (scrub.STEPS) not yet redone
)


def forwarded_environment() -> dict[str, str]:
    """The crash-point variables set in this process, for executors to pass on to their workers."""
    return {name: os.environ[name] for name in (ENV_POINT, ENV_LOG) if name in os.environ}


def reached(point: str, index: int = 0) -> None:
    """Freeze here when OPENPAIRS_CRASH_AT names this point (and index) and it has not fired yet."""
    wanted = os.environ.get(ENV_POINT)
    if not wanted:
        return
    name, _, at = wanted.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV_POINT}={wanted}: no such crash point (known: {', '.join(POINTS)})")
    if name != point or (at and int(at) != index):
        return
    log = os.environ.get(ENV_LOG)
    if not log:
        raise RuntimeError(f"{ENV_POINT} is set but {ENV_LOG} is not: nobody would see the crash point")
    if _first(log, point) is not None:
        return  # fired already: a retried task passes
    mine = {"point": point, "index": index, "pid": os.getpid(), "host": socket.gethostname()}
    with open(log, "a", encoding="utf-8") as handle:  # one small append: atomic beside other writers
        handle.write(json.dumps(mine) + "\n")
    if _first(log, point) != mine:
        return  # another worker reached it at the same moment and froze: only the first line's freezes
    while True:  # frozen until killed
        time.sleep(3600)


def _first(log: str, point: str) -> dict[str, object] | None:
    """The first record of `point` in the log, if any."""
    if not os.path.exists(log):
        return None
    with open(log, encoding="utf-8") as handle:
        records = (json.loads(line) for line in handle if line.strip())
        return next((record for record in records if record.get("point") == point), None)
