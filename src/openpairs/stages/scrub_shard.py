"""Scrub one download shard: find the rows safety lists match, then rewrite its tar, parquet and stats.

Rows end exactly as a build with the lists writes them (Match.download_fields); the tar loses their members.
A shard's matches are recorded first (`<run>/shards/<i>.pending.jsonl`), the files are rewritten from them,
and the record is committed (`<i>.jsonl`) last: a killed scrub resumes, and a rerun changes nothing more.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from openpairs.core import crashpoints
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.safety.blocklist import Blocklists, Match, load_cached
from openpairs.stages import download_write as dw

BLOCKLISTED = (Status.BLOCKLISTED_URL, Status.BLOCKLISTED_IMAGE)
TEXT_MEMBERS = ("json", "txt")
STORED_KINDS = frozenset({"pdq", "md5", "sha1"})  # kinds matched on the stored images themselves


@dataclass(frozen=True)
class ShardJob:
    """One download shard to scrub, the run folder its record goes to, and the lists."""

    out: str
    index: int
    run_dir: str
    lists: tuple[str, ...]
    pdq_threshold: int

    @property
    def paths(self) -> commit.ShardPaths:
        """The download shard's files."""
        return commit.ShardPaths(self.out, "shards", self.index)

    def record(self, pending: bool = False) -> str:
        """The shard's match record (the pending one before the rewrite is committed)."""
        suffix = ".pending.jsonl" if pending else ".jsonl"
        return ofs.join(self.run_dir, "shards", commit.shard_name(self.index) + suffix)


def scrub_shard(job: ShardJob) -> int:
    """Scrub one shard (resuming a killed attempt); returns how many rows the lists matched."""
    if ofs.exists(job.record()):
        return len(_read_records(job.record()))
    pending = job.record(pending=True)
    if ofs.exists(pending):
        records = _read_records(pending)
    else:
        records = find_matches(job, load_cached(job.lists, job.pdq_threshold))
        commit.write_bytes_atomic(pending, _jsonl(records))
    if records:
        rewrite_shard(job, {record["key"]: record for record in records})
    commit.write_bytes_atomic(job.record(), _jsonl(records))
    ofs.remove(pending)
    return len(records)


def find_matches(job: ShardJob, lists: Blocklists) -> list[dict[str, Any]]:
    """One record per row the lists match: URL hashes on `url`, the recorded sha256, then the stored image
    (PDQ; MD5/SHA1 too where the stored image is the original body)."""
    columns = ["key", "url", "status", "sha256", "bytes"]
    rows = ofs.read_parquet(job.paths.file("parquet"), columns).to_pylist()
    found: dict[str, tuple[dict[str, Any], Match]] = {}
    for row in rows:
        if row["status"] in BLOCKLISTED:
            continue
        hit = lists.match_url(row["url"]) if row["url"] and lists.has_url_hashes else None
        if hit is None and row["status"] == Status.OK and row["sha256"]:
            hit = lists.match_digest("sha256", row["sha256"])
        if hit is not None:
            found[row["key"]] = (row, hit)
    looked = {r["key"]: r for r in rows if r["status"] == Status.OK and r["key"] not in found}
    if looked and lists.kinds & STORED_KINDS:  # SHA256 was matched on the recorded digest above
        for key, data in _images(job.paths.file("tar"), set(looked)):
            try:
                hit = _match_stored(lists, data, looked[key]["sha256"])
            except (
                Exception
            ) as error:  # our own stored image: unreadable means damaged; never leave it unchecked
                raise ValueError(
                    f"shard {job.index}: the stored image of {key} cannot be checked: {error}"
                ) from error
            if hit is not None:
                found[key] = (looked[key], hit)
    order = {row["key"]: position for position, row in enumerate(rows)}
    return [
        _record(job.index, row, hit) for row, hit in sorted(found.values(), key=lambda f: order[f[0]["key"]])
    ]


def _match_stored(lists: Blocklists, data: bytes, recorded_sha256: str | None) -> Match | None:
    """A stored image's match: its body hashes when it is the original body, else its PDQ hash."""
    if recorded_sha256 and hashlib.sha256(data).hexdigest() == recorded_sha256:
        hit = lists.match_body(data)  # stored as downloaded: MD5 and SHA1 lists apply too
        if hit is not None:
            return hit
    if not lists.has_pdq:
        return None
    from PIL import Image

    from openpairs.safety.pdq import pdq_of

    with Image.open(io.BytesIO(data)) as image:
        return lists.match_pdq(pdq_of(image).hex)


def _record(index: int, row: dict[str, Any], hit: Match) -> dict[str, Any]:
    removed = ["shards/parquet row status"]
    if row["status"] == Status.OK:
        removed += [
            "shards/tar members",
            "clip row and embeddings",
            "image dedup",
            "filter",
            "exports",
            "index",
        ]
    return {
        "shard": index,
        "key": row["key"],
        "url": row["url"],
        "was": row["status"],
        "status": str(hit.status),
        "stage": "download: URL check before any request"
        if hit.status == Status.BLOCKLISTED_URL
        else "download: image check before storing",
        "list": hit.list_file,
        "kind": hit.kind,
        "hash": hit.hash,
        "distance": hit.distance,
        "fields": hit.download_fields(row["bytes"]),
        "removed_from": removed,
    }


def rewrite_shard(job: ShardJob, records: dict[str, dict[str, Any]]) -> None:
    """Rewrite the shard's tar (members of `records` gone), then its parquet and stats, each atomically."""
    paths = job.paths
    table = ofs.read_parquet(paths.file("parquet"))
    outcomes = [_outcome(row, records.get(row["key"])) for row in table.to_pylist()]
    dw.write_tar(paths.file("tar"), _kept_members(paths.file("tar"), set(records)))
    crashpoints.reached("scrub.shard", job.index)
    inputs = table.drop_columns([name for name in dw.DOWNLOAD_NAMES if name in table.column_names])
    rewritten = dw.output_table(inputs, outcomes)
    commit.write_parquet_atomic(rewritten, paths.file("parquet"))
    paths.commit_stats(_stats(paths.read_stats(), rewritten, table, records), paths.read_versions())


def _outcome(row: dict[str, Any], record: dict[str, Any] | None) -> dw.Outcome:
    fields: dict[str, Any] = (
        record["fields"] if record else {name: row.get(name) for name in dw.DOWNLOAD_NAMES}
    )
    return dw.Outcome(**fields)


def _stats(
    old: ShardStats, table: pa.Table, before: pa.Table, records: dict[str, dict[str, Any]]
) -> ShardStats:
    """The shard's stats as the download stage counts them; `bytes_downloaded` loses the bodies of rows
    that are now never requested (other network counters cannot be split by row: docs/safety.md)."""
    stats = ShardStats(stage=old.stage, shard=old.shard, counters=old.counters.copy())
    for status, error in zip(
        table.column("status").to_pylist(), table.column("error").to_pylist(), strict=True
    ):
        stats.count(status)
        if status != Status.OK and error:
            stats.error(f"{status}: {error}")
    for message, count in old.errors.items():
        if message.startswith("worker_lost: "):
            stats.error(message, count)
    old_rows = {row["key"]: row for row in before.select(["key", "bytes", "opt_out_signal"]).to_pylist()}
    for key, record in records.items():
        if record["status"] == Status.BLOCKLISTED_URL:  # never requested now: no body, no signal
            _lower(stats, "bytes_downloaded", old_rows[key]["bytes"] or 0)
            if old_rows[key]["opt_out_signal"]:
                _lower(stats, f"opt_out.{old_rows[key]['opt_out_signal']}", 1)
    return stats


def _lower(stats: ShardStats, counter: str, amount: int) -> None:
    """Take `amount` off a counter the download stage bumped, dropping it at zero as if never bumped."""
    if counter in stats.counters and amount:
        stats.counters[counter] -= amount
        if stats.counters[counter] <= 0:
            del stats.counters[counter]


def _kept_members(path: str, removed: set[str]) -> Iterator[tuple[str, bytes]]:
    with ofs.open_file(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
        for info in tar:
            member = tar.extractfile(info) if info.isfile() else None
            if member is not None and info.name.rpartition(".")[0] not in removed:
                yield info.name, member.read()


def _images(path: str, keys: set[str]) -> Iterator[tuple[str, bytes]]:
    """(key, stored image bytes) of the tar's image members whose key is in `keys`, in tar order."""
    with ofs.open_file(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
        for info in tar:
            key, _, ext = info.name.rpartition(".")
            member = (
                tar.extractfile(info) if info.isfile() and key in keys and ext not in TEXT_MEMBERS else None
            )
            if member is not None:
                yield key, member.read()


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _read_records(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ofs.read_text(path).splitlines() if line.strip()]
