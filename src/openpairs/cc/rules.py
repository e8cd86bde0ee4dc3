"""The per-link rules of LAION's extraction: URL checks and alt-text cleaning, all set by ExtractConfig."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urljoin, urlsplit

import ftfy

from openpairs.core.status import Status

ABSOLUTE_PREFIXES = ("http://", "https://")
SCRIPT_PREFIXES = ("data:", "javascript:", "mailto:", "about:", "blob:", "file:")
WHITESPACE = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\f": " ", "\v": " "})


@dataclass(frozen=True)
class ExtractConfig:
    """Every extraction rule; the presets set LAION-400M's and LAION-5B's values (presets.py)."""

    relative_urls: Literal["resolve", "drop"] = "resolve"
    drop_extensions: tuple[str, ...] = (".svg", ".gif", ".webp")
    max_url_length: int = 2000
    max_alt_length: int = 2000
    min_alt_length: int = 5
    fix_text: bool = True
    language: Literal["cld3", "off"] = "cld3"
    english_only: bool = True


def check_url(raw: str, base: str, config: ExtractConfig) -> tuple[str, str]:
    """(absolute URL, status): `ok` or why the link is dropped."""
    url = raw.strip()
    if not url.startswith(ABSOLUTE_PREFIXES):
        lowered = url[:16].lower()
        if lowered.startswith(ABSOLUTE_PREFIXES):
            url = url[: lowered.index(":")].lower() + url[lowered.index(":") :]
        elif lowered.startswith(SCRIPT_PREFIXES) or (":" in lowered.split("/", 1)[0]):
            return url, Status.BAD_SCHEME
        elif config.relative_urls == "drop" or not base:
            return url, Status.RELATIVE_URL
        else:
            url = resolve(url, base)
            if not url.startswith(ABSOLUTE_PREFIXES):
                return url, Status.BAD_SCHEME
    if len(url) > config.max_url_length:
        return url, Status.URL_TOO_LONG
    if config.drop_extensions and _path_of(url).lower().endswith(config.drop_extensions):
        return url, Status.BAD_EXTENSION
    return url, Status.OK


@lru_cache(maxsize=64)
def _base_parts(base: str) -> tuple[str, str, str]:
    """(scheme, origin, directory) of a base URL, e.g. ('http', 'http://a.b', 'http://a.b/x/')."""
    parts = urlsplit(base)
    directory = parts.path.rsplit("/", 1)[0] + "/" if "/" in parts.path else "/"
    origin = f"{parts.scheme}://{parts.netloc}"
    return parts.scheme, origin, origin + directory


def resolve(url: str, base: str) -> str:
    """urljoin(base, url), with fast paths for the common relative forms (same results)."""
    scheme, origin, directory = _base_parts(base)
    simple = url.removeprefix("./") if url.startswith("./") and url[2:3] not in ("", ".", "/") else url
    if (
        not simple
        or not scheme
        or simple[0] in "?#"
        or simple[-1] in "?#."
        or "./" in simple
        or "\\" in simple
        or simple.startswith("//")
    ):
        return urljoin(base, url)
    if simple.startswith("/"):
        return origin + simple
    return directory + simple


def _path_of(url: str) -> str:
    end = len(url)
    for mark in ("?", "#"):
        found = url.find(mark)
        if 0 <= found < end:
            end = found
    return url[:end]


def clean_alt(alt: str, config: ExtractConfig) -> str:
    """Alt text as LAION kept it: mojibake fixed, whitespace flattened, non-printables gone, stripped, cut."""
    if config.fix_text and not alt.isascii():
        alt = ftfy.fix_text(alt, normalization="NFC")
    alt = alt.translate(WHITESPACE)
    if not alt.isprintable():
        alt = "".join(ch for ch in alt if ch.isprintable() or unicodedata.category(ch) == "Zs")
    return alt.strip()[: config.max_alt_length]
