"""Every opt-out signal read over HTTP, in one place: before a request (the page's tdm-reservation, the
origin's robots.txt, tdmrep.json and ai.txt) and on each answer's headers before its body is read
(X-Robots-Tag, tdm-reservation, Content-Usage). A refusal is a FetchResult `opted_out` with its
`opt_out_signal`; each signal is turned off by its own FetchConfig flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from yarl import URL

from openpairs.core.status import Status
from openpairs.net.aipref import content_usage_header_refusal
from openpairs.net.aitxt import AI_TXT_PATH, ai_txt_disallows, parse_ai_txt
from openpairs.net.config import FetchConfig, FetchResult
from openpairs.net.optout import opted_out
from openpairs.net.origin_files import OriginFile, OriginFiles, Parser, origin_of
from openpairs.net.robots import ROBOTS_PATH, parse_robots, robots_signal
from openpairs.net.tdmrep import TDMREP_PATH, header_reserves, parse_tdmrep, tdm_rule_for

if TYPE_CHECKING:
    from openpairs.net.fetch import Fetcher

PAGE_TDM = "page meta tdm-reservation"


def refused(signal: str, error: str) -> FetchResult:
    """The result of a row an opt-out signal refused."""
    return FetchResult(Status.OPTED_OUT, error=error, opt_out_signal=signal)


class OptOutChecks:
    """The opt-out checks of one fetcher, with its per-origin files."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.config: FetchConfig = fetcher.config
        self.files = OriginFiles(fetcher, _parsers(self.config))

    async def before(self, url: URL, page_tdm: int | None) -> tuple[FetchResult | None, list[str]]:
        """(refusal or transient failure, or None; counters of unusable files) before requesting `url`."""
        if page_tdm == 1 and self.config.respect_tdmrep:
            return refused(PAGE_TDM, "the page's <meta name=tdm-reservation> is 1"), []
        origin = origin_of(url)
        paths = [p for p in self.files.parsers if not (p == TDMREP_PATH and page_tdm == 0)]
        files = dict(zip(paths, await self.files.read(origin, paths), strict=True))
        notes = [f"opt_out_files.{p.rsplit('/', 1)[-1]} {f.problem}" for p, f in files.items() if f.problem]
        refusal = self._file_refusal(url, origin, files)
        if refusal is None:
            failure = next((f.failure for f in files.values() if f.failure is not None), None)
            refusal = dataclasses.replace(failure) if failure is not None else None
        return refusal, notes

    def _file_refusal(self, url: URL, origin: str, files: Mapping[str, OriginFile]) -> FetchResult | None:
        path = url.raw_path_qs
        robots = files.get(ROBOTS_PATH)
        if robots is not None and robots.parsed is not None:
            signal = robots_signal(robots.parsed, url, self.config)
            if signal:
                return refused(signal, f"{signal} of {origin} refuses it")
        tdmrep = files.get(TDMREP_PATH)
        if tdmrep is not None and tdmrep.parsed is not None:
            rule = tdm_rule_for(tdmrep.parsed, path)
            if rule is not None and rule.reservation == 1:
                policy = f" (policy {rule.policy})" if rule.policy else ""
                return refused("tdmrep.json", f"tdmrep.json of {origin} reserves {rule.location}{policy}")
        ai_txt = files.get(AI_TXT_PATH)
        groups = self.config.robots_groups()
        if ai_txt is not None and ai_txt.parsed is not None and ai_txt_disallows(ai_txt.parsed, groups, path):
            return refused("ai.txt", f"ai.txt of {origin} disallows it")
        return None

    def after(self, headers: Mapping[str, str], page_tdm: int | None) -> FetchResult | None:
        """The refusal an answer's headers give (checked before its body is read), or None."""
        config = self.config
        getall = getattr(headers, "getall", None)

        def values(name: str) -> list[str]:
            return list(getall(name, [])) if getall is not None else [headers.get(name, "")]

        if config.respect_x_robots_tag and config.opt_out_directives:
            directive = opted_out(values("X-Robots-Tag"), config.opt_out_directives, config.agents())
            if directive:
                return refused(f"x-robots-tag: {directive}", f"X-Robots-Tag: {directive}")
        if config.respect_tdmrep and page_tdm != 0 and header_reserves(values("tdm-reservation")):
            return refused("tdm-reservation header", "tdm-reservation: 1")
        if config.respect_content_usage:
            refusal = content_usage_header_refusal(values("Content-Usage"))
            if refusal:
                return refused(f"content-usage header: {refusal}", f"Content-Usage: {refusal}")
        return None


def _parsers(config: FetchConfig) -> dict[str, Parser]:
    """The per-origin files the enabled signals need, each with its parser."""
    parsers: dict[str, Parser] = {}
    if config.respect_robots_txt or config.respect_content_usage or config.respect_content_signal:
        parsers[ROBOTS_PATH] = parse_robots
    if config.respect_tdmrep:
        parsers[TDMREP_PATH] = parse_tdmrep
    if config.respect_ai_txt:
        parsers[AI_TXT_PATH] = parse_ai_txt
    return parsers
