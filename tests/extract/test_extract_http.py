"""HTTP inputs: retries with backoff on 503, resume after a cut connection, 404, and --crawl listings."""

from __future__ import annotations

import gzip

from typer.testing import CliRunner

from openpairs.cc.source import ResumingHTTPStream, RetryPolicy, open_input
from openpairs.cli import app
from tests.extract.conftest import extracted
from tests.extract.httpserver import FlakyFileServer
from tests.extract.watfiles import DERIVED, WAT_2014

FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, timeout=5)


def test_stream_retries_503_and_resumes_a_cut_body() -> None:
    data = DERIVED.read_bytes()
    with FlakyFileServer() as server:
        server.files["w.gz"] = data
        server.fail["w.gz"] = 2
        server.cut["w.gz"] = 20_000
        stream = ResumingHTTPStream(server.base + "w.gz", FAST)
        got = b"".join(iter(lambda: stream.read(8192), b""))
        stream.close()
    assert got == data
    ranges = [r for _, r in server.requests if r]
    assert ranges == ["bytes=20000-"]
    assert len(server.requests) == 4  # two 503s, the cut response, the resumed one


def test_http_404_is_a_clear_unreadable_input(run, tmp_path) -> None:
    with FlakyFileServer() as server:
        outcome = run([server.base + "missing.wat.gz", str(WAT_2014)], preset="laion5b")
    assert [f["shard"] for f in outcome.extract.failed] == [0]
    assert "HTTP 404" in outcome.extract.failed[0]["error"]
    assert outcome.extract.total.statuses["ok"] == 1


def test_http_input_gives_the_same_rows_as_the_local_file(run, tmp_path) -> None:
    with FlakyFileServer() as server:
        server.files["d.wat.gz"] = DERIVED.read_bytes()
        server.fail["d.wat.gz"] = 1
        run([server.base + "d.wat.gz"], preset="laion5b", out=str(tmp_path / "http"))
    run([str(DERIVED)], preset="laion5b", out=str(tmp_path / "local"))
    remote, local = extracted(str(tmp_path / "http")), extracted(str(tmp_path / "local"))
    assert remote.drop(["source"]).equals(local.drop(["source"]))


def test_open_input_gives_up_with_a_clear_error() -> None:
    with FlakyFileServer() as server:
        server.files["x"] = b"data"
        server.fail["x"] = 50
        try:
            with open_input(server.base + "x", FAST) as stream:
                stream.read()
        except Exception as exc:
            assert "giving up after 5 attempts" in str(exc)
        else:
            raise AssertionError("expected an error")


def test_crawl_option_reads_wat_paths_and_fetches_the_range(tmp_path) -> None:
    with FlakyFileServer() as server:
        names = [f"crawl-data/CC-MAIN-2099-01/segments/1/wat/f{i}.warc.wat.gz" for i in range(4)]
        server.files["crawl-data/CC-MAIN-2099-01/wat.paths.gz"] = gzip.compress("\n".join(names).encode())
        for name in names:
            server.files[name] = DERIVED.read_bytes()
        server.fail[names[1]] = 1  # a 503 SlowDown on the way
        result = CliRunner().invoke(
            app,
            [
                "extract",
                "--crawl",
                "CC-MAIN-2099-01",
                "--wat-range",
                "1:3",
                "--cc-base-url",
                server.base,
                "--out",
                str(tmp_path / "o"),
                "--preset",
                "laion5b",
                "--workers",
                "1",
            ],
        )
    assert result.exit_code == 0, result.output
    fetched = sorted({path for path, _ in server.requests if path.endswith("warc.wat.gz")})
    assert fetched == ["/" + names[1], "/" + names[2]]
    assert "duplicates" in result.output  # the two identical WATs dedup against each other
