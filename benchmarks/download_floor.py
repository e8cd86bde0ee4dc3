"""The CPU floor of the download benchmark: the cheapest decode of each corpus image vs our whole pipeline.

For every "ok" image of the benchmark corpus (or --limit of them), single core, best of --repeat:
    decode  the cheapest decode we know for its format, at the size we need: Pillow with DCT scaling
            (draft) for JPEG, Pillow or OpenCV for PNG, libwebp's scaled decoding for WebP (every
            method is tried on every image, the fastest kept)
    ours    openpairs' process_image (header checks, decode, resize, pad, jpg q95 encode, sha256)
Prints ms per image per format, and ms per input sample (the corpus also has rows that fail before any
decode). With img2dataset's CPU-ms/sample (from its last benchmark run, or --i2d-cpu-ms), it says how
many samples/s two cores could reach if decoding were the only work, next to 3x img2dataset's rate.

With --ceiling it also measures, on the wall clock, two worker processes doing nothing but the download
stage's conversion (`process_bounded`) of every body the corpus serves (all 10,000 rows; no network, no
server, no tar): an upper bound on what the whole download can reach on this machine; then the same with
only the cheapest decode of each body (no resize, encode or hash): a bound on any downloader's.

    .venv/bin/python benchmarks/download_floor.py --limit 3000 --ceiling
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from openpairs.image import ImageConfig, process_image, webp
from openpairs.image.geometry import plan

DATA = Path(os.environ.get("DATA", Path.home() / ".cache/openpairs-bench/data"))
CONFIG = ImageConfig(
    image_size=256, resize_mode="border", encode_format="jpg", encode_quality=95, min_bytes=0
)


def pillow_decode(body: bytes) -> None:
    """Pillow, with DCT scaling to the planned size for JPEG."""
    image = Image.open(io.BytesIO(body))
    todo = plan(image.width, image.height, CONFIG)
    if image.format == "JPEG" and todo.resize:
        image.draft(None, todo.resize)
    image.load()


def opencv_decode(body: bytes) -> None:
    """OpenCV into BGR (JPEG: libjpeg-turbo scaling by 2/4/8 when the target allows it)."""
    array = np.frombuffer(body, np.uint8)
    cv2.imdecode(array, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)


def libwebp_decode(body: bytes) -> None:
    """libwebp's scaled decoding straight to the planned size (WebP only; others: Pillow)."""
    image = Image.open(io.BytesIO(body))
    todo = plan(image.width, image.height, CONFIG)
    if image.format != "WEBP" or not todo.resize or webp.decode_scaled(body, *todo.resize) is None:
        pillow_decode(body)


def ours(body: bytes) -> None:
    """The whole openpairs conversion."""
    process_image(body, CONFIG)


def read_manifest() -> list[dict[str, Any]]:
    """The corpus's manifest: one dict per URL (kind, format, file, ...)."""
    return pq.read_table(DATA / "corpus" / "manifest_10000.parquet").to_pylist()  # type: ignore[no-any-return]


def best_ms(fn: Callable[[bytes], None], body: bytes, repeat: int) -> float:
    """Fastest of `repeat` runs, in CPU milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn(body)
        best = min(best, time.process_time() - started)
    return best * 1000


def measure(limit: int, repeat: int) -> tuple[dict[str, dict[str, float]], int, int]:
    """Per format: count and total ms of each method; plus the corpus's ok and total row counts."""
    corpus = DATA / "corpus"
    manifest = read_manifest()
    rows = [r for r in manifest if r["kind"] == "ok"]
    step = max(1, len(rows) // limit) if limit else 1
    cv2.setNumThreads(1)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows[::step]:
        body = (corpus / "files" / row["file"]).read_bytes()
        fmt = row["format"]
        cell = totals[fmt]
        cell["n"] += 1
        pil, ocv = best_ms(pillow_decode, body, repeat), best_ms(opencv_decode, body, repeat)
        scaled = best_ms(libwebp_decode, body, repeat) if fmt == "webp" else pil
        cell["pillow"] += pil
        cell["opencv"] += ocv
        cell["libwebp"] += scaled
        cell["decode"] += min(pil, ocv, scaled)
        cell["ours"] += best_ms(ours, body, repeat)
    return totals, len(rows), len(manifest)


def convert_all(paths: list[str]) -> int:
    """Convert every body in `paths` as the download stage does (rejections count too); how many."""
    from openpairs.image import ImageRejected
    from openpairs.stages.download_memory import process_bounded, tune_malloc

    tune_malloc()  # the download workers' allocator settings
    for path in paths:
        with contextlib.suppress(ImageRejected):
            process_bounded(Path(path).read_bytes(), CONFIG)
    return len(paths)


def cheapest_decode(body: bytes) -> None:
    """The cheapest decoder for the body's format, at the size we need: OpenCV for PNG, libwebp's
    scaled decoding for WebP, Pillow (DCT-reduced) for the rest."""
    if body.startswith(b"\x89PNG"):
        opencv_decode(body)
    else:
        libwebp_decode(body)  # Pillow (DCT-reduced for JPEG) for anything but WebP


def decode_all(paths: list[str]) -> int:
    """Only decode every body in `paths` with the cheapest decoder (failures count too); how many."""
    cv2.setNumThreads(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # truncated bodies are expected
    for path in paths:
        with contextlib.suppress(Exception):
            cheapest_decode(Path(path).read_bytes())
    return len(paths)


def ceiling(work: Callable[[list[str]], int], workers: int = 2) -> tuple[float, int]:
    """Rows/s of `workers` processes doing `work` on every body of the corpus's rows, and the body count."""
    corpus = DATA / "corpus"
    manifest = read_manifest()
    paths = [
        str(corpus / "files" / r["file"]) for r in manifest if r["file"] and not r["kind"].startswith("noai")
    ]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(work, [paths[:50]] * workers))  # imports and first calls, not timed
        started = time.perf_counter()
        converted = sum(pool.map(work, [paths[i::workers] for i in range(workers)]))
        seconds = time.perf_counter() - started
    assert converted == len(paths)
    return len(manifest) / seconds, len(paths)


def i2d_cpu_ms(override: float) -> tuple[float, float]:
    """img2dataset's CPU-ms/sample and samples/s at 0 ms from its last benchmark run (or the override)."""
    results = DATA / "runs" / "bench_i2d_n10000_lat0.jsonl"
    if not results.exists():
        return override, 0.0
    summary = json.loads(results.read_text().strip().splitlines()[-1])
    cpu = (summary.get("cpu_user_s") or 0) + (summary.get("cpu_sys_s") or 0)
    rate = 10_000 / summary["wall_s"]
    return override or 1000 * cpu / 10_000, rate


def main() -> None:
    """Measure and print the table and the floor."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=3000, help="images to measure, spread over the corpus")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--i2d-cpu-ms", type=float, default=0.0)
    parser.add_argument("--ceiling", action="store_true", help="also time 2 processes converting it all")
    args = parser.parse_args()
    totals, ok_rows, all_rows = measure(args.limit, args.repeat)
    print(
        f"{'format':8} {'n':>5} {'pillow':>8} {'opencv':>8} {'libwebp':>8} {'cheapest':>9} {'ours':>7}  (ms/image)"
    )
    per_sample = defaultdict(float)
    for fmt, cell in sorted(totals.items()):
        n = cell["n"]
        print(f"{fmt:8} {int(n):5d} {cell['pillow'] / n:8.2f} {cell['opencv'] / n:8.2f} {cell['libwebp'] / n:8.2f} "
              f"{cell['decode'] / n:9.2f} {cell['ours'] / n:7.2f}")  # fmt: skip
    measured = sum(cell["n"] for cell in totals.values())
    for key in ("decode", "ours"):
        per_image = sum(cell[key] for cell in totals.values()) / measured
        per_sample[key] = per_image * ok_rows / all_rows
    cpu, rate = i2d_cpu_ms(args.i2d_cpu_ms)
    print(f"per input sample ({ok_rows}/{all_rows} rows are images): cheapest decode "
          f"{per_sample['decode']:.2f} ms, our conversion {per_sample['ours']:.2f} ms")  # fmt: skip
    floor_rate = 2000 / per_sample["decode"]
    print(f"two cores doing nothing but the cheapest decodes: {floor_rate:.0f} samples/s")
    if cpu:
        print(f"img2dataset: {cpu:.2f} CPU-ms/sample, {rate:.0f} samples/s at 0 ms; 3x = {3 * rate:.0f}/s, "
              f"i.e. <= {2000 / (3 * rate) if rate else 0:.2f} CPU-ms/sample on 2 busy cores")  # fmt: skip

    if args.ceiling:
        for label, work in (("the stage's conversion", convert_all), ("the cheapest decodes", decode_all)):
            rows_per_s, bodies = ceiling(work)
            ratio = f" = {rows_per_s / rate:.2f}x img2dataset's end-to-end rate" if rate else ""
            print(f"ceiling: 2 processes doing nothing but {label} of all {bodies} bodies of the "
                  f"corpus's 10,000 rows: {rows_per_s:.0f} rows/s{ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
