"""The download stage: candidate rows -> fetched, checked, resized images in webdataset shards.

`run_shard` reads one input shard, fetches its URLs concurrently (net/), converts images (image/) in a
thread, and writes `shards/<i>.tar` (key order, fixed metadata) and `shards/<i>.parquet` (one row per
input row, kept or not) atomically. The runner writes `<i>_stats.json` last.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from openpairs.core import crashpoints
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status, is_transient
from openpairs.executors import draining
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import download_write as dw
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.download_memory import Backlog, trim_malloc, tune_malloc
from openpairs.stages.download_row import RowContext, fetch_row
from openpairs.stages.inputs import EXPECTED_SHA256, INPUT_ERROR, INTERNAL_COLUMNS, InputSpec, normalise
from openpairs.stages.runner import ShardTask

if TYPE_CHECKING:
    pass

STAGE = "download"
T = TypeVar("T")
_Row = tuple[int, str, str | None, str | None, int | None]  # position, key, url, expected sha256, page tdm
PAGE_TDM_RESERVATION = "page_tdm_reservation"  # the page's <meta name="tdm-reservation"> (extract)


def run_shard(config: DownloadConfig, task: ShardTask) -> ShardStats:
    """Download one shard; with `retry_failed`, re-fetch only the transient rows of its previous output."""
    started = time.perf_counter()
    tune_malloc()
    stats = ShardStats(stage=STAGE, shard=task.index)
    inputs = read_input_shard(task.inputs[0], config)
    keys: list[str] = [str(k) for k in inputs.column("key").to_pylist()]
    if len(set(keys)) != len(keys):
        raise ValueError(f"input shard {task.inputs[0]} has duplicate keys")
    spool = dw.Spool()
    try:
        outcomes, todo = _previous(config, task, keys, spool)
        urls: list[str | None] = inputs.column("url").to_pylist()
        hashes = _internal(inputs, EXPECTED_SHA256) if config.verify_hash else [None] * len(keys)
        unreadable = _internal(inputs, INPUT_ERROR)
        for i in todo:
            if unreadable[i]:  # a row the input reader could not read: never fetched
                outcomes[i] = dw.Outcome(Status.INVALID_URL, unreadable[i])
        pages = _page_tdm(inputs)
        rows = [(i, keys[i], urls[i], hashes[i], pages[i]) for i in todo if not unreadable[i]]
        fetched = _fetch_all(config, rows, spool, stats)
        for i, outcome in fetched.items():
            outcomes[i] = outcome
        final = [o if o is not None else dw.Outcome(Status.CONNECTION_ERROR, "not fetched") for o in outcomes]
        table = dw.output_table(inputs, final)
        write_started = time.perf_counter()
        dw.write_tar(task.paths.file("tar"), dw.tar_members(table, final, spool))
        crashpoints.reached("download.commit", task.index)
        commit.write_parquet_atomic(table, task.paths.file("parquet"))
        stats.time("write", time.perf_counter() - write_started)
    finally:
        spool.close()
        trim_malloc()
    for outcome in final:
        stats.count(outcome.status)
        if outcome.opt_out_signal:
            stats.bump(f"opt_out.{outcome.opt_out_signal}")
        if outcome.status != Status.OK and outcome.error:
            stats.error(f"{outcome.status}: {outcome.error}")
    stats.bump("fetched", len(todo))
    stats.time("total", time.perf_counter() - started)
    return stats


def read_input_shard(path: str, config: DownloadConfig) -> pa.Table:
    """An input shard with every candidate column (missing ones null) and the extra columns asked for."""
    raw: pa.Table = ofs.read_parquet(path)
    if raw.schema.names[: len(CANDIDATE_SCHEMA)] == CANDIDATE_SCHEMA.names and "key" in raw.column_names:
        extras = {n for n in raw.column_names if n not in CANDIDATE_SCHEMA.names}
        needed = {EXPECTED_SHA256} if config.verify_hash else set()
        if needed <= extras <= {*config.save_additional_columns, *INTERNAL_COLUMNS, PAGE_TDM_RESERVATION}:
            return raw  # already normalised by planning
    spec = InputSpec(path, "parquet", "url", "caption", config.save_additional_columns, config.verify_hash)
    table = normalise(raw, spec)
    return table.set_column(0, "key", raw.column("key").cast(pa.string()))


def _internal(inputs: pa.Table, name: str) -> list[str | None]:
    """Each row's value of an internal column (expected sha256, input error), None where it has none."""
    if name not in inputs.column_names:
        return [None] * inputs.num_rows
    return inputs.column(name).to_pylist()  # type: ignore[no-any-return]


def _page_tdm(inputs: pa.Table) -> list[int | None]:
    """Each row's page tdm-reservation (0, 1 or None) where the input has the column, else None."""
    if PAGE_TDM_RESERVATION not in inputs.column_names:
        return [None] * inputs.num_rows
    return [None if v is None else int(v) for v in inputs.column(PAGE_TDM_RESERVATION).to_pylist()]


def _previous(
    config: DownloadConfig, task: ShardTask, keys: list[str], spool: dw.Spool
) -> tuple[list[dw.Outcome | None], list[int]]:
    """Outcomes kept from the shard's previous output (retry mode) and the row positions to fetch."""
    outcomes: list[dw.Outcome | None] = [None] * len(keys)
    parquet = task.paths.file("parquet")
    if not config.retry_failed or not ofs.exists(parquet):
        return outcomes, list(range(len(keys)))
    old = {row["key"]: row for row in _previous_rows(parquet)}
    keep = {k for k, row in old.items() if not is_transient(row["status"])}
    exts = dw.read_tar_into(task.paths.file("tar"), {k for k in keep if old[k]["status"] == Status.OK}, spool)
    todo = []
    for i, key in enumerate(keys):
        row = old.get(key)
        lost = row is not None and row["status"] == Status.OK and key not in exts
        if key not in keep or lost:
            todo.append(i)
            continue
        fields: dict[str, Any] = {name: row.get(name) for name in dw.DOWNLOAD_NAMES} if row else {}
        outcomes[i] = dw.Outcome(**fields, ext=exts.get(key))
    return outcomes, todo


def _previous_rows(parquet: str) -> list[dict[str, Any]]:
    """The download fields of a shard's previous output (columns an older version did not write: null)."""
    names = set(ofs.parquet_columns(parquet))
    return ofs.read_parquet(parquet, ["key", *(n for n in dw.DOWNLOAD_NAMES if n in names)]).to_pylist()


def _fetch_all(
    config: DownloadConfig, rows: list[_Row], spool: dw.Spool, stats: ShardStats
) -> dict[int, dw.Outcome]:
    """Fetch and convert `rows` on this process's fetch service (shared with the other shards it runs);
    once all are handed out, tell the executor this shard only waits (`draining()`)."""
    from openpairs.net.shared import fetch_service

    if not rows:
        return {}
    handed_out = threading.Event()
    decode_threads = max(1, config.decode_threads)
    with (
        fetch_service(config.fetch_config()) as service,
        ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") as pool,
    ):
        rng = random.Random(service.config.seed)  # the shard's own jitter, as when it had its own fetcher
        backlog = Backlog(most=config.connections)
        checks = config.body_checks()
        context = RowContext(
            service.fetcher, pool, config.image_config(), checks, checks.lists(), spool, stats, backlog, rng
        )
        future = service.submit(_fetch_rows(config, rows, context, handed_out.set))
        return _outcomes_of(future, handed_out)


def _outcomes_of(future: Future[dict[int, dw.Outcome]], handed_out: threading.Event) -> dict[int, dw.Outcome]:
    """Wait for a shard's rows: `draining()` once all are handed out, then their outcomes. An interrupted
    wait (an exception in this thread) cancels the rows still running on the shared loop."""
    future.add_done_callback(lambda _: handed_out.set())
    try:
        handed_out.wait()
        draining()  # here, in the shard's thread: the executor's hook is per thread
        return future.result()
    except BaseException:
        future.cancel()
        raise


async def _fetch_rows(
    config: DownloadConfig, rows: list[_Row], context: RowContext, handed_out: Callable[[], None]
) -> dict[int, dw.Outcome]:
    """Fetch and convert `rows` ((position, key, url, expected sha256, page tdm)) with `connections` workers;
    `handed_out()` once every row has been taken."""
    outcomes: dict[int, dw.Outcome] = {}
    pending = _then_drain(rows, handed_out)
    stats = context.stats

    async def worker() -> None:
        for position, key, url, expected, page_tdm in pending:
            await context.backlog.wait_for_room()
            try:
                outcomes[position] = await fetch_row(context, key, url, expected, page_tdm)
                if len(outcomes) == max(1, len(rows) // 2):  # once a shard: no await since the store
                    crashpoints.reached("download.shard", stats.shard)  # freezes the event loop
            finally:
                await context.backlog.done()

    await asyncio.gather(*(worker() for _ in range(min(config.connections, len(rows)))))
    return outcomes


def _then_drain(rows: list[T], handed_out: Callable[[], None]) -> Iterator[T]:
    """The rows, then `handed_out()`: with all taken, the next shard may start beside the stragglers."""
    yield from rows
    handed_out()
