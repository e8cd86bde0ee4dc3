"""URL and alt rules, the fast relative-URL resolver and the CLD3 cache, against the real data."""

from __future__ import annotations

import gzip
import json
import re
from urllib.parse import urljoin

from openpairs.cc.language import LanguageIdentifier
from openpairs.cc.rules import ExtractConfig, check_url, clean_alt, resolve
from tests.extract.watfiles import ALL_WATS

BASES = [
    "http://0pointer.de/photos/?gallery=Australia&photo=496",
    "https://a.b/x/y.html",
    "https://a.b",
    "http://c.d/dir/",
]


def _real_strings(field: bytes) -> set[str]:
    found: set[str] = set()
    for path in ALL_WATS:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for match in re.finditer(rb'"' + field + rb'":"((?:[^"\\]|\\.)*)"', raw):
            try:
                found.add(json.loads(b'"' + match.group(1) + b'"'))
            except ValueError:
                continue
    return found


def test_fast_resolve_equals_urljoin_on_every_real_relative_url() -> None:
    urls = {u.strip() for u in _real_strings(b"url")}
    urls |= {
        "a b.jpg",
        "//cdn.x/y.jpg",
        "../up.jpg",
        "./here.jpg",
        "?q=1",
        "#f",
        "a/../b.jpg",
        ".",
        "./",
        "x?",
    }
    relative = [u for u in urls if not u.startswith(("http://", "https://")) and ":" not in u.split("/")[0]]
    assert len(relative) > 1000
    for base in BASES:
        assert [resolve(u, base) for u in relative] == [urljoin(base, u) for u in relative]


def test_url_rules() -> None:
    keep_all = ExtractConfig(drop_extensions=(".svg", ".gif"))
    assert check_url(" HTTPS://x.org/a.jpg ", "", keep_all) == ("https://x.org/a.jpg", "ok")
    assert check_url("data:image/png;base64,xx", "http://p/", keep_all)[1] == "bad_scheme"
    assert check_url("javascript:void(0)", "http://p/", keep_all)[1] == "bad_scheme"
    assert check_url("/a/B.SVG?x=1", "http://p/", keep_all) == ("http://p/a/B.SVG?x=1", "bad_extension")
    assert check_url("a.webp", "http://p/", keep_all) == ("http://p/a.webp", "ok")
    assert check_url("a.webp", "http://p/", ExtractConfig())[1] == "bad_extension"
    assert check_url("a.jpg", "http://p/", ExtractConfig(relative_urls="drop"))[1] == "relative_url"
    assert check_url("http://x/" + "a" * 2000, "", keep_all)[1] == "url_too_long"


def test_alt_cleaning() -> None:
    config = ExtractConfig()
    assert clean_alt("  a\nb\tc\r\n ", config) == "a b c"
    assert clean_alt("Ã©tÃ© en France\x00\u200b", config) == "été en France"
    assert len(clean_alt("x" * 5000, config)) == 2000


def test_cld3_cache_gives_cld3s_own_answers_on_real_alts() -> None:
    cached, plain = LanguageIdentifier(), LanguageIdentifier()
    alts = sorted(_real_strings(b"alt"))
    variants = [v for a in alts for v in (a, f"{a} 123", f"7 {a}", a.replace(" ", " 42 "))]
    assert len(variants) > 3000
    assert [cached.identify(v) for v in variants] == [plain.identify_uncached(v) for v in variants]
    assert plain.identify_uncached("Das ist ein schönes Haus am See").code == "de"
