"""Opt-out signals in a page's `<meta>` tags, as the WAT records them (`HTML-Metadata.Head.Metas`).

- `<meta name="robots">`, or a meta named after one of our agents (`openpairs`, the user's
  `--user-agent-token`), whose comma-separated directives include `noai` or `noimageai`;
- `<meta name="tdm-reservation" content="1">` (W3C TDMRep): rights reserved; content `0` is an explicit
  permission, which overrides the site's tdmrep.json and the `tdm-reservation` header.

Names and values match case-insensitively, surrounding whitespace ignored. A meta of any other shape
(no name, a name or content that is not a string, a tdm-reservation other than 0 or 1) is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

AI_DIRECTIVES = ("noai", "noimageai")  # the robots directives that opt images out of AI training
ROBOTS = "robots"
TDM_RESERVATION = "tdm-reservation"
# the signal names (`opt_out_signal` values; the extract stats count `opt_out.<name>`), in precedence order
SIGNALS = ("page meta robots: noai", "page meta robots: noimageai", "page meta tdm-reservation")


class Meta(msgspec.Struct):
    """One entry of Head.Metas (any JSON type per field: page_signals judges the values)."""

    name: Any = None
    content: Any = None


@dataclass(frozen=True, slots=True)
class PageSignals:
    """What a page's metas say: our AI directives (lower-case, comma-joined) and its tdm-reservation."""

    robots: str | None = None
    tdm_reservation: int | None = None

    @property
    def opt_out(self) -> str | None:
        """The signal (one of SIGNALS) that opts this page's images out, or None."""
        if self.robots:
            return f"page meta robots: {self.robots.split(',', 1)[0]}"
        if self.tdm_reservation == 1:
            return SIGNALS[-1]
        return None


NO_SIGNALS = PageSignals()


def meta_names(agents: Iterable[str]) -> frozenset[str]:
    """The lower-case meta names whose directives concern us: `robots` and each of our agents."""
    return frozenset({ROBOTS, *(a.strip().lower() for a in agents if a.strip())})


def page_signals(metas: Iterable[Meta], names: frozenset[str]) -> PageSignals:
    """The signals of a page's metas; `names` from meta_names()."""
    directives: set[str] = set()
    tdm: int | None = None
    for meta in metas:
        name, content = meta.name, meta.content
        if type(name) is not str:
            continue
        name = name.strip().lower()
        if name == TDM_RESERVATION and type(content) is str and content.strip() in ("0", "1"):
            tdm = max(tdm or 0, int(content))  # two metas disagreeing: the reservation holds
        elif name in names and type(content) is str:
            found = (part.strip().lower() for part in content.split(","))
            directives.update(d for d in found if d in AI_DIRECTIVES)
    if not directives and tdm is None:
        return NO_SIGNALS
    ordered = [d for d in AI_DIRECTIVES if d in directives]
    return PageSignals(",".join(ordered) or None, tdm)
