"""Opt-out header parsing, Retry-After, backoff and per-host back-off (pure functions)."""

from __future__ import annotations

import random

import pytest

from openpairs.net import retry
from openpairs.net.config import FetchConfig
from openpairs.net.optout import DEFAULT_DIRECTIVES, opted_out
from openpairs.net.retry import HostHealth, backoff_seconds, retry_after_seconds, should_retry

AGENTS = ("openpairs", "mybot")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["noai"], "noai"),
        (["NoImageAI"], "noimageai"),
        (["noindex, nofollow"], "noindex"),
        (["nofollow", "noimageindex"], "noimageindex"),
        (["openpairs: noai"], "openpairs: noai"),
        (["MyBot: noimageai, nofollow"], "mybot: noimageai"),
        (["otherbot: noai"], None),
        (["otherbot: noai", "nofollow"], None),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], None),
        (["all"], None),
        ([], None),
    ],
)
def test_x_robots_tag(values: list[str], expected: str | None) -> None:
    assert opted_out(values, DEFAULT_DIRECTIVES, AGENTS) == expected


def test_directives_are_configurable() -> None:
    assert opted_out(["noindex"], ("noai",), AGENTS) is None
    assert opted_out(["noai"], ("noai",), AGENTS) == "noai"


def test_user_agent_names_openpairs_and_the_token() -> None:
    config = FetchConfig(user_agent_token="mybot")
    assert "openpairs/" in config.user_agent() and "https://" in config.user_agent()
    assert config.user_agent().endswith("; mybot)")
    assert config.agents() == ("openpairs", "mybot")


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(1)
    draws = [max(backoff_seconds(attempt, 0.5, 4.0, rng) for _ in range(200)) for attempt in (1, 2, 3, 6)]
    assert draws[0] <= 0.5 < draws[1] <= 1.0 < draws[2] <= 2.0
    assert 2.0 < draws[3] <= 4.0


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        ("timeout", True),
        ("connection_error", True),
        ("http_503", True),
        ("http_429", True),
        ("http_408", True),
        ("http_404", False),
        ("http_403", False),
        ("decode_error", False),
        ("ok", False),
    ],
)
def test_what_is_retried(status: str, retry: bool) -> None:
    assert should_retry(status) is retry


def test_host_breaker_opens_after_consecutive_failures_only() -> None:
    health = HostHealth(max_failures=3, cooldown=10.0)
    for _ in range(2):
        health.record("a", "timeout", now=0.0)
    health.record("a", "ok", now=0.0)  # a success resets the count
    health.record("a", "http_503", now=0.0)
    assert not health.blocked("a", now=1.0)
    health.record("a", "http_503", now=1.0)
    health.record("a", "http_503", now=1.0)
    assert health.blocked("a", now=2.0) and health.last_status("a") == "http_503"
    assert not health.blocked("b", now=2.0)
    assert not health.blocked("a", now=12.0)


def test_retry_after_delays_the_host() -> None:
    health = HostHealth()
    health.delay("a", 5.0, now=100.0)
    assert health.wait_for("a", now=102.0) == pytest.approx(3.0)
    assert health.wait_for("b", now=102.0) == 0.0


def test_host_state_of_a_long_lived_process_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passed waits and the oldest failure counts go once MAX_HOSTS hosts have state; live waits stay."""
    monkeypatch.setattr(retry, "MAX_HOSTS", 8)
    health = HostHealth(max_failures=2, cooldown=10.0)
    health.delay("slow", 1000.0, now=0.0)
    health.record("down", "timeout", now=0.0)
    health.record("down", "timeout", now=0.0)  # backed off until 10
    for i in range(100):
        health.record(f"host{i}", "timeout", now=20.0 + i)
        health.delay(f"host{i}", 0.5, now=20.0 + i)
    assert health.wait_for("slow", now=200.0) > 0
    assert sum(map(len, (health._failures, health._open_until, health._not_before))) <= 8 + 1
    assert health._last.keys() <= {*health._failures, *health._open_until}
