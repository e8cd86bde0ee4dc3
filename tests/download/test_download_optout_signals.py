"""Every fetch-time opt-out signal, in every place, against real servers on 127.0.0.1 (one per origin):
each row's status and `opt_out_signal`, the precedence of each standard, one read of each per-origin file,
no image request for a row a file refused, the stats counters, and each flag letting its rows through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openpairs.report.data import ReportData, read_stage
from tests.download.helpers import download, rows
from tests.fixtures.webserver import ImageServer

ROBOTS = b"""# lines before any group are global
Content-Usage: train-ai=y
User-agent: openpairs
Disallow: /in/ours/
Content-Usage: /in/cu/ train-ai=n
Content-Usage: /in/cu/ok/ train-ai=y
Content-Signal: /in/cs/ search=yes, ai-train=no

User-agent: mytoken
Disallow: /in/token/

User-agent: GPTBot
Disallow: /in/gpt/

User-agent: *
Disallow: /in/
"""
TDMREP = [
    {"location": "/in/free/*", "tdm-reservation": 0},
    {"location": "/headers*", "tdm-reservation": 0},
    {"location": "/in/*", "tdm-reservation": 1, "tdm-policy": "https://example.org/tdm-policy"},
]
AI_TXT = b"User-Agent: *\nDisallow: *.png\nDisallow: /in/no/\nAllow: /in/no/yes/\n"
AGENTS = {"user_agent_token": "mytoken", "robots_agents": ("GPTBot",)}


@pytest.fixture(scope="module")
def origins() -> Iterator[dict[str, ImageServer]]:
    """Six origins: one per policy file, one with none, one whose robots.txt fails, one with broken files."""
    servers = {
        "robots": ImageServer(files={"/robots.txt": ROBOTS}),
        "tdm": ImageServer(files={"/.well-known/tdmrep.json": json.dumps(TDMREP).encode()}),
        "ai": ImageServer(files={"/ai.txt": AI_TXT}),
        "plain": ImageServer(),
        "down": ImageServer(files={"/robots.txt": 503}),
        "broken": ImageServer(files={"/.well-known/tdmrep.json": b"{not json", "/ai.txt": b"x" * 600_000}),
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


# (origin, path, the page's tdm-reservation, status, opt_out_signal)
CASES = [
    ("robots", "/in/ours/jpeg_baseline", None, "opted_out", "robots.txt"),
    ("robots", "/in/token/jpeg_baseline", None, "opted_out", "robots.txt"),
    ("robots", "/in/gpt/jpeg_baseline", None, "opted_out", "robots.txt"),
    ("robots", "/in/cu/jpeg_baseline", None, "opted_out", "robots.txt content-usage: train-ai=n"),
    ("robots", "/in/cu/ok/jpeg_baseline", None, "ok", None),  # the most specific path wins
    ("robots", "/in/cs/jpeg_baseline", None, "opted_out", "robots.txt content-signal: ai-train=no"),
    ("robots", "/in/other/jpeg_baseline", None, "ok", None),  # `*` does not apply: our group exists
    ("tdm", "/in/reserved/jpeg_baseline", None, "opted_out", "tdmrep.json"),
    ("tdm", "/in/reserved/png_rgb", 0, "ok", None),  # the page's meta overrides the file
    ("tdm", "/in/free/jpeg_baseline", None, "ok", None),  # the first matching location decides
    ("tdm", "/headers?tdm-reservation=1", None, "opted_out", "tdm-reservation header"),  # over the file's 0
    ("tdm", "/headers?tdm-reservation=1&image=png_rgb", 0, "ok", None),  # the page's meta over the header
    ("plain", "/img/jpeg_baseline", 1, "opted_out", "page meta tdm-reservation"),
    ("plain", "/headers?X-Robots-Tag=noai", None, "opted_out", "x-robots-tag: noai"),
    (
        "plain",
        "/headers?Content-Usage=" + quote("train-ai=n"),
        None,
        "opted_out",
        "content-usage header: train-ai=n",
    ),
    ("plain", "/headers?Content-Usage=" + quote("bots=n, train-ai=y"), None, "ok", None),  # specific wins
    ("plain", "/headers?Content-Usage=" + quote("bots=n"), None, "opted_out", "content-usage header: bots=n"),
    ("ai", "/in/a/png_rgb.png", None, "opted_out", "ai.txt"),
    ("ai", "/in/no/jpeg_baseline", None, "opted_out", "ai.txt"),
    ("ai", "/in/no/yes/jpeg_baseline", None, "ok", None),  # the longer Allow wins
    ("ai", "/in/a/jpeg_baseline.jpg", None, "ok", None),
    ("down", "/img/jpeg_baseline", None, "http_503", None),  # retried later, never allowed or refused
    ("broken", "/img/jpeg_baseline", None, "ok", None),  # unusable files: no signal, counted
]
REFUSED_BY_FILE = [c for c in CASES if c[3] == "opted_out" and not c[1].startswith(("/headers", "/img"))]


def _input(path: Path, origins: dict[str, ImageServer], cases: list[tuple[str, ...]]) -> Path:
    urls = [origins[c[0]].url(c[1]) for c in cases]
    redirect = origins["plain"].url("/redirect-to?url=" + quote(origins["robots"].url("/in/ours/png_rgb")))
    pages = pa.array([c[2] for c in cases] + [None], pa.int8())
    table = pa.table({"url": [*urls, redirect], "caption": ["a caption"] * (len(urls) + 1)})
    pq.write_table(table.append_column("page_tdm_reservation", pages), path)
    return path


def _run(tmp_path: Path, origins: dict[str, ImageServer], cases: list, **flags: object) -> list[dict]:  # type: ignore[type-arg]
    inp = _input(tmp_path / "in.parquet", origins, cases)
    extra = ("page_tdm_reservation",)
    result = download(inp, tmp_path / "out", **AGENTS, save_additional_columns=extra, **flags)  # type: ignore[arg-type]
    assert result.ok, result
    return rows(tmp_path / "out")


def test_every_signal_in_every_place(origins: dict[str, ImageServer], tmp_path: Path) -> None:
    """~2.5 s: each row's status and signal; each file read once per origin; no request for a refused row."""
    for server in origins.values():
        server.reset_counts()
    got = _run(tmp_path, origins, CASES)
    expected = [(c[3], c[4]) for c in CASES] + [("opted_out", "robots.txt")]  # + the redirect's target
    assert [(r["status"], r["opt_out_signal"]) for r in got] == expected
    assert all(r["sha256"] is None for r in got if r["status"] != "ok")
    for name, server in origins.items():
        for path in ("/robots.txt", "/.well-known/tdmrep.json", "/ai.txt"):
            attempts = 2 if (name, path) == ("down", "/robots.txt") else 1  # 503: retried once, one read
            assert server.count(path) == attempts, (name, path)  # once per origin, however many rows
    for origin, path, *_ in [
        *REFUSED_BY_FILE,
        ("plain", "/img/jpeg_baseline"),
        ("down", "/img/jpeg_baseline"),
    ]:
        assert origins[origin].count(path.split("?")[0]) == 0, path  # refused before any image request
    assert origins["robots"].count("/in/ours/png_rgb") == 0  # the redirect's target: never requested
    stats = json.loads((tmp_path / "out" / "shards" / "00000_stats.json").read_text())
    signals = {k: v for k, v in stats["counters"].items() if k.startswith("opt_out.")}
    assert sum(signals.values()) == stats["statuses"]["opted_out"]
    assert signals["opt_out.robots.txt"] == 4 and signals["opt_out.ai.txt"] == 2
    broken = {k: v for k, v in stats["counters"].items() if k.startswith("opt_out_files.")}
    assert broken == {"opt_out_files.tdmrep.json unparsable": 1, "opt_out_files.ai.txt too_large": 1}
    shards = read_stage(str(tmp_path / "out"), "shards")
    assert shards is not None
    report = ReportData(str(tmp_path / "out"), {"shards": shards}).opt_outs()  # the report's table
    assert ("download", "robots.txt", 4) in report and (
        "download",
        "unusable tdmrep.json unparsable",
        1,
    ) in report
    assert sum(n for _, signal, n in report if not signal.startswith("unusable")) == sum(signals.values())


@pytest.mark.parametrize(
    ("flag", "signals"),
    [
        ("respect_robots_txt", ("robots.txt",)),
        (
            "respect_content_usage",
            (
                "robots.txt content-usage: train-ai=n",
                "content-usage header: train-ai=n",
                "content-usage header: bots=n",
            ),
        ),
        ("respect_content_signal", ("robots.txt content-signal: ai-train=no",)),
        ("respect_tdmrep", ("tdmrep.json", "tdm-reservation header", "page meta tdm-reservation")),
        ("respect_x_robots_tag", ("x-robots-tag: noai",)),
        ("respect_ai_txt", ("ai.txt",)),
    ],
)
def test_each_flag_lets_its_rows_through(
    origins: dict[str, ImageServer], tmp_path: Path, flag: str, signals: tuple[str, ...]
) -> None:
    """~0.3 s each: with one signal turned off, the rows it refused are downloaded; no other row changes."""
    cases = [c for c in CASES if c[4] in signals]
    got = _run(tmp_path, origins, cases, **{flag: False})
    assert [r["status"] for r in got[:-1]] == ["ok"] * len(cases)
    assert [r["opt_out_signal"] for r in got[:-1]] == [None] * len(cases)
