"""Spawning's ai.txt (`/ai.txt`): robots.txt syntax, user-agent groups with `Allow`/`Disallow` over paths
(`/images/`) or file names (`*.jpg`, matched against the end of the path, without its query).

The longest matching rule decides (a path rule's length, or a file-name pattern's), `Allow` winning a tie;
no matching rule allows. A body that is not text, or an HTML page, is unparsable (counted, no signal).
"""

from __future__ import annotations

from openpairs.net.robots_lines import RobotsLines, parse_lines, path_matches

AI_TXT_PATH = "/ai.txt"


def parse_ai_txt(body: bytes) -> RobotsLines:
    """The groups of an ai.txt body; ValueError for a body that is not a text file of rules."""
    text = body.decode("utf-8")
    if "<html" in text[:2048].lower() or "<!doctype" in text[:2048].lower():
        raise ValueError("ai.txt is an HTML page")
    return parse_lines(text)


def ai_txt_disallows(lines: RobotsLines, agents: tuple[str, ...], path: str) -> bool:
    """True when the rules of any of `agents` disallow `path` (path and query of the URL)."""
    return any(_disallowed(lines, agent, path) for agent in agents)


def _disallowed(lines: RobotsLines, agent: str, path: str) -> bool:
    best, allowed = -1, True
    for field, pattern in lines.rules_for(agent, "allow", "disallow"):
        if not pattern or not _matches(pattern, path):
            continue
        weight = len(pattern)
        if weight > best or (weight == best and field == "allow"):
            best, allowed = weight, field == "allow"
    return not allowed


def _matches(pattern: str, path: str) -> bool:
    if pattern.startswith("*.") and "/" not in pattern:
        return path.split("?", 1)[0].lower().endswith(pattern[1:].lower())
    return path_matches(pattern, path)
