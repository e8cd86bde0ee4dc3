"""Every row of every stage ends with one status: `ok` or a named reason it was dropped."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Fixed statuses. HTTP errors use `http_status(code)` (e.g. `http_404`)."""

    OK = "ok"
    # extract: per IMG@/src link
    INVALID_LINK = "invalid_link"
    NO_ALT = "no_alt"
    ALT_TOO_SHORT = "alt_too_short"
    RELATIVE_URL = "relative_url"
    BAD_SCHEME = "bad_scheme"
    BAD_EXTENSION = "bad_extension"
    URL_TOO_LONG = "url_too_long"
    NOT_ENGLISH = "not_english"
    # dedup
    DUPLICATE = "duplicate"
    SEEN_BEFORE = "seen_before"
    # download
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BODY_TOO_LARGE = "body_too_large"
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    BAD_SIZE = "bad_size"
    DECODE_ERROR = "decode_error"
    OPTED_OUT = "opted_out"
    ROBOTS_DISALLOWED = "robots_disallowed"
    BLOCKED_ADDRESS = "blocked_address"
    INVALID_URL = "invalid_url"
    HASH_MISMATCH = "hash_mismatch"
    BLOCKLISTED_URL = "blocklisted_url"  # the URL is on a safety list: never requested
    BLOCKLISTED_IMAGE = "blocklisted_image"  # the body is on a safety list: never stored
    # clip / filter
    MISSING_IMAGE = "missing_image"
    EMPTY_CAPTION = "empty_caption"
    BELOW_SIMILARITY = "below_similarity"
    UNSAFE = "unsafe"
    UNSAFE_CAPTION = "unsafe_caption"  # the caption matches the safety presets' keyword filter
    WATERMARK = "watermark"
    NEAR_DUPLICATE = "near_duplicate"
    NOT_DOWNLOADED = "not_downloaded"
    EVAL_DUPLICATE = "eval_duplicate"  # a near-duplicate of an evaluation image


def http_status(code: int) -> str:
    """The status of a response with a non-success HTTP code, e.g. `http_404`."""
    return f"http_{code}"


TRANSIENT_STATUSES = frozenset(
    {Status.TIMEOUT, Status.CONNECTION_ERROR, "http_408", "http_429"}
    | {f"http_{code}" for code in range(500, 600)}
)


def is_transient(status: str) -> bool:
    """True for statuses worth retrying later (timeouts, connection errors, 408, 429, 5xx)."""
    return status in TRANSIENT_STATUSES
