"""What trainers and benchmarks read beside webdataset shards: `sizes.json`, and a held-out eval split.

`sizes.json` (open_clip_train's `get_dataset_size`): shard file name -> sample count, in every folder of
tar shards, so a trainer sizes an epoch without `--train-num-samples`. With `split_eval` > 0, a sample
whose key hashes below that fraction goes to `eval/` instead of the training shards: the same samples
on every run and executor, whatever the part size. `eval/` is laid out as clip_benchmark's webdataset
loader reads it (`--dataset wds/NAME --dataset_root eval`): `dataset_type.txt` ("retrieval") and
`test/` with `nshards.txt` and tars named `0.tar` .. `<n-1>.tar`, each sample an image and its `txt`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from openpairs.io import commit
from openpairs.io import fs as ofs

SIZES = "sizes.json"
EVAL_DIR = "eval"
EVAL_SPLIT = "test"  # clip_benchmark's default `--split`
EVAL_GROUP = f"{EVAL_DIR}/{EVAL_SPLIT}"
TRAIN, EVAL = 0, 1  # split numbers: rows of the training shards, rows of the eval split
_HASH_RANGE = float(2**64)


def eval_share(key: str) -> float:
    """Where a sample key falls in [0, 1): a stable hash, so a key's split never changes."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_RANGE


def split_of(meta: pa.Table, fraction: float) -> np.ndarray:
    """The split of each row (TRAIN or EVAL): EVAL where its key's share is below `fraction`."""
    shares = np.array([eval_share(str(key)) for key in meta["key"].to_pylist()], dtype=np.float64)
    return np.where(shares < fraction, EVAL, TRAIN).astype(np.int64)


def split_counts(meta: pa.Table, fraction: float) -> tuple[int, int]:
    """(training rows, eval rows) of a table of kept samples."""
    split = split_of(meta, fraction)
    return int(np.count_nonzero(split == TRAIN)), int(np.count_nonzero(split == EVAL))


def tar_name(group: str) -> Callable[[int], str]:
    """The stem of part `index`'s tar: zero-padded (`00042`), or plain (`42`) in the eval split, whose
    shard list clip_benchmark spells `{0..n-1}.tar`."""
    return str if group == EVAL_GROUP else commit.shard_name


def write_layout(directory: str, parts: Iterable[tuple[str, int, int]]) -> list[str]:
    """Write `sizes.json` beside each group's tars (and the eval split's `nshards.txt` and
    `dataset_type.txt`) from (group, part index, samples) of every part; returns the relative names."""
    sizes: dict[str, dict[str, int]] = {}
    for group, index, samples in parts:
        sizes.setdefault(group, {})[f"{tar_name(group)(index)}.tar"] = samples
    written = []
    for group, counts in sizes.items():
        written.append(_write(directory, _inside(group, SIZES), json.dumps(counts, indent=1)))
        if group == EVAL_GROUP:
            written.append(_write(directory, _inside(group, "nshards.txt"), f"{len(counts)}\n"))
            written.append(_write(directory, _inside(EVAL_DIR, "dataset_type.txt"), "retrieval\n"))
    return written


def _inside(group: str, name: str) -> str:
    return f"{group}/{name}" if group else name


def _write(directory: str, name: str, text: str) -> str:
    commit.write_bytes_atomic(ofs.join(directory, name), text.encode("utf-8"))
    return name
