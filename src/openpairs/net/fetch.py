"""Fetcher: one aiohttp session per worker process (net/shared.py), many concurrent requests, every hop
guarded."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from openpairs.core.status import Status, http_status
from openpairs.net.body import drain_short, read_capped
from openpairs.net.config import FetchConfig, FetchResult
from openpairs.net.guard import AddressPolicy, BlockedAddressError, mirror_addresses, parse_ip
from openpairs.net.resolver import GuardedResolver
from openpairs.net.retry import (
    HOST_WAIT_CAP,
    HostHealth,
    backoff_seconds,
    retry_after_seconds,
    should_retry,
)

if TYPE_CHECKING:
    from openpairs.net.signals import OptOutChecks

_Checks = tuple["OptOutChecks | None", int | None]  # the answer's header checks (None: none), the page's tdm
UrlRefusal = Callable[[str], FetchResult | None]  # a redirect target's refusal, or None to fetch it
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
SCHEMES = frozenset({"http", "https"})


class Fetcher:
    """Fetches URLs with deadlines, a size cap, manual redirects, retries and the address guard."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        allow = config.allow_addresses + mirror_addresses(config.mirror)
        self.policy = AddressPolicy(allow=allow, allow_private=config.allow_private_addresses)
        self.health = HostHealth(config.host_max_failures, config.host_cooldown)
        self.rng = random.Random(config.seed)
        self.headers = {"User-Agent": config.user_agent(), "Accept": "image/*,*/*;q=0.8"}
        self._session: aiohttp.ClientSession | None = None
        self._checks: Any = None  # net/signals.OptOutChecks, made on entry
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Fetcher:
        # `connections` URLs in progress at once, whatever the number of shards fetching through this
        # fetcher; a URL's deadlines start when it has its slot, not while other shards hold them all
        self._slots = asyncio.Semaphore(self.config.connections)
        connector = aiohttp.TCPConnector(
            limit=self.config.connections,
            limit_per_host=self.config.per_host,
            ttl_dns_cache=self.config.dns_cache_seconds,
            resolver=GuardedResolver(self.policy),
        )
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        # aiohttp silently sends a GET again after a reset or a disconnect before the answer; our retry
        # policy (counted, backed off, per-host health) is the only one, so a reset costs one attempt
        self._session._retry_connection = False
        from openpairs.net.signals import OptOutChecks

        self._checks = OptOutChecks(self)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(
        self,
        url: str,
        rng: random.Random | None = None,
        page_tdm: int | None = None,
        refuse: UrlRefusal | None = None,
    ) -> FetchResult:
        """Fetch one URL (`rng`: the caller's backoff jitter; `page_tdm`: its page's tdm-reservation meta,
        0, 1 or None; `refuse`: the caller's own check of every redirect target, e.g. safety lists,
        before it is requested); never raises for anything the network does."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            return FetchResult(Status.INVALID_URL, error=f"unparsable URL: {exc}")
        if parsed.scheme not in SCHEMES or not parsed.host:
            return FetchResult(Status.INVALID_URL, error=f"not an http(s) URL with a host: {url[:200]}")
        assert self._slots is not None, "use `async with Fetcher(...)`"
        async with self._slots:
            return await self._fetch_parsed(parsed, rng, page_tdm, refuse)

    async def _fetch_parsed(
        self, parsed: URL, rng: random.Random | None, page_tdm: int | None, refuse: UrlRefusal | None
    ) -> FetchResult:
        try:
            async with asyncio.timeout(self.config.deadline):
                return await self.follow(parsed, True, rng=rng, page_tdm=page_tdm, refuse=refuse)
        except TimeoutError:
            return FetchResult(Status.TIMEOUT, error=f"URL deadline of {self.config.deadline:g}s passed")

    async def follow(
        self,
        url: URL,
        check_optout: bool,
        max_bytes: int | None = None,
        rng: random.Random | None = None,
        page_tdm: int | None = None,
        refuse: UrlRefusal | None = None,
    ) -> FetchResult:
        """Fetch `url`, following at most `max_redirects` redirects, each hop checked again (every
        redirect target by `refuse`; with `check_optout`, every hop's origin's opt-out files first, then
        its answer's headers)."""
        attempts = 0
        jitter = rng or self.rng
        notes: list[str] = []
        for hop in range(self.config.max_redirects + 1):
            result = refuse(str(url)) if refuse is not None and hop else None
            if result is None and check_optout:
                result, seen = await self._checks.before(url, page_tdm)
                notes += seen
            if result is None:
                checks = self._checks if check_optout else None
                result = await self._with_retries(
                    url, (checks, page_tdm), max_bytes or self.config.max_bytes, jitter
                )
            attempts += result.attempts
            result.redirects, result.attempts, result.notes = hop, attempts, notes
            if result.location is None:
                return result
            try:
                url = URL(result.location)
            except ValueError:
                return FetchResult(Status.INVALID_URL, error="bad redirect location", redirects=hop)
            if url.scheme not in SCHEMES or not url.host:
                return FetchResult(
                    Status.INVALID_URL, error=f"redirect to {result.location[:200]}", redirects=hop
                )
        return FetchResult(
            Status.TOO_MANY_REDIRECTS,
            error=f"more than {self.config.max_redirects} redirects",
            attempts=attempts,
            notes=notes,
        )

    async def _with_retries(
        self, url: URL, checks: _Checks, max_bytes: int, rng: random.Random
    ) -> FetchResult:
        host = url.host or ""
        loop = asyncio.get_running_loop()
        result = FetchResult(Status.CONNECTION_ERROR)
        for attempt in range(self.config.retries + 1):
            if self.health.blocked(host, loop.time()):
                last = self.health.last_status(host)
                return FetchResult(last, error="host backed off after repeated failures", attempts=attempt)
            wait = self.health.wait_for(host, loop.time())
            if wait > self.config.retry_after_cap:
                return FetchResult(
                    http_status(429), error=f"host asked to wait {wait:.0f}s", attempts=attempt
                )
            if wait > 0:
                await asyncio.sleep(wait)
            result = await self._once(url, checks, max_bytes)
            result.attempts = attempt + 1
            self.health.record(host, result.status, loop.time())
            if result.retry_after is not None and should_retry(result.status):  # for every later request
                self.health.delay(host, min(result.retry_after, HOST_WAIT_CAP), loop.time())
            if not should_retry(result.status) or attempt == self.config.retries:
                return result
            if result.retry_after is not None:
                if result.retry_after > self.config.retry_after_cap:
                    return result
                continue
            await asyncio.sleep(
                backoff_seconds(attempt + 1, self.config.backoff_base, self.config.backoff_cap, rng)
            )
        return result

    async def _once(self, url: URL, checks: _Checks, max_bytes: int) -> FetchResult:
        target = mirror_url(self.config.mirror, url) if self.config.mirror else url
        try:
            if not self.config.mirror or parse_ip(url.host or "") is not None:
                self.policy.check_literal(url.host or "")
            async with asyncio.timeout(self.config.timeout):
                return await self._request(url, target, checks, max_bytes)
        except BlockedAddressError as exc:
            return FetchResult(Status.BLOCKED_ADDRESS, error=str(exc))
        except aiohttp.ClientConnectorError as exc:
            blocked = _blocked_cause(exc)
            if blocked is not None:
                return FetchResult(Status.BLOCKED_ADDRESS, error=str(blocked))
            return FetchResult(Status.CONNECTION_ERROR, error=f"{type(exc).__name__}: {exc}")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return FetchResult(Status.TIMEOUT, error=f"no complete answer within {self.config.timeout:g}s")
        except aiohttp.ClientResponseError as exc:  # an answer the HTTP parser refused (its 400 is its own)
            message = " ".join(exc.message.split())
            return FetchResult(Status.CONNECTION_ERROR, error=f"malformed answer: {message}")
        except (aiohttp.InvalidURL, ValueError, UnicodeError) as exc:
            return FetchResult(Status.INVALID_URL, error=f"{type(exc).__name__}: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return FetchResult(Status.CONNECTION_ERROR, error=f"{type(exc).__name__}: {exc}")

    async def _request(self, url: URL, target: URL, checks: _Checks, max_bytes: int) -> FetchResult:
        assert self._session is not None, "use `async with Fetcher(...)`"
        timeout = aiohttp.ClientTimeout(
            sock_connect=self.config.connect_timeout, sock_read=self.config.read_timeout
        )
        async with self._session.get(
            target, headers=self.headers, allow_redirects=False, timeout=timeout, max_field_size=16384
        ) as response:
            code = response.status
            if not 200 <= code < 300:  # a redirect's or an error's body
                await drain_short(response)  # the host's connection is reused, not opened again
            if code in REDIRECT_CODES:
                return self._redirect(url, target, response)
            if not 200 <= code < 300:
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                return FetchResult(http_status(code), error=f"HTTP {code}", retry_after=retry_after)
            optout, page_tdm = checks
            if optout is not None:
                refusal = optout.after(response.headers, page_tdm)
                if refusal is not None:
                    return refusal
            mime = response.headers.get("Content-Type", "")
            if (response.content_length or 0) > max_bytes:
                return FetchResult(Status.BODY_TOO_LARGE, error=f"Content-Length {response.content_length}")
            body = await read_capped(response, max_bytes)
            if body is None:
                return FetchResult(Status.BODY_TOO_LARGE, error=f"body over {max_bytes} bytes")
            return FetchResult(Status.OK, body=body, mime=mime)

    def _redirect(self, url: URL, target: URL, response: aiohttp.ClientResponse) -> FetchResult:
        location = response.headers.get("Location")
        if not location:
            return FetchResult(http_status(response.status), error="redirect without Location")
        absolute = target.join(URL(location))
        if self.config.mirror:
            absolute = unmirror_url(self.config.mirror, absolute) or url.join(URL(location))
        return FetchResult(Status.OK, location=str(absolute))


def _blocked_cause(exc: BaseException) -> BlockedAddressError | None:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, BlockedAddressError):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


def mirror_url(mirror: str, url: URL) -> URL:
    """Where `url` is fetched from a mirror: `{mirror}/{scheme}/{host[:port]}{path}?{query}`."""
    authority = url.raw_host or ""
    if url.explicit_port is not None:
        authority += f":{url.explicit_port}"
    return URL(f"{mirror.rstrip('/')}/{url.scheme}/{authority}{url.raw_path_qs}", encoded=True)


def unmirror_url(mirror: str, url: URL) -> URL | None:
    """The original URL of a mirror URL, or None when `url` is not under the mirror."""
    prefix = mirror.rstrip("/") + "/"
    text = str(url)
    if not text.startswith(prefix):
        return None
    scheme, _, rest = text[len(prefix) :].partition("/")
    if scheme not in SCHEMES or not rest:
        return None
    return URL(f"{scheme}://{rest}", encoded=True)
