"""Byte-level mutations of real files (bit flips, header integers, cuts, splices), as a Hypothesis strategy."""

from __future__ import annotations

import struct
from collections.abc import Callable

from hypothesis import strategies as st

HEADER_BYTES = 96  # formats keep sizes, counts and offsets near the start: mutate there half the time
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
Mutation = Callable[[bytearray], None]


@st.composite
def _position(draw: st.DrawFn, size: int) -> int:
    top = min(size, HEADER_BYTES) if draw(st.booleans()) else size
    return draw(st.integers(0, max(top - 1, 0)))


@st.composite
def _mutation(draw: st.DrawFn, size: int) -> Mutation:
    at = draw(_position(size))
    kind = draw(st.sampled_from(["flip", "set", "int", "cut", "insert", "delete", "repeat"]))
    if kind == "flip":
        mask = draw(st.integers(1, 255))
        return lambda data: data.__setitem__(at, data[at] ^ mask) if at < len(data) else None
    if kind == "set":
        value = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        return lambda data: data.__setitem__(at, value) if at < len(data) else None
    if kind == "int":
        fmt = draw(st.sampled_from([">H", "<H", ">I", "<I"]))
        packed = struct.pack(fmt, draw(st.sampled_from(INTERESTING)) & (0xFFFF if "H" in fmt else 0xFFFFFFFF))
        return lambda data: data.__setitem__(slice(at, at + len(packed)), packed)
    if kind == "cut":
        return lambda data: data.__delitem__(slice(at, None))
    if kind == "insert":
        extra = draw(st.binary(min_size=1, max_size=16))
        return lambda data: data.__setitem__(slice(at, at), extra)
    length = draw(st.integers(1, 64))
    if kind == "delete":
        return lambda data: data.__delitem__(slice(at, at + length))
    copies = draw(st.integers(1, 8))
    return lambda data: data.__setitem__(slice(at, at), data[at : at + length] * copies)


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """(seed name, its bytes after one to four mutations)."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for change in draw(st.lists(_mutation(len(data)), min_size=1, max_size=4)):
        change(data)
    return name, bytes(data)
