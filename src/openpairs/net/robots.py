"""robots.txt: who may fetch what (protego), and the usage lines protego ignores: IETF AIPREF
`Content-Usage` and Cloudflare `Content-Signal` (net/robots_lines.py, net/aipref.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from yarl import URL

from openpairs.net.aipref import aipref_refusal, content_signal_refusal
from openpairs.net.robots_lines import RobotsLines, parse_lines, scoped_preferences

if TYPE_CHECKING:
    from protego import Protego

    from openpairs.net.config import FetchConfig

ROBOTS_PATH = "/robots.txt"


@dataclass(frozen=True)
class RobotsFile:
    """One origin's robots.txt: its access rules and its lines by group."""

    access: Protego
    lines: RobotsLines


def parse_robots(body: bytes) -> RobotsFile:
    """Parse a robots.txt body (undecodable bytes replaced: robots.txt is read leniently, as crawlers do)."""
    from protego import Protego

    text = body.decode("utf-8", errors="replace")
    return RobotsFile(Protego.parse(text), parse_lines(text))


def robots_signal(robots: RobotsFile, url: URL, config: FetchConfig) -> str | None:
    """The `opt_out_signal` robots.txt gives `url` for any of our groups (config.robots_groups()), or None."""
    agents = config.robots_groups()
    if config.respect_robots_txt and not all(robots.access.can_fetch(str(url), a) for a in agents):
        return "robots.txt"
    path = url.raw_path_qs
    for agent in agents:
        if config.respect_content_usage:
            refusal = aipref_refusal(_preferences(robots.lines, agent, "content-usage", path))
            if refusal:
                return f"robots.txt content-usage: {refusal}"
        if config.respect_content_signal:
            refusal = content_signal_refusal(_preferences(robots.lines, agent, "content-signal", path))
            if refusal:
                return f"robots.txt content-signal: {refusal}"
    return None


def _preferences(lines: RobotsLines, agent: str, name: str, path: str) -> dict[str, str]:
    """The preferences of the most specific `name` line for `agent` matching `path`: its groups' lines,
    else (none matching the path) the lines before any group."""
    prefs = scoped_preferences([value for _, value in lines.rules_for(agent, name)], path)
    if prefs or not lines.global_rules:
        return prefs
    return scoped_preferences([value for field, value in lines.global_rules if field == name], path)
