"""TDMRep (W3C TDM Reservation Protocol, Community Group final report): `/.well-known/tdmrep.json`.

The file is a JSON array of rules `{"location": PATTERN, "tdm-reservation": 0|1, "tdm-policy": URL}`;
a location is a path pattern (robots.txt syntax: `*` for any characters, `$` for the end). The first rule
whose location matches a resource's path applies. The `tdm-reservation` response header overrides the
file, and the page's `<meta name="tdm-reservation">` overrides both (net/signals.py applies that order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from openpairs.net.robots_lines import path_matches

TDMREP_PATH = "/.well-known/tdmrep.json"


@dataclass(frozen=True)
class TdmRule:
    """One rule of a tdmrep.json."""

    location: str
    reservation: int
    policy: str = ""


def parse_tdmrep(body: bytes) -> list[TdmRule]:
    """The rules of a tdmrep.json body; ValueError when it is not a list of valid rules."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, list):
        raise ValueError("tdmrep.json is not a JSON array")
    return [_rule(item) for item in data]


def _rule(item: object) -> TdmRule:
    if not isinstance(item, dict) or not isinstance(item.get("location"), str):
        raise ValueError("a tdmrep.json rule without a location")
    reservation = item.get("tdm-reservation")
    if isinstance(reservation, bool) or reservation not in (0, 1):
        raise ValueError(f"tdm-reservation must be 0 or 1, not {reservation!r}")
    location = item["location"].strip()
    if not location.startswith(("/", "*")):
        location = "/" + location
    return TdmRule(location, int(reservation), str(item.get("tdm-policy") or ""))


def tdm_rule_for(rules: list[TdmRule], path: str) -> TdmRule | None:
    """The rule that applies to `path` (the first whose location matches), or None."""
    return next((rule for rule in rules if path_matches(rule.location, path)), None)


def header_reserves(values: list[str]) -> bool | None:
    """What `tdm-reservation` response headers say: True (1), False (0), None (absent or not 0/1)."""
    said = {value.strip() for value in values} & {"0", "1"}
    return None if not said else "1" in said
