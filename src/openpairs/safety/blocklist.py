"""Safety lists (Re-LAION style): load hash lists and match URLs, image bodies and PDQ hashes against them.

A list is a text file (one hash per line, `kind:` prefix optional, `#` comments) or a parquet file (a `hash`
column and an optional `kind` column); docs/safety.md gives the formats. Lists are read, never sent anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpairs.core.status import Status
from openpairs.safety.pdq_index import PdqIndex
from openpairs.safety.thresholds import PDQ_MATCH_DISTANCE
from openpairs.safety.urlnorm import normalise_url

ALGORITHMS = ("sha256", "sha1", "md5")  # the order of matching: scrub sees only the recorded sha256
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
URL_KINDS = tuple(f"url-{algorithm}" for algorithm in ALGORITHMS)
BODY_KINDS = ALGORITHMS  # hashes of an image's original body
PDQ_KIND = "pdq"
KINDS = URL_KINDS + BODY_KINDS + (PDQ_KIND,)
BARE_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}  # a bare hash: by length, matched against URLs and bodies
DEFAULT_PDQ_THRESHOLD = PDQ_MATCH_DISTANCE
_HEX = frozenset("0123456789abcdef")


class BlocklistError(ValueError):
    """A list that cannot be read: the message names file:line (or file:row for parquet)."""


@dataclass(frozen=True)
class Match:
    """A hit: the list file, the kind of hash that matched, the list's hash, and the PDQ distance."""

    list_file: str
    kind: str
    hash: str
    distance: int | None = None

    @property
    def status(self) -> Status:
        """The status a matched row ends with: blocklisted_url for URL hashes, else blocklisted_image."""
        return Status.BLOCKLISTED_URL if self.kind in URL_KINDS else Status.BLOCKLISTED_IMAGE

    @property
    def message(self) -> str:
        """The row's `error`: the list's file name and the hash kind (no distance: scrub's PDQ differs)."""
        return f"on safety list {posixpath.basename(self.list_file)} ({self.kind})"

    def download_fields(self, body_bytes: int | None = None) -> dict[str, Any]:
        """The download fields a matched row ends with, in a build and in scrub alike: status and error;
        for an image match the body's size (it was downloaded), nothing about the image; no opt-out signal.
        """
        size = body_bytes if self.status == Status.BLOCKLISTED_IMAGE else None
        return {"status": str(self.status), "error": self.message, "bytes": size}


def parse_entry(text: str) -> list[tuple[str, str]]:
    """(kind, hex) pairs one list entry stands for; ValueError saying what is wrong with it."""
    kind, sep, value = text.strip().lower().rpartition(":")
    value = value.strip()
    if any(char not in _HEX for char in value) or not value:
        raise ValueError(f"not a hex hash: {text.strip()[:80]!r}")
    if not sep:
        bare = BARE_KINDS.get(len(value))
        if bare is None:
            raise ValueError(f"a bare hash has 32, 40 or 64 hex digits (md5, sha1, sha256), not {len(value)}")
        return [(f"url-{bare}", value), (bare, value)]
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"unknown hash kind {kind!r} (known: {', '.join(KINDS)})")
    expected = HEX_LENGTHS[kind.removeprefix("url-")]
    if len(value) != expected:
        raise ValueError(f"a {kind} hash has {expected} hex digits, not {len(value)}")
    return [(kind, value)]


@dataclass
class _Builder:
    files: list[str] = field(default_factory=list)
    exact: dict[str, dict[bytes, int]] = field(default_factory=lambda: {kind: {} for kind in KINDS[:-1]})
    pdq_hashes: bytearray = field(default_factory=bytearray)
    pdq_sources: list[int] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_file(self, path: str) -> None:
        source = len(self.files)
        self.files.append(path)
        counts = self.counts.setdefault(path, {})
        for where, text in _entries(path):
            try:
                pairs = parse_entry(text)
            except ValueError as error:
                raise BlocklistError(f"{path}:{where}: {error}") from None
            for kind, value in pairs:
                counts[kind] = counts.get(kind, 0) + 1
                if kind == PDQ_KIND:
                    self.pdq_hashes += bytes.fromhex(value)
                    self.pdq_sources.append(source)
                else:
                    self.exact[kind].setdefault(bytes.fromhex(value), source)


def _entries(path: str) -> Iterator[tuple[str, str]]:
    """(where, entry text) of each entry: `line N` of a text list, `row N` (from 1) of a parquet list."""
    if path.endswith(".parquet"):
        yield from _parquet_entries(path)
        return
    from openpairs.io.fs import open_file

    with open_file(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BlocklistError(f"{path}:{number}: not UTF-8 text") from None
            text = line.split("#", 1)[0].strip()
            if text:
                yield str(number), text


def _parquet_entries(path: str) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    from openpairs.io.fs import open_file

    with open_file(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        if "hash" not in names:
            raise BlocklistError(f"{path}: a parquet list needs a 'hash' column (it has {', '.join(names)})")
        columns = ["hash"] + (["kind"] if "kind" in names else [])
        row = 0
        for batch in parquet.iter_batches(columns=columns, batch_size=65536):
            data = batch.to_pydict()
            kinds = data.get("kind") or [None] * batch.num_rows
            for value, kind in zip(data["hash"], kinds, strict=True):
                row += 1
                if value is None:
                    raise BlocklistError(f"{path}:row {row}: the hash is null")
                yield f"row {row}", f"{kind}:{value}" if kind else str(value)


class Blocklists:
    """Every loaded list: exact URL and body hashes per kind, and a PDQ index with its threshold."""

    def __init__(self, builder: _Builder, pdq_threshold: int) -> None:
        self.files = tuple(builder.files)
        self.counts = builder.counts
        self._exact = {kind: table for kind, table in builder.exact.items() if table}
        self._pdq = PdqIndex(bytes(builder.pdq_hashes), builder.pdq_sources, pdq_threshold)
        self.pdq_threshold = pdq_threshold

    @classmethod
    def load(cls, paths: Sequence[str], pdq_threshold: int = DEFAULT_PDQ_THRESHOLD) -> Blocklists:
        """Read every list in `paths` (text or .parquet); BlocklistError naming file:line for a bad entry."""
        builder = _Builder()
        for path in paths:
            builder.add_file(str(path))
        return cls(builder, pdq_threshold)

    def __bool__(self) -> bool:
        return bool(self._exact) or bool(len(self._pdq))

    @property
    def has_url_hashes(self) -> bool:
        """Whether any list holds URL hashes (bare hashes count)."""
        return any(kind in self._exact for kind in URL_KINDS)

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of hash the lists hold (a bare hash counts as its URL and its body kind)."""
        return frozenset(self._exact) | ({PDQ_KIND} if self.has_pdq else frozenset())

    @property
    def has_body_hashes(self) -> bool:
        """Whether any list holds MD5/SHA1/SHA256 hashes of image bodies (bare hashes count)."""
        return any(kind in self._exact for kind in BODY_KINDS)

    @property
    def has_pdq(self) -> bool:
        """Whether any list holds PDQ hashes."""
        return bool(len(self._pdq))

    def match_url(self, url: str) -> Match | None:
        """The first URL-hash match of `url` as given, then of its normalised form."""
        forms = [url]
        try:
            normalised = normalise_url(url)
        except ValueError:
            normalised = url
        if normalised != url:
            forms.append(normalised)
        for form in forms:
            hit = self._first(URL_KINDS, functools.partial(_digest, form.encode("utf-8")))
            if hit:
                return hit
        return None

    def match_body(self, body: bytes) -> Match | None:
        """The first MD5/SHA1/SHA256 match of an image's original body."""
        return self._first(BODY_KINDS, functools.partial(_digest, body))

    def match_digest(self, kind: str, hex_digest: str) -> Match | None:
        """A match of an already computed digest of kind `kind` (e.g. the recorded sha256 of a body)."""
        return self._lookup(kind, lambda _algorithm: bytes.fromhex(hex_digest))

    def match_pdq(self, hex_hash: str) -> Match | None:
        """The nearest list PDQ hash within the threshold of `hex_hash` (64 hex digits), if any."""
        found = self._pdq.nearest(bytes.fromhex(hex_hash)) if self.has_pdq else None
        if found is None:
            return None
        entry, distance = found
        listed = self._pdq.words[entry].astype(">u8").tobytes().hex()
        return Match(self.files[int(self._pdq.payloads[entry])], PDQ_KIND, listed, distance)

    def _first(self, kinds: Sequence[str], digest: Callable[[str], bytes]) -> Match | None:
        for kind in kinds:
            hit = self._lookup(kind, digest)
            if hit:
                return hit
        return None

    def _lookup(self, kind: str, digest: Callable[[str], bytes]) -> Match | None:
        table = self._exact.get(kind)
        if not table:
            return None
        value = digest(kind.removeprefix("url-"))
        source = table.get(value)
        return None if source is None else Match(self.files[source], kind, value.hex())


def _digest(data: bytes, algorithm: str) -> bytes:
    return hashlib.new(algorithm, data).digest()


@functools.lru_cache(maxsize=4)
def load_cached(paths: tuple[str, ...], pdq_threshold: int = DEFAULT_PDQ_THRESHOLD) -> Blocklists:
    """Blocklists.load, once per process for the same paths and threshold (workers reuse it across shards;
    a command's worker processes live for that command, so a list rewritten later is read by the next)."""
    return Blocklists.load(paths, pdq_threshold)
