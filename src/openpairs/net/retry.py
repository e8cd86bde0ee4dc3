"""Retry policy (exponential backoff with jitter, Retry-After) and per-host back-off."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

from openpairs.core.status import is_transient


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

    def delay(self, host: str, seconds: float, now: float) -> None:
        """Ask every request to `host` to wait `seconds` (a 429's Retry-After)."""
        self._not_before[host] = max(self._not_before.get(host, 0.0), now + seconds)

    def wait_for(self, host: str, now: float) -> float:
        """Seconds to wait before the next request to `host`."""
        return max(0.0, self._not_before.get(host, 0.0) - now)

    def last_status(self, host: str) -> str:
        """The last transient status `host` gave (what a backed-off request reports)."""
        return self._last.get(host, "connection_error")
