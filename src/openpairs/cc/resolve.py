"""Relative image URLs joined to their page's base, in Arrow where plain concatenation is right and with
urljoin for the rest; and the small Arrow helpers the link rules share."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from yarl import URL


def join_url(base: str, url: str) -> str | None:
    """`url` resolved against `base` (urljoin), or None when either does not parse (e.g. 'http://[::1')."""
    try:
        return urljoin(base, url)
    except ValueError:
        return None


def mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean numpy mask (null counts as False)."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def resolve_relative(url: pa.Array, bases: list[str], page_of: np.ndarray, relative: np.ndarray) -> pa.Array:
    """Relative URLs joined to their page base: common forms in Arrow, the rest with urljoin (null where
    the base or the URL does not parse)."""
    rows = np.flatnonzero(relative)
    if not len(rows):
        return url
    parts = [_base_parts(base) for base in bases]
    pages = page_of[rows]
    raw = url.take(pa.array(rows))
    stripped = _strip_dot_slash(raw)
    network = mask(pc.starts_with(stripped, "//"))  # '//host/x' keeps only the base's scheme
    rooted = mask(pc.starts_with(stripped, "/")) & ~network
    prefixes = [p[0] + ":" for p in parts] + [p[1] for p in parts] + [p[2] for p in parts]
    form = np.where(network, 0, np.where(rooted, 1, 2))
    prefix = pa.array(prefixes, pa.string()).take(pa.array(pages + form * len(parts)))
    joined = pc.binary_join_element_wise(prefix, stripped, "")
    joinable = np.array([bool(p[0]) for p in parts], dtype=bool)[pages]
    slow = np.flatnonzero(needs_urljoin(stripped) | ~joinable)
    if len(slow):
        originals = raw.take(pa.array(slow)).to_pylist()
        fixed = [join_url(bases[pages[i]], u) for i, u in zip(slow, originals, strict=True)]
        joined = replace_rows(joined, slow, fixed)
    return pc.replace_with_mask(url, pa.array(relative), joined)


def as_requested(url: pa.Array, rows: np.ndarray) -> pa.Array:
    """`url` with each of `rows` that holds a space, a control or non-ASCII character or one of "<>\\^`{|}
    written as an HTTP client requests it (yarl, as the downloader: percent-encoded UTF-8, an IDNA host),
    so any client can fetch it (urllib refuses a raw space); other rows, and unparsable ones, as they are."""
    unsafe = np.flatnonzero(rows & mask(pc.match_substring_regex(url, UNSAFE_IN_URL)))
    if not len(unsafe):
        return url
    return replace_rows(url, unsafe, [_requested(u) for u in url.take(pa.array(unsafe)).to_pylist()])


def _requested(url: str) -> str:
    try:
        return str(URL(url))
    except (ValueError, TypeError):  # left for the downloader to report as invalid_url
        return url


def replace_rows(values: pa.Array, rows: np.ndarray, replacements: list[str | None]) -> pa.Array:
    """`values` with rows[i] set to replacements[i] (rows ascending), the rest untouched in Arrow."""
    chosen = np.zeros(len(values), dtype=bool)
    chosen[rows] = True
    return pc.replace_with_mask(values, pa.array(chosen), pa.array(replacements, pa.string()))


def _strip_dot_slash(url: pa.Array) -> pa.Array:
    """'./x' -> 'x' (not './', '../' or './/', which urljoin handles): the prefix urljoin simply drops."""
    dot = mask(pc.starts_with(url, "./"))
    if not dot.any():
        return url
    dot &= ~(mask(pc.starts_with(url, "./.")) | mask(pc.starts_with(url, ".//")) | mask(pc.equal(url, "./")))
    rows = pa.array(dot)
    rest = pc.binary_slice(url.filter(rows).view(pa.binary()), 2, _TO_END)  # two ASCII bytes: still UTF-8
    return pc.replace_with_mask(url, rows, rest.view(pa.string()))


def needs_urljoin(url: pa.Array) -> np.ndarray:
    """Relative URLs that plain concatenation would join wrongly, left to urljoin: '', '?x', '#x', 'x?', 'x#',
    'x.', './' anywhere (dot segments), backslashes, and '//' not followed by a host. One numpy pass over
    the UTF-8 bytes (these are all ASCII tests) instead of a regex per row."""
    offsets = np.frombuffer(url.buffers()[1], np.int32, len(url) + 1, url.offset * 4)
    data = np.frombuffer(url.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    size = np.diff(offsets)
    padded = np.concatenate([data, np.zeros(3, np.uint8)])  # the first three bytes of any row can be read
    first, second, third = (padded[offsets[:-1] + i] for i in range(3))
    last = padded[np.maximum(offsets[1:] - 1, 0)]
    odd = (size == 0) | np.isin(first, _QUERY_OR_FRAGMENT) | ((size > 0) & np.isin(last, _BAD_LAST))
    odd |= (first == _SLASH) & (second == _SLASH) & ((size == 2) | np.isin(third, _AFTER_NO_HOST))
    odd[_rows_of(offsets, np.flatnonzero((data[:-1] == _DOT) & (data[1:] == _SLASH)))] = True
    odd[_rows_of(offsets, np.flatnonzero(data == _BACKSLASH))] = True
    return odd & mask(pc.is_valid(url))


def _rows_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The row each byte position belongs to (a pattern across two rows counts for the first: harmless)."""
    return np.searchsorted(offsets, positions, side="right") - 1


_TO_END = 2**31  # binary_slice stop past any string
UNSAFE_IN_URL = r'[^\x21-\x7e]|["<>\\^`{|}]'  # what a browser percent-encodes before requesting a URL
_DOT, _SLASH, _BACKSLASH = ord("."), ord("/"), ord("\\")
_QUERY_OR_FRAGMENT = np.frombuffer(b"?#", np.uint8)
_BAD_LAST = np.frombuffer(b"?#.", np.uint8)
_AFTER_NO_HOST = np.frombuffer(b"/?#", np.uint8)
_PLAIN_BASE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#\[\]\s]*)(/[^?#\s]*)?(?:[?#].*)?", re.DOTALL)


@lru_cache(maxsize=256)
def _base_parts(base: str) -> tuple[str, str, str]:
    """(scheme, origin, directory) of a base URL, e.g. ('http', 'http://a.b', 'http://a.b/x/'); all empty
    when plain concatenation cannot join to it."""
    plain = _PLAIN_BASE.fullmatch(base) if base.isascii() else None
    if plain:  # what urlsplit returns for it, without its general machinery
        scheme, netloc, path = plain.group(1).lower(), plain.group(2), plain.group(3) or ""
    else:
        try:
            parts = urlsplit(base)
        except ValueError:  # unparsable: its links go to join_url, which says so
            return "", "", ""
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path
    directory = path.rsplit("/", 1)[0] + "/" if "/" in path else "/"
    if "/." in directory:  # dot segments, which urljoin removes: every link of this base goes to urljoin
        return "", "", ""
    origin = f"{scheme}://{netloc}"
    return scheme, origin, origin + directory
