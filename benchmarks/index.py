"""Benchmark: `openpairs index` vs autofaiss 2.18.0 (clip-retrieval's `index` path) on the same .npy input.

Input: N x 512 unit vectors drawn from a few thousand Gaussian clusters (random isotropic vectors have no
real neighbours), written once in clip-retrieval's layout (img_emb/*.npy float16 + metadata/*.parquet),
plus 1,000 held-out queries drawn from the same clusters and their exact top-10 (ground truth).
openpairs: `build_index` (automatic choice, tuned to recall@10 >= 0.95) with faiss on --threads cores.
autofaiss: `build_index(embeddings=img_emb, max_index_memory_usage=4G, nb_cores=--threads, metric ip)` run in
the clip-retrieval venv as a subprocess, then searched with the parameters it chose. Both are measured
the same way: recall@10 of the held-out queries, p50/p99 of one-query-at-a-time search (1 thread).

    .venv/bin/python benchmarks/index.py --n 1000000        # the full run (~10 min on 2 cores)
    .venv/bin/python benchmarks/index.py --n 100000 --skip-autofaiss   # a quick one
    .venv/bin/python benchmarks/index.py --n 10000000 --skip-autofaiss --shards 8 --workers 2 \
        --layout merged --memory-budget 16G     # the 10M run (float16 inputs; ~20 min on 2 cores)

openpairs is also measured as `serve` runs it: a fresh process loads the index (memory-mapped) and answers
every query; its RSS after loading and after the queries, and the builder's peak RSS, are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_dedup import PeakSampler

DATA = Path(os.environ.get("DATA", Path.home() / ".cache/openpairs-bench/data")) / "index_bench"
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache/openpairs-bench/peers"))
SHARD_ROWS = 100_000
K = 10

# Runs inside the clip-retrieval venv: build with autofaiss, then measure like we do.
AUTOFAISS = r"""
import json, sys, time
import numpy as np, faiss
from autofaiss import build_index
emb, out, threads, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
started = time.perf_counter()
build_index(embeddings=emb, index_path=out + "/knn.index", index_infos_path=out + "/infos.json",
            max_index_memory_usage=budget, current_memory_available="12G", metric_type="ip",
            nb_cores=threads, verbose=30)
build = time.perf_counter() - started
infos = json.load(open(out + "/infos.json"))
index = faiss.read_index(out + "/knn.index")
faiss.ParameterSpace().set_index_parameters(index, infos["index_param"])
faiss.omp_set_num_threads(1)
q = np.load(out + "/../queries.npy"); truth = np.load(out + "/../truth.npy")
found = index.search(q, 10)[1]
recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
times = []
for i in range(len(q)):
    t = time.perf_counter(); index.search(q[i:i + 1], 10); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"build_s": build, "recall": recall, "p50_ms": float(np.percentile(times, 50)),
                  "p99_ms": float(np.percentile(times, 99)), "index": infos["index_key"],
                  "param": infos["index_param"], "size_bytes": infos.get("size in bytes")}))
"""


def make_data(
    root: Path, n: int, dim: int, clusters: int, spread: float, queries: int, seed: int = 0, families: int = 0
) -> None:
    """Write the clustered vectors (float16 shards), metadata, held-out queries and their exact top-10."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamp = root / "params.json"
    params = {"n": n, "dim": dim, "clusters": clusters, "spread": spread, "queries": queries, "seed": seed}
    if families:
        params["families"] = families
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        _ground_truth(root)
        return
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    if families:  # harder: cluster centres themselves grouped in `families` overlapping groups
        heads = rng.standard_normal((families, dim)).astype(np.float32)
        heads /= np.linalg.norm(heads, axis=1, keepdims=True)
        centres = heads[rng.integers(0, families, size=clusters)] + centres * (0.8 / np.sqrt(dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(count: int) -> np.ndarray:
        noise = rng.standard_normal((count, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        vectors = centres[rng.integers(0, clusters, size=count)] + noise
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    for sub in ("img_emb", "metadata"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, n, SHARD_ROWS)):
        rows = min(SHARD_ROWS, n - start)
        np.save(root / "img_emb" / f"img_emb_{shard}.npy", draw(rows).astype(np.float16))
        ids = range(start, start + rows)
        table = pa.table(
            {"url": [f"http://example.invalid/{i}.jpg" for i in ids], "caption": [f"item {i}" for i in ids]}
        )
        pq.write_table(table, root / "metadata" / f"metadata_{shard}.parquet")
    np.save(root / "queries.npy", draw(queries))
    stamp.write_text(json.dumps(params))
    _ground_truth(root)


def _ground_truth(root: Path) -> None:
    """The queries' exact top-10 ids, numbering the rows in the order `openpairs index` reads the files
    (img_emb_0, img_emb_1, ..., img_emb_10: by number, not by name)."""
    from openpairs.index.sources import EmbeddingStore, discover
    from openpairs.index.tune import exact_knn

    stamp = root / "truth.json"
    files = discover(str(root)).npy_files("image")
    if stamp.exists() and json.loads(stamp.read_text()) == {"files": files}:
        return
    np.save(root / "truth.npy", exact_knn(EmbeddingStore(files), np.load(root / "queries.npy"), K))
    stamp.write_text(json.dumps({"files": files}))


def measure(index: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """recall@10 and single-query p50/p99 latency (one thread)."""
    import faiss

    from openpairs.index.tune import latency_ms, recall_at_k

    faiss.omp_set_num_threads(1)
    recall = recall_at_k(index.search(queries, K)[1], truth)
    return {"recall": recall, **latency_ms(index, queries, K, repeat=len(queries))}


# Runs in a fresh process: load the index as `serve` does, search every query, report RSS (bytes).
SERVE_PROBE = r"""
import json, sys, time
import numpy as np, faiss
from openpairs.index.search import Filters, SearchIndex
out, root = sys.argv[1], sys.argv[2]
def memory():  # RssAnon: the process's own memory; RssFile: mapped file pages (page cache, shared)
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("RssAnon", "RssFile", "VmHWM")}
searcher = SearchIndex(out)
loaded = memory()
faiss.omp_set_num_threads(1)
queries = np.load(root + "/queries.npy")
times = []
for q in queries:
    t = time.perf_counter(); searcher.search(q, "image", 10, Filters(safe=False, dedup=False))
    times.append((time.perf_counter() - t) * 1000)
after = memory()
print(json.dumps({"serve_anon_loaded": loaded["RssAnon"], "serve_file_loaded": loaded["RssFile"],
                  "serve_anon_after": after["RssAnon"], "serve_file_after": after["RssFile"],
                  "serve_peak_rss": after["VmHWM"], "with_metadata_p50_ms": float(np.percentile(times, 50))}))
"""


def serve_probe(out: Path, root: Path) -> dict[str, Any]:
    """Load the index in a fresh process as `serve` does, answer every query, report its memory."""
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE, str(out), str(root)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_openpairs(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build with openpairs (automatic choice unless --factory), measure it and a `serve`-like process."""
    import resource

    import faiss

    from openpairs.executors import ExecutorConfig
    from openpairs.index.build import IndexConfig, build_index
    from openpairs.index.choose import parse_size
    from openpairs.index.search import SearchIndex

    out = root / "openpairs_index"
    config = IndexConfig(
        memory_budget=parse_size(args.memory_budget),
        threads=args.threads // max(args.workers, 1) if args.shards > 1 else args.threads,
        factory=args.factory,
        shards=args.shards,
        layout=args.layout,
        executor=ExecutorConfig(workers=args.workers),
    )
    started = time.perf_counter()
    with PeakSampler(os.getpid(), every=0.5, field="RssAnon") as own:
        manifest = build_index(str(root), str(out), config)
    total = time.perf_counter() - started
    builder_rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    entry = manifest["indices"]["image"]
    searcher = SearchIndex(str(out))
    queries, truth = np.load(root / "queries.npy"), np.load(root / "truth.npy")
    faiss.omp_set_num_threads(1)
    result = measure(searcher.indexes["image"], queries, truth)
    searcher.close()
    probe = serve_probe(out, root)
    files = [out / f for f in entry.get("shards") or [entry["file"]]] + (
        [out / entry["data"]] if "data" in entry else []
    )
    return {
        **result,
        **probe,
        "build_s": entry["build_seconds"],
        "total_s": total,
        "builder_peak_rss": builder_rss * 1024,  # with the file pages it maps (the index being merged)
        "builder_anon_peak": own.summary(),  # its own memory (RssAnon), MB: driver, largest worker, sum
        "index": entry["factory"],
        "param": f"{entry['param']}={entry['value']}",
        "tuned_recall_on_sample": entry["recall_at_10"],
        "tune_sample": entry["tune_sample"],
        "size_bytes": sum(os.path.getsize(f) for f in files),
        "estimated_bytes": entry["memory"],
        "shards": args.shards,
        "layout": args.layout,
    }


def run_autofaiss(root: Path, threads: int, budget: str) -> dict[str, Any]:
    """Build with autofaiss in the clip-retrieval venv (a subprocess) and read its measurements."""
    python = PEERS / "clip-retrieval-venv" / "bin" / "python"
    if not python.exists():
        return {"error": f"{python} missing (see /tmp/peers_clip.log)"}
    out = root / "autofaiss_index"
    out.mkdir(exist_ok=True)
    cmd = [str(python), "-c", AUTOFAISS, str(root / "img_emb"), str(out), str(threads), budget]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    """Parse arguments, prepare the data, run both, print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=4000)
    parser.add_argument("--spread", type=float, default=1.0, help="noise norm around a cluster centre")
    parser.add_argument("--families", type=int, default=0, help="group cluster centres (a harder set)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-budget", default="4G")
    parser.add_argument("--factory", default=None, help="force a faiss factory for openpairs")
    parser.add_argument("--shards", type=int, default=1, help="K add tasks (openpairs)")
    parser.add_argument("--layout", default="sharded", help="sharded or merged (with --shards > 1)")
    parser.add_argument("--workers", type=int, default=1, help="local add workers (openpairs)")
    parser.add_argument("--skip-autofaiss", action="store_true")
    parser.add_argument("--skip-openpairs", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    root = (
        DATA / f"n{args.n}_d{args.dim}_c{args.clusters}"
        if not args.families
        else DATA / (f"n{args.n}_d{args.dim}_c{args.clusters}_f{args.families}")
    )
    started = time.perf_counter()
    make_data(root, args.n, args.dim, args.clusters, args.spread, args.queries, families=args.families)
    print(f"data ready in {time.perf_counter() - started:.0f}s: {root}", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    if not args.skip_openpairs:
        results["openpairs"] = run_openpairs(root, args)
    if not args.skip_autofaiss:
        results["autofaiss"] = run_autofaiss(root, args.threads, args.memory_budget)
    print(f"\n{args.n:,} x {args.dim}, {args.clusters} clusters, {args.threads} cores, {args.memory_budget}")
    header = ("tool", "index", "param", "build s", "recall@10", "p50 ms", "p99 ms")
    print("{:<10} {:<28} {:<14} {:>8} {:>9} {:>7} {:>7}".format(*header))
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:<10} error: {r['error'][-300:]}")
            continue
        print(
            f"{tool:<10} {r['index']:<28} {str(r['param'])[:14]:<14} {r['build_s']:>8.1f} {r['recall']:>9.3f}"
            f" {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
        )
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
