"""robots.txt-style files read line by line (RFC 9309 groups): the lines protego ignores (AIPREF
`Content-Usage`, Cloudflare `Content-Signal`) and Spawning's ai.txt, which shares the syntax.

A group is one or more `User-agent` lines followed by rules; an agent's rules are those of every group
that names it (case-insensitive product token), else those of the `*` groups. Rules before the first
`User-agent` line are global: they apply to every agent whose groups say nothing on that field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

Rule = tuple[str, str]  # (field in lower case, value)


@dataclass
class Group:
    """The agents (lower case) of one group and its rules, in file order."""

    agents: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)


@dataclass
class RobotsLines:
    """Every group of a robots-style file, and the rules before its first group."""

    groups: list[Group] = field(default_factory=list)
    global_rules: list[Rule] = field(default_factory=list)
    _found: dict[tuple[str, ...], list[Rule]] = field(default_factory=dict, repr=False, compare=False)

    def rules_for(self, agent: str, *names: str) -> list[Rule]:
        """Rules of fields `names` addressed to `agent`: its own groups', else `*`'s, else the global ones
        (remembered: a file is asked the same question for every row of its origin)."""
        key = (agent, *names)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._rules_for(agent, names)
        return found

    def _rules_for(self, agent: str, names: tuple[str, ...]) -> list[Rule]:
        wanted = agent.strip().lower()
        for candidates in (wanted, "*"):
            groups = [g for g in self.groups if candidates in g.agents]
            if groups:
                rules = [rule for g in groups for rule in g.rules if rule[0] in names]
                if rules:
                    return rules
                break
        return [rule for rule in self.global_rules if rule[0] in names]


def parse_lines(text: str) -> RobotsLines:
    """The groups and global rules of a robots-style text (comments and malformed lines skipped)."""
    parsed = RobotsLines()
    current: Group | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip()
        if name in ("user-agent", "useragent"):
            if current is None or current.rules:
                current = Group()
                parsed.groups.append(current)
            current.agents.append(value.split("/", 1)[0].strip().lower())
        elif current is None:
            parsed.global_rules.append((name, value))
        else:
            current.rules.append((name, value))
    return parsed


def path_matches(pattern: str, path: str) -> bool:
    """RFC 9309 path matching: a prefix, `*` for any characters, `$` at the end for the path's end."""
    return _compiled(pattern).match(path) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""), re.DOTALL)


def scoped_preferences(values: Iterable[str], path: str) -> dict[str, str]:
    """The preferences (`key=value, ...`) of the most specific line whose path scope matches `path`.

    A line is `[/path] key=value, key=value`; a line without a path applies everywhere with the lowest
    specificity. Lines equally specific are merged, a `n`/`no` winning over any other value."""
    best = -1
    merged: dict[str, str] = {}
    for value in values:
        scope, prefs = _scoped_line(value)
        if scope is not None and not path_matches(scope, path):
            continue
        weight = len(scope) if scope is not None else 0
        if weight < best:
            continue
        if weight > best:
            best, merged = weight, {}
        for key, choice in prefs:
            if merged.get(key) not in ("n", "no"):
                merged[key] = choice
    return merged


@lru_cache(maxsize=4096)
def _scoped_line(value: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(path scope or None, preferences) of one `[/path] key=value, ...` line."""
    head, _, rest = value.partition(" ")
    if head.startswith(("/", "*")):
        return head, tuple(parse_preferences(rest).items())
    return None, tuple(parse_preferences(value).items())


def parse_preferences(text: str) -> dict[str, str]:
    """`train-ai=n, search=y` (a structured-field dictionary; parameters after `;` dropped) -> {key: value}."""
    prefs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.split(";", 1)[0].partition("=")
        key = key.strip().lower()
        if key:
            prefs[key] = value.strip().strip('"').lower() if sep else "y"  # a bare key is boolean true
    return prefs
