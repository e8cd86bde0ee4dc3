"""Read one WAT JSON payload: the page URL, its base, its CC licence and its `IMG@/src` links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import orjson

RESPONSE_MARK = b'"WARC-Type":"response"'
IMG_MARK = b'"IMG@/src"'
LICENSE_MARK = "creativecommons.org/licenses/"
NO_LICENSE = "?"


class BadRecord(Exception):
    """A WAT payload that is not the JSON structure Common Crawl writes (invalid JSON, wrong types)."""


@dataclass(frozen=True)
class Page:
    """What one HTML response contributes: its URL, the base for relative links, licence, IMG links."""

    url: str
    base: str
    license: str
    links_total: int
    images: list[dict[str, Any]]


def is_response(payload: bytes) -> bool:
    """Cheap check, before any JSON parsing, that the payload describes an HTTP response capture."""
    return RESPONSE_MARK in payload or b'"WARC-Type": "response"' in payload


def read_page(payload: bytes, target_uri: str) -> Page | None:
    """The page of a response payload, or None when it has no HTML links; BadRecord when malformed."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"invalid JSON: {exc}") from None
    envelope = _dict(_dict(data, "root").get("Envelope"), "Envelope")
    header = _dict(envelope.get("WARC-Header-Metadata", {}), "WARC-Header-Metadata")
    html = (
        _dict(envelope.get("Payload-Metadata", {}), "Payload-Metadata")
        .get("HTTP-Response-Metadata", {})
        .get("HTML-Metadata")
    )
    if html is None:
        return None
    html = _dict(html, "HTML-Metadata")
    links = html.get("Links", [])
    if not isinstance(links, list):
        raise BadRecord(f"Links is {type(links).__name__}, not a list")
    page_url = header.get("WARC-Target-URI") or target_uri
    if not isinstance(page_url, str):
        raise BadRecord("WARC-Target-URI is not a string")
    base = _dict(html.get("Head", {}), "Head").get("Base")
    base_url = urljoin(page_url, base) if isinstance(base, str) and base.strip() else page_url
    licence = find_license(links, payload) if LICENSE_MARK.encode() in payload else NO_LICENSE
    try:
        images = [link for link in links if link.get("path") == "IMG@/src"]
    except AttributeError:  # a link that is not an object
        images = [link for link in links if isinstance(link, dict) and link.get("path") == "IMG@/src"]
    return Page(page_url, base_url, licence, len(links), images)


def find_license(links: list[Any], payload: bytes = b"") -> str:
    """The URL of the first link whose URL contains creativecommons.org/licenses/, else '?'."""
    start = payload.find(b'"Links":[')
    mark = payload.find(LICENSE_MARK.encode(), start) if start >= 0 else -1
    if mark >= 0:  # links are serialised in order: the first mark is the first licence link if it is a url
        opening = payload.rfind(b'"', start, mark)
        closing = payload.find(b'"', mark)
        if payload[opening - 6 : opening] == b'"url":' and b"\\" not in payload[opening:closing]:
            return payload[opening + 1 : closing].decode("utf-8", "replace").strip()
    for link in links:
        if isinstance(link, dict):
            url = link.get("url")
            if isinstance(url, str) and LICENSE_MARK in url:
                return url.strip()
    return NO_LICENSE


def _dict(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{name} is {type(value).__name__}, not an object")
    return value
