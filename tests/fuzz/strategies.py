"""Hypothesis strategies for hostile web data: URLs, hosts, ports, IP literals, alts and WAT records."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text that breaks parsers: controls, separators, surrogate-free unicode, the characters URLs care about.
NASTY_CHARS = st.sampled_from(
    list(" \t\r\n\x00\x0b\x0c\x7f\u0085\u00a0\u2028\u2029\u200b\ufeff\ufffd/\\?#@:;%[].,'\"<>`{}|^~")
    + list("éü日本\U0001f600İßﬀ\u0301")
)
NASTY_PIECES = st.sampled_from(
    ["%2e", "%00", "%zz", "%", "..", "./", "../", ".//", "//", "\\\\", "?#", "%E2%80"]
)
NASTY_TEXT = st.lists(st.text(NASTY_CHARS, max_size=3) | NASTY_PIECES, max_size=6).map("".join)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | NASTY_TEXT
SHORT_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)

SCHEMES = st.sampled_from(
    [
        "http",
        "https",
        "HTTP",
        "HtTpS",
        "ftp",
        "javascript",
        "data",
        "mailto",
        "file",
        "h\u0442tp",
        "",
        "1http",
    ]
)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda p: ".".join(map(str, p)))
ODD_IPV4 = st.sampled_from(
    ["0177.0.0.1", "0x7f.1", "2130706433", "127.1", "0", "0x", "256.1.1.1", "1.2.3.4.5", "00000127.0.0.1",
     "169.254.169.254", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "0.0.0.0", "4294967296", "1e3", "-1"]
)  # fmt: skip
IPV6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]") | st.sampled_from(
    ["[::1]", "[fe80::1%25eth0]", "[::]", "[64:ff9b::7f00:1]", "[2001:db8::1", "[:::]", "[zz::1]"]
)
HOST_NAMES = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,3}", fullmatch=True) | st.sampled_from(
    ["localhost", "xn--bcher-kva.example", "bücher.example", "EXAMPLE.COM.", "a..b", ".", "-x-.com", "_"]
)
HOSTS = HOST_NAMES | IPV4 | ODD_IPV4 | IPV6 | SHORT_TEXT
PORTS = st.one_of(
    st.integers(0, 65535).map(str),
    st.sampled_from(["", "99999", "-1", "0x50", "80a", " 80", "8080 ", "１２３"]),
)
PATHS = st.lists(NASTY_TEXT | SHORT_TEXT | st.sampled_from(["a", "img", "x.jpg"]), max_size=5).map("/".join)
EXTENSIONS = st.sampled_from(["", ".jpg", ".JPG", ".svg", ".gif", ".webp", ".png?x=.svg", ".svg#x", ".jpeg"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    """A URL-shaped string: absolute, scheme-relative, rooted, relative or plain garbage."""
    path = draw(PATHS) + draw(EXTENSIONS)
    query = draw(st.sampled_from(["", "?", "?a=1&b=%20", "#frag", "?x#y"]))
    userinfo = draw(st.sampled_from(["", "user@", "u:p@", "@"]))
    port = draw(st.sampled_from(["", ":"]))
    authority = userinfo + draw(HOSTS) + (port + draw(PORTS) if port else "")
    shapes = [
        f"{draw(SCHEMES)}://{authority}/{path}{query}",
        f"//{authority}/{path}{query}",
        f"/{path}{query}",
        f"{path}{query}",
        f"{draw(SCHEMES)}:{path}",
        draw(ANY_TEXT),
        " " * draw(st.integers(0, 3)) + f"http://{authority}/{path}" + draw(st.sampled_from(["", " ", "\n"])),
    ]
    return shapes[draw(st.integers(0, len(shapes) - 1))]


def json_values(leaves: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """Arbitrary JSON (no NaN: JSON has none), nested a few levels."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    scalars = scalars | ANY_TEXT | (leaves if leaves is not None else st.nothing())
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
        max_leaves=12,
    )


ALTS = ANY_TEXT | st.sampled_from(["", " ", "a cat", "Ã©tÃ© au bord de la mer", "\u200b" * 6, "x" * 2100])
LINK_VALUES = urls() | json_values()
LICENSES = st.sampled_from(
    ["https://creativecommons.org/licenses/by/4.0/", " http://creativecommons.org/licenses/by-sa/3.0 ",
     'http://creativecommons.org/licenses/"by"/', "creativecommons.org/licenses/\\u00e9", 'x"url":creativecommons.org/licenses/']
)  # fmt: skip


@st.composite
def links(draw: st.DrawFn) -> Any:
    """One HTML-Metadata link: mostly IMG@/src with a URL and an alt, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values())
    link: dict[str, Any] = {"path": draw(st.sampled_from(["IMG@/src", "IMG@/src", "A@/href", "img@/src"]))}
    link["url"] = draw(urls()) if draw(st.booleans()) else draw(LINK_VALUES)
    presence = draw(st.integers(0, 4))
    if presence:
        link["alt"] = draw(ALTS) if presence > 1 else draw(json_values())
    return link


META_NAMES = st.sampled_from(
    ["robots", " ROBOTS ", "openpairs", "tdm-reservation", "TDM-Reservation", "CCBot"]
)
META_CONTENTS = st.sampled_from(["noai", " NoImageAI , noindex", "1", " 0 ", "2", "", ",,noai,"]) | ANY_TEXT


@st.composite
def metas(draw: st.DrawFn) -> Any:
    """One Head.Metas entry: mostly a name/content pair that may opt out, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values())
    meta = {
        "name": draw(META_NAMES | ANY_TEXT | json_values()),
        "content": draw(META_CONTENTS | json_values()),
    }
    return {key: value for key, value in meta.items() if draw(st.integers(0, 5))}


def _or_garbage(draw: st.DrawFn, value: Any, odds: int = 12) -> Any:
    """`value`, or (once in `odds`) arbitrary JSON in its place."""
    return draw(json_values()) if draw(st.integers(0, odds - 1)) == 0 else value


@st.composite
def wat_records(draw: st.DrawFn) -> dict[str, Any]:
    """A WAT JSON record shaped like Common Crawl's, any level of which may be replaced by garbage."""
    head: Any = {}
    if draw(st.booleans()):
        head["Base"] = _or_garbage(draw, draw(urls()))
    if draw(st.booleans()):
        head["Metas"] = _or_garbage(draw, draw(st.lists(metas(), max_size=4)))
    found = draw(st.lists(links(), max_size=6))
    if draw(st.integers(0, 5)) == 0:
        found.insert(draw(st.integers(0, len(found))), {"path": "A@/href", "url": draw(LICENSES)})
    html = {"Head": _or_garbage(draw, head), "Links": _or_garbage(draw, found)}
    response = {"HTML-Metadata": _or_garbage(draw, html)}
    header: dict[str, Any] = {"WARC-Type": draw(st.sampled_from(["response", "response", "request", 7]))}
    if draw(st.integers(0, 4)):
        header["WARC-Target-URI"] = _or_garbage(draw, draw(urls()))
    envelope = {
        "WARC-Header-Metadata": _or_garbage(draw, header, 20),
        "Payload-Metadata": _or_garbage(draw, {"HTTP-Response-Metadata": _or_garbage(draw, response)}, 20),
    }
    return {"Envelope": _or_garbage(draw, envelope, 30)}
