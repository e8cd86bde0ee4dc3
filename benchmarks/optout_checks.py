"""Benchmark: the CPU cost per row of the fetch-time opt-out checks, in process, without the network noise.

A real server on 127.0.0.1 serves a realistic robots.txt (several groups, Disallow, Content-Usage and
Content-Signal lines), a tdmrep.json and an ai.txt; one Fetcher reads them once, then every row's checks
(`before`: the cached per-origin files; `after`: an answer's headers) run `--n` times on varied paths.
Prints CPU-µs per row for each part; benchmarks/download.py --opt-out-cost measures the whole download.

    .venv/bin/python benchmarks/optout_checks.py --n 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from multidict import CIMultiDict
from yarl import URL

from openpairs.net.config import FetchConfig
from openpairs.net.fetch import Fetcher
from tests.fixtures.webserver import ImageServer

ROBOTS = "\n".join(
    [
        "User-agent: *",
        *(f"Disallow: /private{i}/" for i in range(20)),
        "Content-Signal: search=yes, ai-train=no",
        "",
        "User-agent: openpairs",
        *(f"Disallow: /closed{i}/*.php$" for i in range(20)),
        "Content-Usage: /news/ train-ai=n",
        "Content-Usage: train-genai=y",
        "Content-Signal: /img/ ai-train=yes",
        "",
        "User-agent: GPTBot",
        "Disallow: /gpt/",
        "",
    ]
).encode()
TDMREP = json.dumps(
    [{"location": f"/reserved{i}/*", "tdm-reservation": 1} for i in range(10)]
    + [{"location": "/*", "tdm-reservation": 0}]
).encode()
AI_TXT = (
    "User-Agent: *\n"
    + "".join(f"Disallow: *.{e}\n" for e in ("gif", "bmp", "tif", "mp4"))
    + "Disallow: /x/\n"
).encode()
HEADERS = CIMultiDict(
    {"Content-Type": "image/jpeg", "Content-Length": "12345", "Cache-Control": "max-age=3600"}
)


async def measure(base: str, n: int) -> dict[str, float]:
    """CPU-µs per row of the checks before the request and on the answer's headers."""
    config = FetchConfig(allow_addresses=("127.0.0.1",), robots_agents=("GPTBot",))
    async with Fetcher(config) as fetcher:
        checks = fetcher._checks
        urls = [URL(f"{base}/img/{i % 97}/photo{i}.jpg?size={i % 5}") for i in range(n)]
        refusal, _ = await checks.before(urls[0], None)  # reads the three files once
        assert refusal is None, refusal
        started = time.process_time()
        for url in urls:
            await checks.before(url, None)
        before = time.process_time() - started
        started = time.process_time()
        for _ in urls:
            checks.after(HEADERS, None)
        after = time.process_time() - started
    return {"before_us": 1e6 * before / n, "after_us": 1e6 * after / n}


def main() -> int:
    """Serve the files, measure, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    files: dict[str, bytes | int] = {
        "/robots.txt": ROBOTS,
        "/.well-known/tdmrep.json": TDMREP,
        "/ai.txt": AI_TXT,
    }
    with ImageServer(files=files) as server:
        result = asyncio.run(measure(server.base, args.n))
    total = result["before_us"] + result["after_us"]
    print(
        f"opt-out checks per row ({args.n:,} rows, files cached): before the request "
        f"{result['before_us']:.1f} CPU-µs, on the headers {result['after_us']:.1f} CPU-µs, "
        f"total {total / 1000:.4f} CPU-ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
