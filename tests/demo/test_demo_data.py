"""The bundled demo data: real WATs that parse, photo-like images of the documented sizes, reproducible."""

from __future__ import annotations

import hashlib
import io
import re

from PIL import Image

import openpairs.demo.generate as generate
from openpairs.cc.wat import iter_payloads
from openpairs.core.stats import ShardStats
from openpairs.demo import data_dir, wat_files
from openpairs.demo.miniweb import Files


def test_wat_files_match_provenance_and_parse() -> None:
    files = wat_files()
    assert [f.rsplit("/", 1)[-1] for f in files] == [
        "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wat",
        "derived-demo.warc.wat.gz",
        "whirlwind.warc.wat.gz",
    ]
    provenance = (data_dir() / "PROVENANCE.md").read_text()
    sums = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  wat/(\S+)$", provenance, re.M)
    )
    payloads = 0
    for path in files:
        with open(path, "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == sums[path.rsplit("/", 1)[-1]]
        stats = ShardStats(stage="extract")
        with open(path, "rb") as handle:
            payloads += len(list(iter_payloads(handle, stats)))
        assert not stats.errors
    assert payloads == 8 + 21 + 1


def test_trimmed_gallery_has_the_documented_links() -> None:
    import gzip
    import json

    with gzip.open(data_dir() / "wat" / "derived-demo.warc.wat.gz", "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.startswith("{")]
    links = []
    for record in records:
        response = record["Envelope"]["Payload-Metadata"].get("HTTP-Response-Metadata", {})
        links += response.get("HTML-Metadata", {}).get("Links", [])
    alts = [x for x in links if x.get("path") == "IMG@/src" and len(x.get("alt", "").strip()) >= 5]
    assert len(alts) == 258


def test_images_are_real_and_varied() -> None:
    files = Files()
    sizes = []
    for name, data in files.pool:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            sizes.append(img.size)
        assert len(data) > 5000, name
    assert len(sizes) == len(generate.POOL) == 24
    assert sum(max(size) >= 1024 for size in sizes) == 8
    assert sum(min(size) < 512 for size in sizes) >= 5
    assert len(files.special("tiny-48x36.jpg")) < 5000
    total = sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file())
    assert total < 4_000_000


def test_images_regenerate_byte_for_byte() -> None:
    index = 12
    width, height, fmt = generate.POOL[index]
    committed = (data_dir() / "images" / generate.pool_name(index, width, height, fmt)).read_bytes()
    assert generate.encode(generate.make_image(index, width, height), fmt) == committed
