"""Opt-out signals: `X-Robots-Tag` directives (plain or scoped to a user agent) and robots.txt."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
# Directives whose value itself contains a colon; they are never user-agent scopes.
_NOT_AGENTS = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})


def opted_out(values: Iterable[str], directives: Iterable[str], agents: Iterable[str]) -> str | None:
    """The directive that opts this response out for our `agents`, or None.

    Each header value is `[agent:] directive, directive, ...`; an unscoped value applies to every crawler,
    a scoped one only when its agent is one of ours (case-insensitive).
    """
    wanted = {d.strip().lower() for d in directives}
    ours = {a.strip().lower() for a in agents if a.strip()}
    for value in values:
        scope, rules = _split_scope(value)
        if scope is not None and scope not in ours:
            continue
        for rule in rules.split(","):
            directive = rule.strip().lower()
            if directive in wanted:
                return directive if scope is None else f"{scope}: {directive}"
    return None


def _split_scope(value: str) -> tuple[str | None, str]:
    head, sep, rest = value.partition(":")
    agent = head.strip().lower()
    if not sep or not agent or agent in _NOT_AGENTS or "," in agent or " " in agent:
        return None, value
    return agent, rest
