"""The normalised form of a URL that safety lists hash (documented in docs/safety.md).

Steps, in order: surrounding whitespace stripped; scheme lower-cased; host lower-cased, a trailing dot
dropped and international names written in IDNA (UTS #46 mapping, IDNA 2008, through the `idna` package);
the scheme's default port dropped (http 80, https 443); dot segments removed from the path (RFC 3986 §5.2.4)
and an empty path written `/`; percent-encoding normalised in path and query (escapes of unreserved
characters decoded, other escapes upper-cased, characters a URL may not carry escaped as UTF-8); the
fragment dropped. User info and the query's order are kept as they are.
"""

from __future__ import annotations

import re
import string
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
ALLOWED = UNRESERVED | frozenset("!$&'()*+,;=:@/?")  # kept as they are in path and query
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def normalise_url(url: str) -> str:
    """The normalised form of `url`; ValueError when it cannot be parsed (e.g. a bad port or host)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = _netloc(scheme, parts.netloc)
    path = _remove_dot_segments(_percent(parts.path))
    if netloc and not path:
        path = "/"
    return urlunsplit((scheme, netloc, path, _percent(parts.query), ""))


def _netloc(scheme: str, netloc: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    host, port = _split_port(hostport)
    if port is not None and DEFAULT_PORTS.get(scheme) == port:
        port = None
    text = _host(host)
    if port is not None:
        text += f":{port}"
    return f"{userinfo}@{text}" if userinfo else text


def _split_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):  # an IPv6 literal
        close = hostport.find("]")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
    else:
        host, _, port_text = hostport.partition(":")
        rest = f":{port_text}" if port_text or hostport.endswith(":") else ""
    if not rest or rest == ":":
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit():
        raise ValueError(f"bad port in {hostport!r}")
    return host, int(rest[1:])


def _host(host: str) -> str:
    lowered = host.lower().rstrip(".")
    if lowered.isascii() or lowered.startswith("["):
        return lowered
    import idna

    try:
        return idna.encode(lowered, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValueError(f"host {host!r} is not a valid international name: {error}") from None


def _percent(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        escape = _ESCAPE.match(text, index)
        if escape:
            char = chr(int(escape.group(1), 16))
            out.append(char if char in UNRESERVED else escape.group(0).upper())
            index += 3
            continue
        char = text[index]
        out.append(char if char in ALLOWED else "".join(f"%{b:02X}" for b in char.encode("utf-8")))
        index += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on segments."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1 or (output and output[0] != ""):
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return "/" + result.lstrip("/") if path.startswith("/") else result
