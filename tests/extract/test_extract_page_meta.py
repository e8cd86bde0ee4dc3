"""Page-meta opt-outs at extract (robots/agent `noai`, `noimageai`; TDMRep `tdm-reservation`), on real
Common Crawl pages and on pages generated from them with the metas of each case."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.core.stats import ShardStats
from tests.extract.conftest import candidates, extracted
from tests.extract.watfiles import ALL_WATS, meta_page, payload_member, real_payloads

TOKEN = "MyLab-Bot"
# page -> its metas (as a WAT's Head.Metas), what the flag-off run records and the signal that opts it out
CASES: dict[str, tuple[list[Any] | str, str | None, int | None, str | None]] = {
    "noai": ([{"name": "robots", "content": "noai"}], "noai", None, "page meta robots: noai"),
    "spaced": ([{"name": " Robots ", "content": " INDEX , NoImageAI "}], "noimageai", None, "page meta robots: noimageai"),
    "ours": ([{"name": "OPENPAIRS", "content": "noimageai,noai"}], "noai,noimageai", None, "page meta robots: noai"),
    "token": ([{"name": "mylab-bot", "content": "NOIMAGEAI"}], "noimageai", None, "page meta robots: noimageai"),
    "others": ([{"name": "CCBot", "content": "noai"}, {"name": "googlebot", "content": "noimageai"}], None, None, None),
    "tdm1": ([{"name": "TDM-Reservation", "content": " 1 "}], None, 1, "page meta tdm-reservation"),
    "tdm0": ([{"name": "tdm-reservation", "content": "0"}], None, 0, None),
    "both": ([{"name": "tdm-reservation", "content": "1"}, {"name": "robots", "content": "noai"}], "noai", 1, "page meta robots: noai"),
    "index": ([{"name": "robots", "content": "noindex, nofollow"}], None, None, None),
    "odd": ([{"name": 7, "content": "noai"}, {"name": "robots"}, {"name": "robots", "content": ["noai"]}, "noai",
             {"name": "tdm-reservation", "content": "yes"}], None, None, None),
    "garbage": ("robots: noai", None, None, None),
}  # fmt: skip


def _generated_wat(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """One page per case: the real page with the most image links, retargeted, with the case's metas."""
    base = max(real_payloads(), key=lambda p: len(_html(p).get("Links", [])))
    pages = {
        name: meta_page(base, replica, metas) for replica, (name, (metas, *_)) in enumerate(CASES.items())
    }
    path = tmp_path / "metas.warc.wat.gz"
    path.write_bytes(b"".join(payload_member(page) for page in pages.values()))
    return str(path), {_url(page): name for name, page in pages.items()}


def _html(payload: dict[str, Any]) -> dict[str, Any]:
    """HTML-Metadata of a payload ({} when it has none)."""
    response = payload["Envelope"]["Payload-Metadata"].get("HTTP-Response-Metadata", {})
    return response.get("HTML-Metadata", {})  # type: ignore[no-any-return]


def _url(payload: dict[str, Any]) -> str:
    return payload["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"]  # type: ignore[no-any-return]


def _by_case(table: pa.Table, names: dict[str, str]) -> dict[str, list[tuple[Any, Any]]]:
    """The (page_robots, page_tdm_reservation) of each row, grouped by the case of its page."""
    found: dict[str, list[tuple[Any, Any]]] = {}
    for row in table.select(["page_url", "page_robots", "page_tdm_reservation"]).to_pylist():
        found.setdefault(names[row["page_url"]], []).append((row["page_robots"], row["page_tdm_reservation"]))
    return found


def test_page_metas_opt_out_at_extract_and_flag_off_keeps_them(run, tmp_path) -> None:
    wat, names = _generated_wat(tmp_path)
    off = str(tmp_path / "off")
    result = CliRunner().invoke(
        app, ["extract", wat, "--out", off, "--language", "off", "--all-languages", "--no-respect-page-meta",
              "--user-agent-token", TOKEN],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    every = _by_case(extracted(off), names)
    assert every.keys() == CASES.keys()  # flag off: every page keeps its rows, its metas recorded
    for name, (_, robots, tdm, _) in CASES.items():
        assert set(every[name]) == {(robots, tdm)}, name
    assert set(_by_case(candidates(off), names)) == set(CASES)  # dedup carries the columns on

    outcome = run([wat], out=str(tmp_path / "on"), language="off", english_only=False, user_agent_token=TOKEN)
    total: ShardStats = outcome.extract.total
    kept = _by_case(extracted(str(tmp_path / "on")), names)
    assert kept.keys() == {name for name, case in CASES.items() if case[3] is None}
    assert {case for case, rows in kept.items() if set(rows) != {(None, None)}} == {"tdm0"}
    assert set(kept["tdm0"]) == {(None, 0)}  # an explicit permission, for download's TDMRep precedence
    expected = Counter()  # the rows each signal removed: what the flag-off run kept of those pages
    for name, (*_, signal) in CASES.items():
        if signal:
            expected[f"opt_out.{signal}"] += len(every[name])
    assert {k: v for k, v in total.counters.items() if k.startswith("opt_out.")} == expected
    assert total.statuses["opted_out"] == sum(expected.values()) > 0
    assert total.statuses["ok"] + total.statuses["opted_out"] == sum(map(len, every.values()))
    assert total.is_balanced() and total.rows_in == total.counters["img_links"]


def test_real_robots_metas_do_not_opt_out(run, tmp_path) -> None:
    """The real files carry robots metas, none of them noai/noimageai or tdm-reservation: nothing is
    opted out and no row records a signal."""
    robots = [
        meta["content"]
        for path in ALL_WATS
        for payload in real_payloads(path)
        for meta in _html(payload).get("Head", {}).get("Metas", [])
        if meta.get("name", "").lower() == "robots"
    ]
    assert len(robots) == 8 and "INDEX,FOLLOW" in robots and "noindex,nofollow" in robots
    outcome = run(ALL_WATS, language="off", english_only=False)
    table = pa.concat_tables(extracted(str(tmp_path / "out"), shard) for shard in range(len(ALL_WATS)))
    assert table.num_rows == outcome.extract.total.statuses["ok"] > 800
    assert "opted_out" not in outcome.extract.total.statuses
    assert table["page_robots"].null_count == table["page_tdm_reservation"].null_count == table.num_rows
