"""The per-link rules of LAION's extraction, applied to a batch of links at once (Arrow compute).

Every rule is an ExtractConfig field. A link gets the first status that applies, in this order:
invalid_link (URL or alt not a string), no_alt, bad_scheme (also a relative URL that its page's base makes
non-http), relative_url (when dropped, or when no base resolves it to an absolute URL), url_too_long,
bad_extension, alt_too_short, opted_out (its page's metas opt it out: set by the extract stage),
not_english; else ok.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import ftfy
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.cc.resolve import as_requested
from openpairs.cc.resolve import mask as _mask
from openpairs.cc.resolve import replace_rows as _replace_rows
from openpairs.cc.resolve import resolve_relative as _resolve
from openpairs.core.status import Status

ORDER = (
    Status.OK,
    Status.INVALID_LINK,
    Status.NO_ALT,
    Status.BAD_SCHEME,
    Status.RELATIVE_URL,
    Status.URL_TOO_LONG,
    Status.BAD_EXTENSION,
    Status.ALT_TOO_SHORT,
    Status.NOT_ENGLISH,
    Status.OPTED_OUT,
)
CODE = {status: code for code, status in enumerate(ORDER)}
NON_PRINTABLE = r"[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]"  # control, format, private, surrogate, separators
WHITESPACE = r"[\n\r\t\f\v]"


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
    page_meta_opt_out: bool = True  # drop the images of pages whose metas opt out (cc/pagemeta.py)
    user_agent_token: str = ""  # a meta of this name also addresses us (as download's --user-agent-token)


@dataclass
class RuledLinks:
    """A batch after the rules: a status code per link, and the cleaned URL and caption of each."""

    codes: np.ndarray
    url: pa.Array
    caption: pa.Array


def apply_rules(
    urls: list[Any], alts: list[Any], bases: list[str], page_of: np.ndarray, config: ExtractConfig
) -> RuledLinks:
    """Apply the URL and alt rules to parallel lists; link i belongs to the page whose base is bases[page_of[i]]."""
    url, alt, invalid = _strings(urls, alts)
    codes = np.zeros(len(urls), dtype=np.int8)
    url = pc.utf8_trim_whitespace(url)
    has_scheme, is_http = _schemes(url)
    relative = ~has_scheme & _mask(pc.is_valid(url))
    if config.relative_urls == "resolve":
        url = _resolve(url, bases, page_of, relative)
        _rescheme(url, relative, has_scheme, is_http)  # what the base gave: http(s), another scheme, none
    url = _lower_scheme(url, is_http)
    _mark(codes, _bad_extension(url, config.drop_extensions), Status.BAD_EXTENSION)
    _mark(codes, _longer_than(url, config.max_url_length), Status.URL_TOO_LONG)
    _mark(codes, relative & ~has_scheme, Status.RELATIVE_URL)  # dropped, or no base could resolve it
    _mark(codes, has_scheme & ~is_http, Status.BAD_SCHEME)
    _mark(codes, ~_mask(pc.greater(pc.binary_length(alt), 0)), Status.NO_ALT)
    _mark(codes, invalid, Status.INVALID_LINK)
    caption = clean_alts(alt, config, codes == CODE[Status.OK])
    short = ~_longer_than(caption, config.min_alt_length - 1) & (codes == CODE[Status.OK])
    _mark(codes, short, Status.ALT_TOO_SHORT)
    return RuledLinks(codes, as_requested(url, codes == CODE[Status.OK]), caption)


def has_no_alt(url: Any, alt: Any) -> bool:
    """apply_rules' no_alt for one link (alt missing or empty, URL a string), to drop such links early."""
    return (alt is None or alt == "") and type(url) is str


def _schemes(url: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(has a scheme, is http(s) in any case): the case-insensitive test only for the rare odd rows."""
    has_scheme = _mask(pc.match_substring_regex(url, r"^[^/?#]*:"))
    is_http = _mask(pc.starts_with(url, "http://")) | _mask(pc.starts_with(url, "https://"))
    odd = np.flatnonzero(has_scheme & ~is_http)
    if len(odd):
        is_http[odd] = _mask(
            pc.match_substring_regex(url.take(pa.array(odd)), r"^https?://", ignore_case=True)
        )
    return has_scheme, is_http


def _rescheme(url: pa.Array, rows: np.ndarray, has_scheme: np.ndarray, is_http: np.ndarray) -> None:
    """Set `has_scheme` and `is_http` of the resolved relative `rows` (in place) from their new URLs."""
    picked = np.flatnonzero(rows)
    if len(picked):
        has_scheme[picked], is_http[picked] = _schemes(url.take(pa.array(picked)))


def _longer_than(values: pa.Array, limit: int) -> np.ndarray:
    """Rows of more than `limit` characters (null: no); byte lengths decide all but a few rows."""
    size = np.asarray(pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False))
    longer = size > limit
    doubt = np.flatnonzero(longer & (size <= 4 * limit))  # 1 to 4 bytes per character
    if len(doubt):
        longer[doubt] = _mask(pc.greater(pc.utf8_length(values.take(pa.array(doubt))), limit))
    return longer


def _bad_extension(url: pa.Array, extensions: tuple[str, ...]) -> np.ndarray:
    """URLs whose path (query and fragment cut) ends with one of `extensions`, in any case."""
    bad = np.zeros(len(url), dtype=bool)
    if extensions:
        path = pc.utf8_lower(pc.replace_substring_regex(url, r"[?#].*", ""))
        for ext in extensions:
            bad |= _mask(pc.ends_with(path, ext.lower()))
    return bad


def clean_alts(alt: pa.Array, config: ExtractConfig, alive: np.ndarray | None = None) -> pa.Array:
    """Alt text as LAION kept it: mojibake fixed, whitespace flattened, non-printables gone, stripped, cut.
    Mojibake repair (the costly part) runs only on the `alive` rows, those no other rule dropped."""
    if config.fix_text:
        wanted = _mask(pc.is_valid(alt)) if alive is None else alive
        non_ascii = np.flatnonzero(~_mask(pc.string_is_ascii(alt)) & wanted)
        if len(non_ascii):
            texts = alt.take(pa.array(non_ascii)).to_pylist()
            alt = _replace_rows(alt, non_ascii, [fix_mojibake(text) for text in texts])
    dirty = _mask(pc.match_substring_regex(alt, NON_PRINTABLE))  # whitespace controls are non-printable too
    if dirty.any():
        flat = pc.replace_substring_regex(alt.filter(pa.array(dirty)), WHITESPACE, " ")
        alt = pc.replace_with_mask(alt, pa.array(dirty), pc.replace_substring_regex(flat, NON_PRINTABLE, ""))
    alt = pc.utf8_trim_whitespace(alt)
    if _longer_than(alt, config.max_alt_length).any():
        alt = pc.utf8_slice_codeunits(alt, 0, config.max_alt_length)
    return alt


@lru_cache(maxsize=65_536)
def fix_mojibake(text: str) -> str:
    """ftfy's encoding repair (e.g. 'Ã©tÃ©' -> 'été'); other text is left as written."""
    return str(ftfy.fix_encoding(text))


def _strings(urls: list[Any], alts: list[Any]) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Both lists as string arrays; a non-string URL or alt becomes null and is marked invalid (a missing
    alt, None, is not invalid: that is no_alt; a missing URL is)."""
    try:
        url = pa.array(urls, pa.string())
        return url, pa.array(alts, pa.string()), ~_mask(pc.is_valid(url))
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        invalid = np.array(
            [
                type(u) is not str or (a is not None and type(a) is not str)
                for u, a in zip(urls, alts, strict=True)
            ]
        )
        urls = [u if type(u) is str else None for u in urls]
        alts = [a if type(a) is str else None for a in alts]
        return pa.array(urls, pa.string()), pa.array(alts, pa.string()), invalid


def _mark(codes: np.ndarray, mask: np.ndarray, status: Status) -> None:
    codes[mask] = CODE[status]


def _lower_scheme(url: pa.Array, is_http: np.ndarray) -> pa.Array:
    """'HTTP://x' -> 'http://x' (rare, done in Python)."""
    odd = np.flatnonzero(is_http & ~_mask(pc.starts_with(url, "http")))
    if not len(odd):
        return url
    lowered = [
        scheme.lower() + ":" + rest
        for scheme, rest in (u.split(":", 1) for u in url.take(pa.array(odd)).to_pylist())
    ]
    return _replace_rows(url, odd, lowered)
