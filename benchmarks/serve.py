"""Benchmark: `openpairs serve` throughput and latency for embedding queries, 16 concurrent clients, loopback.

Builds (once) the clustered index of benchmarks/index.py for --n vectors, starts the real `openpairs serve`
command on a free 127.0.0.1 port, and drives it with --clients concurrent aiohttp clients sending
`POST /api/search` (or clip-retrieval's `/knn-service`) with a 512-d embedding, k=10, safe mode and dedup
on (the defaults). Client and server share the same (2-core) machine, so the client's cost is included.

    .venv/bin/python benchmarks/serve.py --n 1000000
    .venv/bin/python benchmarks/serve.py --n 100000 --requests 2000     # a quick one
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index import DATA, make_data

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_index(root: Path) -> Path:
    """Build openpairs' index of the benchmark data if it is not there yet."""
    out = root / "openpairs_index"
    if not (out / "index.json").exists():
        subprocess.run([str(ROOT / ".venv/bin/openpairs"), "index", str(root), "--out", str(out)], check=True)
    return out


async def drive(url: str, bodies: list[bytes], clients: int) -> tuple[list[float], int, float]:
    """Send every body with `clients` concurrent workers; returns latencies (ms), failures, wall seconds."""
    import aiohttp

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                await response.read()
                failures += response.status != 200
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        return latencies, failures, time.perf_counter() - started


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Poll /healthz until the server answers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("openpairs serve exited early")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("openpairs serve did not start")


def request_body(endpoint: str, name: str, query: np.ndarray) -> dict[str, object]:
    """One embedding query for our API or clip-retrieval's."""
    vector = [round(float(x), 6) for x in query]
    if endpoint == "api":
        return {"embedding": vector, "k": 10}
    return {"embedding_input": vector, "modality": "image", "num_images": 10, "indice_name": name}


def main() -> None:
    """Start the server, warm up, drive it, print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="openpairs serve --workers")
    parser.add_argument("--endpoint", choices=("api", "knn-service"), default="api")
    args = parser.parse_args()
    root = DATA / f"n{args.n}_d512_c4000"
    make_data(root, args.n, 512, 4000, 1.0, 1000)
    index_dir = ensure_index(root)
    queries = np.load(root / "queries.npy")
    bodies = [
        json.dumps(request_body(args.endpoint, root.name, queries[i % len(queries)])).encode()
        for i in range(args.requests)
    ]
    port = free_port()
    command = [
        str(ROOT / ".venv/bin/openpairs"),
        "serve",
        str(index_dir),
        "--port",
        str(port),
        "--name",
        root.name,
        "--workers",
        str(args.workers),
    ]
    server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        url = f"{base}/api/search" if args.endpoint == "api" else f"{base}/knn-service"
        asyncio.run(drive(url, bodies[:200], args.clients))  # warm-up
        latencies, failures, wall = asyncio.run(drive(url, bodies, args.clients))
    finally:
        server.terminate()
        server.wait(timeout=30)
    qps = len(latencies) / wall
    p50, p99 = np.percentile(latencies, 50), np.percentile(latencies, 99)
    print(
        f"\n{args.n:,} vectors, {args.workers} server worker(s), {args.clients} clients, {len(latencies)} requests to /{args.endpoint}"
    )
    print(f"{'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failures':>9}")
    print(f"{qps:>10.0f} {p50:>8.2f} {p99:>8.2f} {failures:>9}")


if __name__ == "__main__":
    main()
