"""One download row: safety lists on its URL, the fetch (opt-out signals, redirects), then the checked
conversion of its body in a decode thread. Every failure is the row's Outcome, never an exception."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.image.config import ImageConfig
from openpairs.stages import download_write as dw
from openpairs.stages.download_checks import Blocklisted, BodyChecks, convert_checked
from openpairs.stages.download_memory import Backlog

if TYPE_CHECKING:
    from openpairs.net.config import FetchResult
    from openpairs.safety.blocklist import Blocklists


@dataclass
class RowContext:
    """What one shard's rows need: the process's fetcher, the shard's decode pool, spool, stats, backlog
    and backoff jitter."""

    fetcher: Any
    pool: ThreadPoolExecutor
    image_config: ImageConfig
    checks: BodyChecks
    lists: Blocklists | None
    spool: dw.Spool
    stats: ShardStats
    backlog: Backlog
    rng: random.Random


async def fetch_row(
    context: RowContext, key: str, url: str | None, expected: str | None, page_tdm: int | None
) -> dw.Outcome:
    """Fetch, check and convert one row; an unforeseen error ends as the row's status: it costs its
    row, never the shard."""
    try:
        return await _one(context, key, url, expected, page_tdm)
    except Exception as exc:
        return dw.Outcome(Status.CONNECTION_ERROR, f"unexpected {type(exc).__name__}: {exc}")


def _listed_targets(lists: Blocklists | None) -> Callable[[str], FetchResult | None] | None:
    """The refusal of a redirect target on the safety lists (checked before it is requested)."""
    if lists is None or not lists.has_url_hashes:
        return None

    def refuse(target: str) -> FetchResult | None:
        from openpairs.net.config import FetchResult

        match = lists.match_url(target)
        return FetchResult(match.status, error=f"redirect target {match.message}") if match else None

    return refuse


async def _one(
    context: RowContext, key: str, url: str | None, expected: str | None, page_tdm: int | None
) -> dw.Outcome:
    """Fetch, check (URL against the safety lists, the opt-out signals with its page's tdm-reservation)
    and convert one URL."""
    if not url:
        return dw.Outcome(Status.INVALID_URL, "missing URL")
    lists = context.lists
    if lists is not None and lists.has_url_hashes and (match := lists.match_url(url)):
        return dw.Outcome(**match.download_fields())  # on a safety list: never requested
    stats = context.stats
    result = await context.fetcher.fetch(url, context.rng, page_tdm, _listed_targets(lists))
    for note in result.notes:
        stats.bump(note)
    stats.bump("retries", max(0, result.attempts - 1 - result.redirects))
    stats.bump("redirects", result.redirects)
    if result.status != Status.OK or result.body is None:
        return dw.Outcome(result.status, result.error or None, opt_out_signal=result.opt_out_signal)
    return await _convert(context, key, result.body, expected)


async def _convert(context: RowContext, key: str, body: bytes, expected: str | None) -> dw.Outcome:
    """Check (body against the safety lists, `expected`, its known sha256, and its own signals) and
    convert a fetched body in a decode thread; a kept image goes to the spool."""
    from openpairs.image import ImageRejected

    size = len(body)
    context.stats.bump("bytes_downloaded", size)
    context.backlog.add(size)
    if expected:
        context.stats.bump("hash_checked")
    try:
        image = await asyncio.get_running_loop().run_in_executor(
            context.pool, convert_checked, body, context.image_config, expected, context.checks
        )
    except Blocklisted as listed:  # the one definition of a blocklisted row's fields (scrub uses it too)
        return dw.Outcome(**listed.match.download_fields(size))
    except ImageRejected as rejected:
        return dw.Outcome(str(rejected.status), rejected.reason, bytes=size, opt_out_signal=rejected.signal)
    except Exception as exc:  # a decoder bug on one body must not sink the shard
        return dw.Outcome(Status.DECODE_ERROR, f"{type(exc).__name__}: {exc}", bytes=size)
    finally:
        context.backlog.remove(size)
    context.spool.put(key, image.data)
    fields = (image.width, image.height, image.original_width, image.original_height, image.sha256)
    return dw.Outcome(Status.OK, None, *fields, size, image.mime, image.ext)
