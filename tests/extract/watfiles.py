"""Build WAT test inputs from the real Common Crawl payloads in ../shared/data/commoncrawl."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import io
import json
import pathlib
from types import ModuleType
from typing import Any

# ../shared beside the checkout (a git worktree sits one level deeper: the nearest ancestor's wins)
_SHARED = [parent / "shared" / "data" / "commoncrawl" for parent in pathlib.Path(__file__).resolve().parents]
CC = next((folder for folder in _SHARED if folder.is_dir()), _SHARED[3])
WAT_2014 = (
    CC / "cc-main-2014-35-eugeneware" / "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wat"
)
WHIRLWIND = CC / "cc-main-2024-22-whirlwind" / "whirlwind.warc.wat.gz"
FRAGMENT_1 = CC / "cc-main-2019-35-pycommoncrawl-fragments" / "file1.warc.wat.gz"
FRAGMENT_0 = CC / "cc-main-2019-35-pycommoncrawl-fragments" / "file0.warc.wat.gz"
DERIVED = CC / "derived" / "derived-from-real-warc-html.warc.wat.gz"
ALL_WATS = sorted(CC.rglob("*.wat*"))


def real_payloads(path: pathlib.Path | str = DERIVED) -> list[dict[str, Any]]:
    """The response payloads (with HTML links) of a WAT (the shared derived one by default), as dicts."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as handle:
        raw = handle.read()
    found = []
    for line in raw.split(b"\n"):
        line = line.strip()
        if line.startswith(b"{") and b'"response"' in line:
            found.append(json.loads(line))
    return found


def member(body: bytes, target: str = "http://example.com/") -> bytes:
    """One WARC metadata record as its own gzip member, as Common Crawl writes WAT."""
    head = (
        "WARC/1.0\r\nWARC-Type: metadata\r\n"
        f"WARC-Target-URI: {target}\r\n"
        "WARC-Date: 2024-05-18T00:00:00Z\r\n"
        "WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000000>\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(head + body + b"\r\n\r\n")
    return buf.getvalue()


def payload_member(payload: dict[str, Any]) -> bytes:
    """A gzip member holding `payload` as JSON."""
    target = payload["Envelope"]["WARC-Header-Metadata"].get("WARC-Target-URI", "")
    return member(json.dumps(payload, separators=(",", ":")).encode(), target)


def corrupt(gzip_member: bytes) -> bytes:
    """The same member with its deflate stream damaged in the middle."""
    middle = len(gzip_member) // 2
    return (
        gzip_member[:middle]
        + bytes(b ^ 0x5A for b in gzip_member[middle : middle + 40])
        + gzip_member[middle + 40 :]
    )


def _make_wat() -> ModuleType:
    """../shared/bench/make_wat.py, the benchmark WAT generator (standard library only)."""
    spec = importlib.util.spec_from_file_location("make_wat", CC.parents[1] / "bench" / "make_wat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meta_page(payload: dict[str, Any], replica: int, metas: Any) -> dict[str, Any]:
    """A copy of a real payload as replica `replica` (its own page host and image URLs, as make_wat.py
    writes them) whose Head.Metas are `metas`."""
    page: dict[str, Any] = _make_wat().mutate(copy.deepcopy(payload), replica, False)
    html = page["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
    html.setdefault("Head", {})["Metas"] = metas
    return page
