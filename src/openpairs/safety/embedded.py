"""Opt-out signals inside an image body: IPTC `plus:DataMining` in XMP, C2PA/CAWG training assertions."""

from __future__ import annotations

from openpairs.safety.c2pa_read import training_signal
from openpairs.safety.containers import scan
from openpairs.safety.xmp import data_mining_signal


def embedded_opt_out(body: bytes, xmp: bool = True, c2pa: bool = True) -> str | None:
    """The signal by which the body's own metadata opts it out (XMP first, then C2PA), or None.

    JPEG, PNG and WebP are read; other formats carry no signal here. Cheap when there is nothing: one
    walk over the container's segments; the XMP is parsed only when it names DataMining, and the C2PA
    reader runs only on a body that holds a manifest store.
    """
    if not (xmp or c2pa):
        return None
    found = scan(body)
    if xmp:
        for packet in found.xmp:
            if signal := data_mining_signal(packet):
                return signal
    if c2pa and found.c2pa and found.mime:
        return training_signal(body, found.mime)
    return None
