"""Read one WAT JSON payload: the page URL, its base, its CC licence, its meta opt-outs and `IMG@/src` links.

The payload is decoded with msgspec into the few fields we use (everything else is validated and skipped,
which is most of the cost saved); a payload whose types differ from what Common Crawl writes is decoded
again generically, so the odd record gets the same answer either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from openpairs.cc.pagemeta import NO_SIGNALS, Meta, PageSignals, meta_names, page_signals
from openpairs.cc.resolve import join_url

RESPONSE_MARK = b'"WARC-Type":"response"'
LICENSE_MARK = "creativecommons.org/licenses/"
_LICENSE_BYTES = LICENSE_MARK.encode()
NO_LICENSE = "?"
IMG_PATH = "IMG@/src"
OUR_METAS = meta_names(["openpairs"])  # robots + our name; the extract stage adds the user's token


class BadRecord(Exception):
    """A WAT payload that is not the JSON structure Common Crawl writes (invalid JSON, wrong types)."""


class Link(msgspec.Struct):
    """One entry of HTML-Metadata.Links (any JSON type per field: the rules judge the values)."""

    path: Any = None
    url: Any = None
    alt: Any = None


class _Head(msgspec.Struct):
    Base: Any = None
    Metas: list[Meta] = msgspec.field(default_factory=list)


class _Html(msgspec.Struct):
    Head: _Head = msgspec.field(default_factory=_Head)
    Links: list[Link] = msgspec.field(default_factory=list)


class _Response(msgspec.Struct):
    html: _Html | None = msgspec.field(name="HTML-Metadata", default=None)


class _Payload(msgspec.Struct):
    response: _Response | None = msgspec.field(name="HTTP-Response-Metadata", default=None)


class _Header(msgspec.Struct):
    target_uri: Any = msgspec.field(name="WARC-Target-URI", default=None)


class _Envelope(msgspec.Struct):
    header: _Header = msgspec.field(name="WARC-Header-Metadata", default_factory=_Header)
    payload: _Payload = msgspec.field(name="Payload-Metadata", default_factory=_Payload)


class _Record(msgspec.Struct):
    Envelope: _Envelope


_DECODER = msgspec.json.Decoder(_Record)
_GENERIC = msgspec.json.Decoder()


@dataclass(slots=True)
class Page:
    """What one HTML response contributes: its URL, the base for relative links, licence, IMG links."""

    url: str
    base: str
    license: str
    links_total: int
    images: list[Link]
    signals: PageSignals = NO_SIGNALS


def is_response(payload: bytes) -> bool:
    """Cheap check, before any JSON parsing, that the payload describes an HTTP response capture."""
    return RESPONSE_MARK in payload or b'"WARC-Type": "response"' in payload


def read_page(
    payload: bytes, target_uri: Callable[[], str], metas: frozenset[str] = OUR_METAS
) -> Page | None:
    """The page of a response payload, or None when it has no HTML links; BadRecord when malformed.
    `target_uri` gives the record's WARC header URI, asked only when the JSON lacks it; `metas` are the
    meta names whose directives concern us (pagemeta.meta_names)."""
    try:
        record = _DECODER.decode(payload)
    except msgspec.ValidationError:
        record = _generic_record(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadRecord(f"invalid JSON: {exc}") from None
    response = record.Envelope.payload.response
    html = response.html if response is not None else None
    if html is None:
        return None
    page_url = record.Envelope.header.target_uri or target_uri()
    if not isinstance(page_url, str):
        raise BadRecord("WARC-Target-URI is not a string")
    base = html.Head.Base
    base_url = page_url
    if isinstance(base, str) and base.strip():  # an unparsable <base href> is ignored, as browsers do
        base_url = join_url(page_url, base) or page_url
    links = html.Links
    licence = find_license(links, payload)
    images = [link for link in links if link.path == IMG_PATH]
    signals = page_signals(html.Head.Metas, metas) if html.Head.Metas else NO_SIGNALS
    return Page(page_url, base_url, licence, len(links), images, signals)


def _generic_record(payload: bytes) -> _Record:
    """The record decoded without a schema and checked by hand (types other than Common Crawl's)."""
    try:
        data = _GENERIC.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # pragma: no cover - the typed pass saw it
        raise BadRecord(f"invalid JSON: {exc}") from None
    envelope = _dict(_dict(data, "root").get("Envelope"), "Envelope")
    header = _dict(envelope.get("WARC-Header-Metadata", {}), "WARC-Header-Metadata")
    payload_meta = _dict(envelope.get("Payload-Metadata", {}), "Payload-Metadata")
    response = _dict(payload_meta.get("HTTP-Response-Metadata", {}), "HTTP-Response-Metadata")
    html = response.get("HTML-Metadata")
    record = _Record(_Envelope(_Header(header.get("WARC-Target-URI")), _Payload(_Response(None))))
    if html is None:
        return record
    html = _dict(html, "HTML-Metadata")
    links = html.get("Links", [])
    if not isinstance(links, list):
        raise BadRecord(f"Links is {type(links).__name__}, not a list")
    head = _dict(html.get("Head", {}), "Head")
    typed = [
        Link(link.get("path"), link.get("url"), link.get("alt")) if isinstance(link, dict) else Link()
        for link in links
    ]
    record.Envelope.payload.response = _Response(
        _Html(_Head(head.get("Base"), _metas(head.get("Metas"))), typed)
    )
    return record


def _metas(value: Any) -> list[Meta]:
    """The object entries of a Head.Metas value; anything else (not a list, not objects) is ignored."""
    if not isinstance(value, list):
        return []
    return [Meta(meta.get("name"), meta.get("content")) for meta in value if isinstance(meta, dict)]


def find_license(links: list[Link], payload: bytes) -> str:
    """The URL of the first link whose URL contains creativecommons.org/licenses/, else '?'."""
    if _LICENSE_BYTES not in payload:  # nearly every page: one fast scan, nothing decoded
        return NO_LICENSE
    start = payload.find(b'"Links":[')
    mark = payload.find(_LICENSE_BYTES, start) if start >= 0 else -1
    if mark >= 0:  # links are serialised in order: the first mark is the first licence link if it is a url
        opening = payload.rfind(b'"', start, mark)
        closing = payload.find(b'"', mark)
        if payload[opening - 6 : opening] == b'"url":' and b"\\" not in payload[opening:closing]:
            return payload[opening + 1 : closing].decode("utf-8", "replace").strip()
    for link in links:
        if isinstance(link.url, str) and LICENSE_MARK in link.url:
            return str(link.url).strip()
    return NO_LICENSE


def _dict(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{name} is {type(value).__name__}, not an object")
    return value
