"""Micro-benchmark: decode + resize (256, border) + encode (jpg q95) of one image, single core.

Methods:
    openpairs  openpairs.image.process_image (header checks, DCT draft decoding, BOX downscale)
    naive      Image.open().convert("RGB") + exif_transpose + resize(LANCZOS) + pad + save
    opencv     img2dataset 1.47's path: cv2.imdecode(UNCHANGED) + resize(INTER_AREA) + pad + imencode

The corpus (web-like JPEG/PNG/WebP, 320-4000 px) is generated once with Pillow into --corpus-dir.
The opencv method needs cv2 (our venv has it for WebP; img2dataset's venv has the same 4.14.0):

    .venv/bin/python benchmarks/image_decode.py
    ~/.cache/openpairs-bench/peers/img2dataset-venv/bin/python benchmarks/image_decode.py --methods opencv
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(os.environ.get("DATA", Path.home() / ".cache/openpairs-bench/data")) / "image_decode"
SIZES = [(320, 240), (500, 375), (640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200)]
SIZES += [(2000, 1500), (3000, 2000), (4000, 3000)]
SIZE, QUALITY = 256, 95


def make_corpus(out: Path, per_size: int) -> list[Path]:
    """Write the deterministic corpus (8 JPEG : 1 PNG : 1 WebP per size) once; return its files."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.images import photo

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for w, h in SIZES:
        for i in range(per_size):
            fmt, ext = {8: ("PNG", "png"), 9: ("WEBP", "webp")}.get(i % 10, ("JPEG", "jpg"))
            path = out / f"{w}x{h}_{i}.{ext}"
            if not path.exists():
                photo(w, h, seed=i).save(path, fmt, quality=88)
            files.append(path)
    return files


def openpairs_method() -> Callable[[bytes], bytes]:
    """process_image with img2dataset's default output settings."""
    sys.path.insert(0, str(ROOT / "src"))
    from openpairs.image import ImageConfig, process_image

    config = ImageConfig(image_size=SIZE, resize_mode="border", encode_quality=QUALITY, min_bytes=0)
    return lambda body: process_image(body, config).data


def naive_method() -> Callable[[bytes], bytes]:
    """The obvious Pillow path: full decode, convert, resize, pad, encode."""
    from PIL import Image, ImageOps

    def run(body: bytes) -> bytes:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(body))).convert("RGB")
        scale = SIZE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
        canvas.paste(image, ((SIZE - size[0]) // 2, (SIZE - size[1]) // 2))
        out = io.BytesIO()
        canvas.save(out, "JPEG", quality=QUALITY)
        return out.getvalue()

    return run


def opencv_method() -> Callable[[bytes], bytes]:
    """img2dataset's OpenCV path (imdecode UNCHANGED, INTER_AREA, white border, imencode)."""
    import cv2
    import numpy as np

    cv2.setNumThreads(1)

    def run(body: bytes) -> bytes:
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
        h, w = image.shape[:2]
        scale = SIZE / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
        bottom, right = SIZE - size[1] - top, SIZE - size[0] - left
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=[255] * 3)
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1].tobytes()

    return run


METHODS = {"openpairs": openpairs_method, "naive": naive_method, "opencv": opencv_method}


def measure(run: Callable[[bytes], bytes], bodies: list[bytes], repeats: int) -> float:
    """Best-of-`repeats` seconds to process every body once."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for body in bodies:
            run(body)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    """Generate the corpus if needed, time each method, print a table and JSON lines."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--corpus-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--per-size", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="openpairs,naive")
    args = parser.parse_args()
    files = sorted(args.corpus_dir.glob("*x*_*.*"))
    if len(files) < len(SIZES) * args.per_size:
        files = make_corpus(args.corpus_dir, args.per_size)
    groups = {"all": files, "jpeg": [f for f in files if f.suffix == ".jpg"]}
    groups["jpeg>=1600px"] = [f for f in groups["jpeg"] if int(f.name.split("x")[0]) >= 1600]
    print(f"{'method':<10} {'group':<13} {'images':>6} {'CPU-ms/img':>10} {'img/s/core':>10}")
    for name in args.methods.split(","):
        run = METHODS[name]()
        for group, paths in groups.items():
            bodies = [p.read_bytes() for p in paths]
            seconds = measure(run, bodies, args.repeats)
            ms = 1000 * seconds / len(bodies)
            print(f"{name:<10} {group:<13} {len(bodies):>6} {ms:>10.2f} {1000 / ms:>10.1f}")
            print(json.dumps({"method": name, "group": group, "n": len(bodies), "cpu_ms": round(ms, 3)}))


if __name__ == "__main__":
    main()
