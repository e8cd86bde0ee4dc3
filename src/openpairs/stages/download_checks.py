"""What a fetched body must pass before anything of it is stored: safety lists (Re-LAION style) and the
image's own opt-out signals. The lists are loaded once per worker process and never sent anywhere."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpairs.core.status import Status
from openpairs.image.config import ImageRejected
from openpairs.image.process import INSPECT_SIDE
from openpairs.safety.blocklist import DEFAULT_PDQ_THRESHOLD
from openpairs.stages.download_memory import process_bounded

if TYPE_CHECKING:
    from PIL import Image

    from openpairs.image import ImageConfig, ProcessedImage
    from openpairs.safety.blocklist import Blocklists, Match

_LOAD_LOCK = threading.Lock()
PDQ_MAX_SIDE = INSPECT_SIDE


@dataclass(frozen=True)
class BodyChecks:
    """Which checks run on each row: safety lists (files, PDQ threshold), XMP plus:DataMining, C2PA."""

    blocklist: tuple[str, ...] = ()
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD
    xmp_data_mining: bool = True
    c2pa: bool = True

    def lists(self) -> Blocklists | None:
        """The safety lists, loaded once per process (shards of a worker share them); None without any."""
        if not self.blocklist:
            return None
        from openpairs.safety.blocklist import load_cached

        with _LOAD_LOCK:  # shards starting together in one process load the lists once
            return load_cached(self.blocklist, self.pdq_threshold)


class Blocklisted(ImageRejected):
    """A body on a safety list; `.match` says which list and hash kind."""

    def __init__(self, match: Match) -> None:
        super().__init__(match.status, match.message)
        self.match = match


def convert_checked(
    body: bytes, config: ImageConfig, expected_sha256: str | None, checks: BodyChecks
) -> ProcessedImage:
    """In a decode thread, before anything is stored: body hashes on the safety lists, the body's own
    opt-out signals, then `process_bounded` with PDQ lists checked on the decoded image. Raises
    Blocklisted, or ImageRejected (opted_out with its signal, or the conversion's own rejections)."""
    from openpairs.safety.embedded import embedded_opt_out

    lists = checks.lists()
    if lists is not None and lists.has_body_hashes and (match := lists.match_body(body)):
        raise Blocklisted(match)
    signal = embedded_opt_out(body, checks.xmp_data_mining, checks.c2pa)
    if signal:
        raise ImageRejected(Status.OPTED_OUT, f"the image's own metadata: {signal}", signal)
    inspect = pdq_check(lists) if lists is not None and lists.has_pdq else None
    return process_bounded(body, config, expected_sha256, inspect)


def pdq_check(lists: Blocklists) -> Callable[[Image.Image], None]:
    """A hook on the decoded image: raises Blocklisted when its PDQ hash is near one on the lists.

    An image over PDQ_MAX_SIDE is first box-reduced by a whole factor to at most that side, as PDQ's
    reference hasher does (512): hashing a 1024 px image costs ~35 CPU-ms, a 512 px one ~5, and the hash
    moves by 7 bits on average, 22 at most, on the benchmark corpus (the match threshold is 31; at 256 px
    it would move by up to 36)."""
    from openpairs.safety.pdq import pdq_of

    def check(image: Image.Image) -> None:
        factor = -(-max(image.size) // PDQ_MAX_SIDE)
        match = lists.match_pdq(pdq_of(image.reduce(factor) if factor > 1 else image).hex)
        if match is not None:
            raise Blocklisted(match)

    return check
