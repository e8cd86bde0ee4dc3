"""Byte-level mutations of real files (bit flips, header integers, cuts, splices), as a Hypothesis strategy."""

from __future__ import annotations

import struct
from collections.abc import Callable

from hypothesis import strategies as st

HEADER_BYTES = 96  # formats keep sizes, counts and offsets near the start: mutate there half the time
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
Mutation = Callable[[bytes], bytes]


def _splice(start: int, stop: int | None, new: Callable[[bytes], bytes]) -> Mutation:
    """Replace data[start:stop] by new(data[start:stop])."""
    return lambda data: data[:start] + new(data[start:stop]) + (data[stop:] if stop is not None else b"")


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
        return _splice(at, at + 1, lambda old: bytes(b ^ mask for b in old))
    if kind == "set":
        value = bytes([draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))])
        return _splice(at, at + 1, lambda old: value[: len(old)])
    if kind == "int":
        fmt = draw(st.sampled_from([">H", "<H", ">I", "<I"]))
        packed = struct.pack(fmt, draw(st.sampled_from(INTERESTING)) & (0xFFFF if "H" in fmt else 0xFFFFFFFF))
        return _splice(at, at + len(packed), lambda _: packed)
    if kind == "cut":
        return _splice(at, None, lambda _: b"")
    if kind == "insert":
        extra = draw(st.binary(min_size=1, max_size=16))
        return _splice(at, at, lambda _: extra)
    length = draw(st.integers(1, 64))
    if kind == "delete":
        return _splice(at, at + length, lambda _: b"")
    copies = draw(st.integers(2, 8))
    return _splice(at, at + length, lambda old: old * copies)


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """(seed name, its bytes after one to four mutations)."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = seeds[name]
    for change in draw(st.lists(_mutation(len(data)), min_size=1, max_size=4)):
        data = change(data)
    return name, data
