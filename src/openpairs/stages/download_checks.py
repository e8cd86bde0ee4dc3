"""What a fetched body must pass before anything of it is stored: the image's own opt-out signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpairs.core.status import Status
from openpairs.stages.download_memory import process_bounded

if TYPE_CHECKING:
    from openpairs.image import ImageConfig, ProcessedImage


@dataclass(frozen=True)
class BodyChecks:
    """Which checks run on each body: XMP plus:DataMining, C2PA training-mining assertions."""

    xmp_data_mining: bool = True
    c2pa: bool = True


def convert_checked(
    body: bytes, config: ImageConfig, expected_sha256: str | None, checks: BodyChecks
) -> ProcessedImage:
    """In a decode thread: the body's opt-out signals, then `process_bounded`. Raises ImageRejected
    (opted_out with its signal, or the conversion's own rejections)."""
    from openpairs.image import ImageRejected
    from openpairs.safety.embedded import embedded_opt_out

    signal = embedded_opt_out(body, checks.xmp_data_mining, checks.c2pa)
    if signal:
        raise ImageRejected(Status.OPTED_OUT, f"the image's own metadata: {signal}", signal)
    return process_bounded(body, config, expected_sha256)
