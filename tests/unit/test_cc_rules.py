"""URL and alt rules, the fast relative-URL resolver and the CLD3 cache, against the real data."""

from __future__ import annotations

import gzip
import json
import re
from urllib.parse import urljoin

import numpy as np
import pyarrow as pa
from yarl import URL

from openpairs.cc.language import LanguageIdentifier
from openpairs.cc.resolve import as_requested
from openpairs.cc.resolve import needs_urljoin as _needs_urljoin
from openpairs.cc.rules import CODE, ORDER, ExtractConfig, apply_rules, clean_alts
from openpairs.core.status import Status
from tests.extract.watfiles import ALL_WATS

BASES = [
    "http://0pointer.de/photos/?gallery=Australia&photo=496",
    "https://a.b/x/y.html",
    "https://a.b",
    "http://c.d/dir/",
    "HTTPS://E.F/Mixed/Case.html#frag",
    "http://[::1]:8080/v6/page",
    "http://g.h/with space/page",
    "ftp://i.j/k/",
    "http://k.l/a/./b/../c/page",
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
        "//cdn.x",
        "//cdn.x?q",
        "//",
        "///z.jpg",
        "//cdn.x/a/../b.jpg",
        "./a/./b.jpg",
        ".//x.jpg",
        "../up.jpg",
        "./here.jpg",
        "?q=1",
        "#f",
        "a/../b.jpg",
        ".",
        "./",
        "x?",
        "",
        "./?x",
        "./#f",
        "./x.",
        "a\\b.jpg",
        "x/.",
        "//?q",
        "//#f",
        "été/./x.jpg",
        "./été.jpg",
    }
    relative = [u for u in urls if not u.startswith(("http://", "https://")) and ":" not in u.split("/")[0]]
    assert len(relative) > 1000
    for base in BASES:
        zeros = np.zeros(len(relative), dtype=np.int64)
        batch = apply_rules(relative, ["an alt"] * len(relative), [base], zeros, ExtractConfig())
        joined = pa.array([_scheme_lowered(urljoin(base, u)) for u in relative])
        assert batch.url.to_pylist() == as_requested(joined, batch.codes == CODE[Status.OK]).to_pylist()


def test_urljoin_rows_found_by_byte_scan_are_those_of_the_regex() -> None:
    """The numpy byte scan picks exactly the rows this regex (its specification) matches."""
    spec = re.compile(r"(^$|^[?#]|[?#.]$|\./|\\|^//([/?#]|$))")
    urls = [*sorted(_real_strings(b"url")), "", "?", "x#", "a\\b", "//", "//h", "///", "x.", "ä./b", None]
    values = pa.array(["pad.", "/x", *urls], pa.string()).slice(2)  # an offset array, as take/filter give
    expected = [u is not None and bool(spec.search(u)) for u in urls]
    assert _needs_urljoin(values).tolist() == expected
    assert _needs_urljoin(pa.array([], pa.string())).tolist() == []


def _scheme_lowered(url: str) -> str:
    """The rules lower an http(s) scheme ('HTTPS://x' -> 'https://x'); urljoin keeps a base's as written."""
    scheme, sep, rest = url.partition("://")
    return scheme.lower() + sep + rest if scheme.lower() in ("http", "https") else url


def _rule(url: str, base: str, config: ExtractConfig, alt: str = "a fine alt") -> tuple[str, str]:
    ruled = apply_rules([url], [alt], [base], np.zeros(1, dtype=np.int64), config)
    return ruled.url[0].as_py(), str(ORDER[ruled.codes[0]])


def test_url_rules() -> None:
    keep_all = ExtractConfig(drop_extensions=(".svg", ".gif"))
    assert _rule(" HTTPS://x.org/a.jpg ", "", keep_all) == ("https://x.org/a.jpg", "ok")
    assert _rule("data:image/png;base64,xx", "http://p/", keep_all)[1] == "bad_scheme"
    assert _rule("javascript:void(0)", "http://p/", keep_all)[1] == "bad_scheme"
    assert _rule("/a/B.SVG?x=1", "http://p/", keep_all) == ("http://p/a/B.SVG?x=1", "bad_extension")
    assert _rule("a.webp", "http://p/", keep_all) == ("http://p/a.webp", "ok")
    assert _rule("a.webp", "http://p/", ExtractConfig())[1] == "bad_extension"
    assert _rule("a.jpg", "http://p/", ExtractConfig(relative_urls="drop"))[1] == "relative_url"
    assert _rule("http://x/" + "a" * 2000, "", keep_all)[1] == "url_too_long"
    assert _rule("http://x/a.jpg", "", keep_all, alt="")[1] == "no_alt"
    assert _rule("http://x/a.jpg", "", keep_all, alt=" abc\n")[1] == "alt_too_short"


def test_urls_are_written_as_requested() -> None:
    """A raw space, control or non-ASCII character is percent-encoded as the downloader requests it (urllib,
    img2dataset's fetcher, refuses the raw form); every real URL still names what the downloader fetched."""
    config = ExtractConfig()
    assert _rule("http://x.org/a b/ü.jpg", "", config) == ("http://x.org/a%20b/%C3%BC.jpg", "ok")
    assert (
        _rule("img 1.jpg", "http://g.h/with space/page", config)[0] == "http://g.h/with%20space/img%201.jpg"
    )
    assert _rule("http://x.org/a%20b.jpg?q=1", "", config)[0] == "http://x.org/a%20b.jpg?q=1"
    raw = sorted(_real_strings(b"url"))  # absolute and relative, resolved against a real page
    ruled = apply_rules(raw, ["an alt"] * len(raw), [BASES[0]], np.zeros(len(raw), dtype=np.int64), config)
    resolved = [_scheme_lowered(u.strip() if "://" in u else urljoin(BASES[0], u.strip())) for u in raw]
    kept = [(r, u) for r, u, c in zip(resolved, ruled.url.to_pylist(), ruled.codes, strict=True) if c == 0]
    assert sum(r != u for r, u in kept) > 10  # the real data has such URLs
    for before, after in kept:
        assert after.isascii() and not any(c.isspace() or c in '"<>^`{|}' for c in after)
        assert URL(after) == URL(before)


def test_non_string_fields_are_invalid_links() -> None:
    ruled = apply_rules(
        ["http://x/a.jpg", 12, "http://x/b.jpg"],
        ["fine alt", "fine alt", 5],
        [""],
        np.zeros(3, dtype=np.int64),
        ExtractConfig(),
    )
    assert [str(ORDER[c]) for c in ruled.codes] == ["ok", "invalid_link", "invalid_link"]


def test_alt_cleaning() -> None:
    config = ExtractConfig()
    cleaned = clean_alts(
        pa.array(["  a\nb\tc\r\n ", "Ã©tÃ© en France\x00\u200b", "x" * 5000]), config
    ).to_pylist()
    assert cleaned[:2] == ["a b c", "été en France"]
    assert len(cleaned[2]) == 2000


def test_cld3_cache_gives_cld3s_own_answers_on_real_alts() -> None:
    cached, plain = LanguageIdentifier(), LanguageIdentifier()
    alts = sorted(_real_strings(b"alt"))
    variants = [v for a in alts for v in (a, f"{a} 123", f"7 {a}", a.replace(" ", " 42 "))]
    assert len(variants) > 3000
    assert [cached.identify(v) for v in variants] == [plain.identify_uncached(v) for v in variants]
    assert plain.identify_uncached("Das ist ein schönes Haus am See").code == "de"
