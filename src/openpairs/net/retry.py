"""Retry policy (exponential backoff with jitter, Retry-After) and per-host back-off."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

from openpairs.core.status import is_transient

HOST_WAIT_CAP = 3600.0  # the longest a Retry-After holds a host back in one process
MAX_HOSTS = 50_000  # hosts with back-off state a long-lived process keeps; past it, expired state goes


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


def should_retry(status: str) -> bool:
    """Timeouts, connection errors, 408, 429 and 5xx are retried; everything else is final."""
    return is_transient(status)


@dataclass
class HostHealth:
    """Consecutive transient failures per host; a host that keeps failing is short-circuited for a while."""

    max_failures: int = 8
    cooldown: float = 30.0
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, float] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)
    _last: dict[str, str] = field(default_factory=dict)

    def blocked(self, host: str, now: float) -> bool:
        """True while `host` is backed off after too many consecutive failures."""
        return self._open_until.get(host, 0.0) > now

    def record(self, host: str, status: str, now: float) -> None:
        """Count a response of `host`: a transient failure opens the breaker after `max_failures`."""
        if not is_transient(status):
            self._failures.pop(host, None)
            return
        self._last[host] = status
        failures = self._failures.get(host, 0) + 1
        self._failures[host] = failures
        if failures >= self.max_failures:
            self._open_until[host] = now + self.cooldown
            self._failures[host] = self.max_failures // 2  # half-open: a few more tries after cooldown
        self._bound(now)

    def delay(self, host: str, seconds: float, now: float) -> None:
        """Ask every request to `host` to wait `seconds` (a 429's Retry-After)."""
        self._not_before[host] = max(self._not_before.get(host, 0.0), now + seconds)
        self._bound(now)

    def wait_for(self, host: str, now: float) -> float:
        """Seconds to wait before the next request to `host`."""
        return max(0.0, self._not_before.get(host, 0.0) - now)

    def last_status(self, host: str) -> str:
        """The last transient status `host` gave (what a backed-off request reports)."""
        return self._last.get(host, "connection_error")

    def _bound(self, now: float) -> None:
        """Keep at most ~MAX_HOSTS hosts: drop passed waits, then the longest-known failure counts."""
        if len(self._failures) + len(self._open_until) + len(self._not_before) <= MAX_HOSTS:
            return
        for table in (self._open_until, self._not_before):
            for host in [host for host, until in table.items() if until <= now]:
                del table[host]
        while len(self._failures) > MAX_HOSTS // 4:
            del self._failures[next(iter(self._failures))]
        self._last = {h: s for h, s in self._last.items() if h in self._failures or h in self._open_until}
