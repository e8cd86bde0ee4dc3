"""The opt-out rule readers on their own (what the six-origin download test does not reach): global
robots.txt lines, ties between equally specific lines, AIPREF inheritance, bad tdmrep.json files."""

from __future__ import annotations

import pytest
from yarl import URL

from openpairs.net.aipref import aipref_refusal, content_usage_header_refusal
from openpairs.net.config import FetchConfig
from openpairs.net.robots import parse_robots, robots_signal
from openpairs.net.robots_lines import parse_lines, parse_preferences, scoped_preferences
from openpairs.net.tdmrep import header_reserves, parse_tdmrep, tdm_rule_for

ROBOTS = """Content-Usage: train-ai=n
User-agent: openpairs
User-agent: mybot/2.1
Disallow: /x/
Content-Usage: /a/ train-ai=y
Content-Usage: /a/ train-ai=n
Content-Usage: /c/ train-ai=y
User-agent: silent
Disallow: /y/
"""


def test_groups_global_lines_and_ties() -> None:
    """~1 ms: a group without the field, or none of whose lines matches the path, falls back to the global
    lines; equal scopes merge, `n` winning."""
    lines = parse_lines(ROBOTS)
    assert [v for _, v in lines.rules_for("MyBot", "content-usage")][:2] == [
        "/a/ train-ai=y",
        "/a/ train-ai=n",
    ]
    assert [v for _, v in lines.rules_for("silent", "content-usage")] == ["train-ai=n"]  # the global line
    assert [v for _, v in lines.rules_for("nobody", "content-usage")] == ["train-ai=n"]  # no `*` group
    values = [v for _, v in lines.rules_for("openpairs", "content-usage")]
    assert scoped_preferences(values, "/a/b.jpg") == {"train-ai": "n"}
    assert scoped_preferences(values, "/b.jpg") == {}
    robots = parse_robots(ROBOTS.encode())
    signals = [robots_signal(robots, URL(f"http://h{p}"), FetchConfig()) for p in ("/a/1", "/b/1", "/c/1")]
    usage = "robots.txt content-usage: train-ai=n"
    assert signals == [usage, usage, None]  # no group line for /b/: the global line; /c/: the group's y


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("train-ai=n", "train-ai=n"),
        ("train-genai=n, train-ai=y", "train-genai=n"),
        ("bots=n", "bots=n"),
        ("bots=n, train-ai=y", None),
        ("search=n", None),
        ('train-ai="n";reason=x', "train-ai=n"),
        ("", None),
    ],
)
def test_aipref_categories_inherit(text: str, refusal: str | None) -> None:
    """~1 ms each: the nearest stated category decides; categories that do not concern training never do."""
    assert aipref_refusal(parse_preferences(text)) == refusal


def test_content_usage_headers_merge_to_the_refusal() -> None:
    """~1 ms: several Content-Usage headers are read together, a `n` in any of them counts."""
    assert content_usage_header_refusal(["search=y", "train-ai=n"]) == "train-ai=n"
    assert content_usage_header_refusal([]) is None


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"location": "/"}', b'[{"tdm-reservation": 1}]', b'[{"location": "/", "tdm-reservation": 2}]',
     b'[{"location": "/", "tdm-reservation": true}]', b"\xff\xfe"],
)  # fmt: skip
def test_bad_tdmrep_files_are_unparsable(body: bytes) -> None:
    """~1 ms each: anything but an array of rules with a location and a 0/1 reservation is refused."""
    with pytest.raises(ValueError):
        parse_tdmrep(body)


def test_tdmrep_first_match_and_header() -> None:
    """~1 ms: the first matching location applies (`$` ends the path); the header is read as 0, 1 or absent."""
    rules = parse_tdmrep(
        b'[{"location": "img/*.png$", "tdm-reservation": 1}, {"location": "*", "tdm-reservation": 0}]'
    )
    assert tdm_rule_for(rules, "/img/a.png").reservation == 1  # type: ignore[union-attr]
    assert tdm_rule_for(rules, "/img/a.png?x=1").reservation == 0  # type: ignore[union-attr]
    assert [header_reserves(v) for v in (["1"], [" 0 "], [], ["yes"])] == [True, False, None, None]
