"""Regenerate the demo's bundled images (deterministic, photo-like) and its trimmed WAT.

Run `python -m openpairs.demo.generate [SHARED_DATA_DIR]`; the outputs are committed under
`openpairs/demo/data/`, so the demo itself never runs this.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DATA = Path(__file__).parent / "data"
# (width, height, format) of the image pool: mostly photos, a few >= 1024 px, a few PNG / WebP.
POOL = (
    (640, 480, "jpg"), (800, 600, "jpg"), (1024, 768, "jpg"), (1280, 853, "jpg"), (500, 500, "jpg"),
    (300, 400, "jpg"), (1200, 1200, "jpg"), (720, 480, "webp"), (600, 900, "jpg"), (1600, 1067, "jpg"),
    (400, 300, "png"), (960, 640, "jpg"), (256, 256, "jpg"), (1100, 480, "jpg"), (480, 720, "webp"),
    (1024, 1024, "jpg"), (350, 250, "jpg"), (880, 660, "jpg"), (1920, 1080, "jpg"), (360, 240, "png"),
    (700, 700, "jpg"), (320, 240, "jpg"), (1300, 1300, "jpg"), (820, 546, "jpg"),
)  # fmt: skip
SCENES = ("landscape", "city", "still_life", "texture")


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    img = Image.fromarray(grid, "L").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _gradient(width: int, height: int, top: tuple[int, ...], bottom: tuple[int, ...]) -> np.ndarray:
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    return np.broadcast_to(np.array(top) * (1 - t) + np.array(bottom) * t, (height, width, 3)).copy()


def _landscape(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    sky = _gradient(w, h, tuple(rng.integers(40, 140, 3)), (230, 220, 200))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    sun = int(rng.integers(w // 10, w - w // 10)), int(h * rng.uniform(0.1, 0.35))
    r = int(min(w, h) * 0.07)
    draw.ellipse((sun[0] - r, sun[1] - r, sun[0] + r, sun[1] + r), fill=(255, 236, 170))
    for layer in range(3):
        base = h * (0.45 + 0.15 * layer)
        phase, amp = rng.uniform(0, 6.28), h * rng.uniform(0.04, 0.12)
        xs = np.linspace(0, w, 40)
        ys = base + amp * np.sin(xs / w * rng.uniform(3, 9) + phase)
        shade = tuple(int(c) for c in np.array([40, 90, 50]) * (0.6 + 0.3 * layer) + rng.integers(0, 30, 3))
        draw.polygon([(0, h), *zip(xs.tolist(), ys.tolist(), strict=True), (w, h)], fill=shade)
    return img


def _city(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    img = Image.fromarray(np.clip(_gradient(w, h, (20, 30, 70), (200, 120, 90)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    x = 0
    while x < w:
        bw, bh = int(rng.integers(w // 14, w // 6)), int(h * rng.uniform(0.3, 0.8))
        grey = int(rng.integers(30, 90))
        draw.rectangle((x, h - bh, x + bw, h), fill=(grey, grey, grey + 10))
        for wy in range(h - bh + 8, h - 8, 14):
            for wx in range(x + 5, x + bw - 8, 11):
                if rng.random() < 0.4:
                    draw.rectangle((wx, wy, wx + 5, wy + 7), fill=(250, 220, 120))
        x += bw + int(rng.integers(2, 10))
    return img


def _still_life(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    wall = _gradient(w, h, tuple(rng.integers(150, 230, 3)), tuple(rng.integers(60, 120, 3)))
    img = Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, int(h * 0.65), w, h), fill=tuple(int(c) for c in rng.integers(80, 160, 3)))
    for _ in range(int(rng.integers(3, 7))):
        cx, cy, r = (
            int(rng.integers(0, w)),
            int(h * rng.uniform(0.45, 0.75)),
            int(min(w, h) * rng.uniform(0.05, 0.15)),
        )
        color = tuple(int(c) for c in rng.integers(40, 255, 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color, outline=(30, 30, 30))
    return img.filter(ImageFilter.GaussianBlur(1.2))


def _texture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    noise = [_smooth_noise(rng, w, h, int(rng.integers(4, 12))) for _ in range(3)]
    fine = _smooth_noise(rng, w, h, 48)
    arr = np.stack([n * 200 + fine * 55 for n in noise], axis=-1)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_image(index: int, width: int, height: int) -> Image.Image:
    """Pool image `index`: a seeded scene of the given size."""
    rng = np.random.default_rng(1000 + index)
    scene = SCENES[index % len(SCENES)]
    draw = {"landscape": _landscape, "city": _city, "still_life": _still_life, "texture": _texture}[scene]
    arr = np.asarray(draw(rng, width, height), dtype=np.float32)
    grain = rng.normal(0, 5, (height, width, 1)).astype(np.float32)  # film grain, as in a photo
    return Image.fromarray(np.clip(arr + grain, 0, 255).astype(np.uint8))


def encode(img: Image.Image, fmt: str) -> bytes:
    """Encode without timestamps or other varying metadata."""
    buffer = io.BytesIO()
    if fmt == "jpg":
        img.save(buffer, "JPEG", quality=78, optimize=True)
    elif fmt == "webp":
        img.save(buffer, "WEBP", quality=75, method=4)
    else:
        img.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def pool_name(index: int, width: int, height: int, fmt: str) -> str:
    """File name of pool image `index`."""
    return f"{index:02d}-{SCENES[index % len(SCENES)]}-{width}x{height}.{fmt}"


def special_images() -> dict[str, bytes]:
    """The broken and tiny files the mini web serves for its drop buckets."""
    tiny = encode(make_image(90, 48, 36), "jpg")
    full = encode(make_image(91, 640, 480), "jpg")
    return {"special/tiny-48x36.jpg": tiny, "special/truncated-640x480.jpg": full[: len(full) // 3]}


def write_images(target: Path = DATA / "images") -> int:
    """Write the pool and the special images; returns the total bytes."""
    total = 0
    for index, (width, height, fmt) in enumerate(POOL):
        data = encode(make_image(index, width, height), fmt)
        path = target / pool_name(index, width, height, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    for name, data in special_images().items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
        total += len(data)
    return total


def _gzip_members(data: bytes) -> list[bytes]:
    """Split a multi-member gzip file into its members (compressed bytes, unchanged)."""
    members, offset = [], 0
    while offset < len(data):
        inflater = zlib.decompressobj(wbits=31)
        inflater.decompress(data[offset:])
        end = len(data) - len(inflater.unused_data)
        members.append(data[offset:end])
        offset = end
    return members


def _sha1(block: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(block).digest()).decode()


def trim_record(record: bytes, keep_images: int) -> bytes:
    """A WAT metadata record with only its first `keep_images` IMG links (headers recomputed)."""
    head, _, rest = record.partition(b"\r\n\r\n")
    payload = json.loads(rest.strip())
    meta = payload["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
    kept, images = [], 0
    for link in meta["Links"]:
        if link.get("path") == "IMG@/src":
            images += 1
            if images > keep_images:
                continue
        kept.append(link)
    meta["Links"] = kept
    block = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    lines = []
    for line in head.split(b"\r\n"):
        name = line.split(b":", 1)[0]
        if name == b"Content-Length":
            line = b"Content-Length: %d" % len(block)
        elif name in (b"WARC-Block-Digest", b"WARC-Payload-Digest"):
            line = name + b": " + _sha1(block).encode()
        lines.append(line)
    return b"\r\n".join(lines) + b"\r\n\r\n" + block + b"\r\n\r\n"


def trim_wat(source: Path, target: Path, page: str, keep_images: int) -> None:
    """Copy a gzip-per-record WAT, cutting the IMG links of the one record whose target is `page`."""
    out = []
    for member in _gzip_members(source.read_bytes()):
        record = zlib.decompress(member, wbits=31)
        if f"WARC-Target-URI: {page}\r\n".encode() in record:
            out.append(_gzip(trim_record(record, keep_images)))
        else:
            out.append(member)
    target.write_bytes(b"".join(out))


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


REAL_WAT = "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wat"
GALLERY = "http://0pointer.de/photos/?gallery=Thailand%202011-01&photo=726&show_thumbs=yes&exif_style="
GALLERY_IMAGES = 220


def main(shared: str = "/work/shared/data/commoncrawl") -> None:
    """Rebuild everything under openpairs/demo/data from the shared real Common Crawl samples."""
    root = Path(shared)
    wat = DATA / "wat"
    wat.mkdir(parents=True, exist_ok=True)
    real = root / "cc-main-2014-35-eugeneware" / REAL_WAT
    (wat / real.name).write_bytes(real.read_bytes())
    whirlwind = root / "cc-main-2024-22-whirlwind" / "whirlwind.warc.wat.gz"
    (wat / whirlwind.name).write_bytes(whirlwind.read_bytes())
    derived = root / "derived" / "derived-from-real-warc-html.warc.wat.gz"
    trim_wat(derived, wat / "derived-demo.warc.wat.gz", GALLERY, GALLERY_IMAGES)
    print(f"images: {write_images()} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
