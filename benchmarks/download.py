"""Benchmark: `openpairs download` vs img2dataset 1.47.0 on the same local 10,000-URL corpus.

Uses ../shared/bench (make_corpus.py, serve.py with latency injection, run_img2dataset.sh, monitor.py).
Both tools: 256 px, border, jpg q95, webdataset, sha256, 2 worker processes, 1,000 samples per shard, small
images enlarged then padded (img2dataset's default resize_only_if_bigger=False; openpairs --upscale);
openpairs with --min-bytes 0 (img2dataset has no such filter) and --per-host 128 (the corpus is a single
host; img2dataset has no per-host limit). Prints one table and checks that both keep the same "ok" images
and store every one of them at 256x256.

    .venv/bin/python benchmarks/download.py --n 10000 --latencies 0 50
    .venv/bin/python benchmarks/download.py --byte-checks --limit 2000   (benchmarks/download_checks.py)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

BENCH = Path(os.environ.get("BENCH", Path(__file__).resolve().parents[2] / "shared" / "bench"))
DATA = Path(os.environ.get("DATA", Path.home() / ".cache/openpairs-bench/data"))
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache/openpairs-bench/peers"))
BENCH_PY = PEERS / "bench-venv" / "bin" / "python"
OPENPAIRS = Path(sys.executable).parent / "openpairs"


def ensure_corpus(n: int, port: int) -> Path:
    """The corpus folder with urls_<n>.parquet (generated once by make_corpus.py)."""
    corpus = DATA / "corpus"
    if not (corpus / f"urls_{n}.parquet").exists():
        cmd = [
            str(BENCH_PY),
            str(BENCH / "make_corpus.py"),
            "--n",
            str(n),
            "--out",
            str(corpus),
            "--port",
            str(port),
        ]
        subprocess.run(cmd, check=True, cwd=DATA)
    return corpus


def run_img2dataset(n: int, latency: int, workers: int, port: int) -> dict[str, Any]:
    """One img2dataset run through run_img2dataset.sh; its summary plus the set of successful URLs."""
    tag = f"bench_i2d_n{n}_lat{latency}"
    results = DATA / "runs" / f"{tag}.jsonl"
    env = {**os.environ, "RESULTS": str(results), "PORT": str(port), "QUIET_WAIT_S": "60", "TIMEOUT": "10"}
    cmd = [
        "bash",
        str(BENCH / "run_img2dataset.sh"),
        "-n",
        str(n),
        "-l",
        str(latency),
        "-p",
        str(workers),
        "-t",
        "64",
        "-s",
        "1000",
        "-T",
        tag,
    ]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    summary = json.loads(results.read_text().strip().splitlines()[-1])
    out = DATA / "runs" / tag / "out"
    ok: set[str] = set()
    statuses: Counter[str] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    for path in sorted(glob.glob(str(out / "*.parquet"))):
        columns = ["url", "status", "error_message", "width", "height"]
        for row in pq.read_table(path, columns=columns).to_pylist():
            status = row["status"] if row["status"] == "success" else _i2d_reason(row["error_message"] or "")
            statuses[status] += 1
            if row["status"] == "success":
                ok.add(row["url"])
                sizes[(row["width"], row["height"])] += 1
    return {
        "wall_s": summary["wall_s"],
        "cpu_s": (summary.get("cpu_user_s") or 0) + (summary.get("cpu_sys_s") or 0),
        "peak_pss_mb": summary.get("peak_pss_sum_mb"),
        "other_cpu_pct": summary.get("avg_other_cpu_pct"),
        "statuses": statuses,
        "ok": ok,
        "sizes": sizes,
    }


def _i2d_reason(message: str) -> str:
    """A short reason from an img2dataset error message."""
    lowered = message.lower()
    for needle, name in (
        ("http error 4", "http_4xx"),
        ("http error 5", "http_5xx"),
        ("timed out", "timeout"),
        ("x-robots-tag", "opted_out"),
        ("cannot identify", "decode_error"),
        ("truncated", "decode_error"),
    ):
        if needle in lowered:
            return name
    return "error:" + lowered[:30]


def run_openpairs(n: int, latency: int, workers: int, port: int, corpus: Path) -> dict[str, Any]:
    """One openpairs run against serve.py, timed with /usr/bin/time -v and sampled by monitor.py."""
    run = DATA / "runs" / f"bench_openpairs_n{n}_lat{latency}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    run.mkdir(parents=True)
    server = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "serve.py"),
            "--root",
            str(corpus),
            "--port",
            str(port),
            "--latency-ms",
            str(latency),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        cmd = [
            str(OPENPAIRS),
            "download",
            str(corpus / f"urls_{n}.parquet"),
            "--out",
            str(run / "out"),
            "--workers",
            str(workers),
            "--image-size",
            "256",
            "--resize-mode",
            "border",
            "--upscale",
            "--encode-format",
            "jpg",
            "--encode-quality",
            "95",
            "--min-bytes",
            "0",
            "--shard-size",
            "1000",
            "--timeout",
            "10",
            "--per-host",
            "128",
            "--allow-address",
            "127.0.0.1",
        ]
        started = time.perf_counter()
        timed = ["/usr/bin/time", "-v", "-o", str(run / "time.txt"), *cmd]
        process = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        monitor = subprocess.Popen(
            [
                str(BENCH_PY),
                str(BENCH / "monitor.py"),
                "--pid",
                str(process.pid),
                "--server-pid",
                str(server.pid),
                "--out",
                str(run / "monitor.json"),
            ]
        )
        process.wait()
        wall = time.perf_counter() - started
        monitor.wait()
    finally:
        server.terminate()
        server.wait()
    if process.returncode:
        raise RuntimeError(f"openpairs exited with {process.returncode}")
    statuses: Counter[str] = Counter()
    ok: set[str] = set()
    sizes: Counter[tuple[int, int]] = Counter()
    for path in sorted(glob.glob(str(run / "out" / "shards" / "*.parquet"))):
        for row in pq.read_table(path, columns=["url", "status", "width", "height"]).to_pylist():
            statuses[row["status"]] += 1
            if row["status"] == "ok":
                ok.add(row["url"])
                sizes[(row["width"], row["height"])] += 1
    monitor = json.loads((run / "monitor.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": _cpu_seconds(run / "time.txt"),
        "statuses": statuses,
        "ok": ok,
        "sizes": sizes,
        "peak_pss_mb": monitor["peak_pss_sum_mb"],
        "other_cpu_pct": monitor.get("avg_other_cpu_pct"),
    }


def _cpu_seconds(path: Path) -> float:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        values[key] = value
    return float(values["User time (seconds)"]) + float(values["System time (seconds)"])


def _wait_for_port(port: int) -> None:
    import socket

    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def table(n: int, rows: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> str:
    """The comparison table (markdown); "other load" is the CPU the rest of the machine used meanwhile
    (monitor.py's avg_other_cpu_pct, % of one core): above ~10 the run shared the machine."""
    lines = [
        "| latency | tool | samples/s | ok | other statuses | CPU-ms/sample | peak PSS MB | other load % |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for latency, i2d, ours in rows:
        for name, run in (("img2dataset 1.47.0", i2d), ("openpairs", ours)):
            other = ", ".join(
                f"{k} {v}" for k, v in run["statuses"].most_common() if k not in ("ok", "success")
            )
            lines.append(
                f"| {latency} ms | {name} | {n / run['wall_s']:.0f} | {len(run['ok'])} | {other} | "
                f"{1000 * run['cpu_s'] / n:.2f} | {run['peak_pss_mb']:.0f} | {run['other_cpu_pct']} |"
            )
        speed = i2d["wall_s"] / ours["wall_s"]
        cpu = ours["cpu_s"] / max(i2d["cpu_s"], 1e-9)
        memory = ours["peak_pss_mb"] / i2d["peak_pss_mb"]
        lines.append(f"| {latency} ms | ratio | {speed:.2f}x | | | {cpu:.2f}x | {memory:.2f}x | |")
    return "\n".join(lines)


def main() -> int:
    """Run both tools at each latency and print the table and the success-set check."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 50])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18765, help="the port baked into the corpus URLs")
    parser.add_argument(
        "--byte-checks", action="store_true", help="instead: CPU-ms per image of the byte checks"
    )
    args, rest = parser.parse_known_args()
    if args.byte_checks:  # benchmarks/download_checks.py, its options after ours (e.g. --limit 500)
        checks = Path(__file__).with_name("download_checks.py")
        return subprocess.run([sys.executable, str(checks), *rest], check=False).returncode
    corpus = ensure_corpus(args.n, args.port)
    rows = []
    for latency in args.latencies:
        i2d = run_img2dataset(args.n, latency, args.workers, args.port)
        ours = run_openpairs(args.n, latency, args.workers, args.port, corpus)
        rows.append((latency, i2d, ours))
        only_i2d, only_ours = i2d["ok"] - ours["ok"], ours["ok"] - i2d["ok"]
        print(
            f"latency {latency} ms: ok sets identical={not only_i2d and not only_ours} "
            f"(only img2dataset {len(only_i2d)}, only openpairs {len(only_ours)})",
            flush=True,
        )
        for url in sorted(only_i2d)[:5] + sorted(only_ours)[:5]:
            print("  differs:", url)
        for name, run in (("img2dataset", i2d), ("openpairs", ours)):
            print(f"  {name} stored sizes: {dict(run['sizes'].most_common(3))}", flush=True)
    print(table(args.n, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
