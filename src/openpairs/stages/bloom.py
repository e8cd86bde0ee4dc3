"""A persistent bloom filter (rbloom) of pairs seen in earlier runs, saved atomically."""

from __future__ import annotations

import tempfile

import mmh3
import numpy as np
import pyarrow as pa
from rbloom import Bloom

from openpairs.io import commit
from openpairs.io import fs as ofs

FALSE_POSITIVE_RATE = 1e-6


def _stable_hash(item: str) -> int:
    """A process-independent 128-bit hash (rbloom needs one to save and load filters)."""
    return mmh3.hash128(item, signed=True)


class SeenFilter:
    """Pairs seen before: `check_and_add` answers which are new and remembers them; `save` persists."""

    def __init__(self, path: str, bloom: Bloom) -> None:
        self.path = path
        self.bloom = bloom

    @classmethod
    def open(cls, path: str, capacity: int) -> SeenFilter:
        """Load the filter at `path`, or start an empty one sized for `capacity` items."""
        if ofs.exists(path):
            with tempfile.NamedTemporaryFile(suffix=".bloom") as local:
                local.write(ofs.read_bytes(path))
                local.flush()
                return cls(path, Bloom.load(local.name, _stable_hash))
        return cls(path, Bloom(capacity, FALSE_POSITIVE_RATE, _stable_hash))

    def check_and_add(self, keys: pa.Array) -> np.ndarray:
        """Boolean mask of the keys not seen before (in order); all keys are then added."""
        bloom = self.bloom
        fresh = np.empty(len(keys), dtype=bool)
        for position, key in enumerate(keys.to_pylist()):
            fresh[position] = key not in bloom
            bloom.add(key)
        return fresh

    def save(self) -> None:
        """Write the filter atomically (temporary name, then rename)."""
        with tempfile.NamedTemporaryFile(suffix=".bloom") as local:
            self.bloom.save(local.name)
            commit.write_bytes_atomic(self.path, ofs.read_bytes(local.name))
