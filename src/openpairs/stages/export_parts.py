"""Export parts as tasks: a prefix sum of kept rows per input shard says which rows each output part takes.

Part j of a group (all kept samples; or one LAION-5B language group) holds rows [j x size, (j+1) x size) of
that group in shard order, so the task writing it reads only the input shards it overlaps. The kept
counts come from the filter's aggregates (report.aggregates: kept samples by language), or, where the
filter did not run, from count tasks that read the few columns they need.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import partial
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.executors import ExecutorConfig
from openpairs.io import fs as ofs
from openpairs.io import listing
from openpairs.report.aggregates import AGGREGATES_SUFFIX
from openpairs.stages import export_join as join
from openpairs.stages.export_split import split_counts, split_of
from openpairs.stages.tasks import map_tasks

GROUPS = 3  # LAION-5B language groups: 0 English, 1 another language, 2 no language


@dataclass(frozen=True)
class Piece:
    """Rows [start, stop) of input shard `name`'s kept rows (of the part's group), which has `count`."""

    name: str
    start: int
    stop: int
    count: int


@dataclass(frozen=True)
class PartTask:
    """Output part `index` of one group: where it goes, the pieces of input shards it is made of."""

    out: str
    directory: str
    format: str
    index: int
    pieces: tuple[Piece, ...]
    group: int = -1  # the LAION-5B language group, -1: every kept sample
    split: int = -1  # export_split.TRAIN or EVAL (of a webdataset export with an eval split), -1: no split
    eval_fraction: float = 0.0
    with_clip: bool = True
    with_filter: bool = True
    embeddings: bool = True
    size: int = 10_000  # samples per part


def group_of(language: str | None) -> int:
    """LAION-5B group of a language code: 0 English, 1 another language, 2 none detected."""
    return 0 if language == "en" else 2 if not language else 1


def plan_pieces(names: list[str], counts: list[int], size: int) -> list[tuple[Piece, ...]]:
    """The pieces of each part of `size` rows over shards with `counts` kept rows (the last part may
    be shorter); from the prefix sum of the counts."""
    starts = [0, *accumulate(counts)]
    parts = []
    for first in range(0, starts[-1], size):
        last = min(first + size, starts[-1])
        shard = bisect.bisect_right(starts, first) - 1
        pieces = []
        while shard < len(counts) and starts[shard] < last:
            low, high = max(first, starts[shard]), min(last, starts[shard + 1])
            if high > low:
                pieces.append(Piece(names[shard], low - starts[shard], high - starts[shard], counts[shard]))
            shard += 1
        parts.append(tuple(pieces))
    return parts


def kept_counts(
    out: str, names: list[str], with_filter: bool, executor: ExecutorConfig
) -> list[tuple[int, ...]]:
    """Kept rows of each shard by LAION-5B group: from the filter's aggregates when every shard has
    one, else from count tasks."""
    if with_filter:
        listed = listing.listed_shards(ofs.join(out, join.FILTER_DIR), AGGREGATES_SUFFIX)
        if all(int(name) in listed for name in names):
            paths = [listed[int(name)] for name in names]
            return list(listing.read_in_order(paths, _counts_from_aggregates))
    return map_tasks(executor, partial(count_kept, out, with_filter), names)


def _counts_from_aggregates(path: str) -> tuple[int, ...]:
    counts = [0] * GROUPS
    for language, n in listing.read_json(path)["languages"].items():
        counts[group_of(language)] += int(n)
    return tuple(counts)


def count_kept(out: str, with_filter: bool, name: str) -> tuple[int, ...]:
    """Task: one shard's kept rows by LAION-5B group, from its download (and filter) key columns."""
    groups = [group_of(v) for v in kept_rows(out, with_filter, name, ["language"])["language"].to_pylist()]
    return tuple(int(n) for n in np.bincount(np.array(groups, dtype=np.int64), minlength=GROUPS))


def count_split(out: str, with_filter: bool, fraction: float, name: str) -> tuple[int, int]:
    """Task: one shard's kept rows in the training shards and in the eval split."""
    return split_counts(kept_rows(out, with_filter, name, []), fraction)


def kept_rows(out: str, with_filter: bool, name: str, columns: list[str]) -> pa.Table:
    """`key` and `columns` of one shard's kept rows (downloaded, and passed the filter where it ran)."""
    down = join.read_parquet(ofs.join(out, join.DOWNLOAD_DIR, f"{name}.parquet"), ["key", "status", *columns])
    keep = pc.equal(down["status"], pa.scalar("ok"))
    if with_filter:
        filt = join.read_parquet(ofs.join(out, join.FILTER_DIR, f"{name}.parquet"), columns=["key", "status"])
        ok_keys = filt.filter(pc.equal(filt["status"], pa.scalar("ok")))["key"]
        keep = pc.and_(keep, pc.is_in(down["key"], value_set=ok_keys))
    return down.filter(keep).select(["key", *columns])


def read_piece(task: PartTask, piece: Piece) -> join.ShardView:
    """The rows of one piece: the input shard's kept samples (of the task's group), sliced."""
    view = join.read_view(task.out, piece.name, task.with_clip, task.with_filter, task.embeddings)
    if task.group >= 0:
        view = take_rows(view, np.flatnonzero(language_group(view.meta) == task.group))
    if task.split >= 0:
        view = take_rows(view, np.flatnonzero(split_of(view.meta, task.eval_fraction) == task.split))
    if len(view) != piece.count:
        raise join.ExportInputError(
            f"shard {piece.name}: {len(view)} kept samples, but its filter aggregates count {piece.count}: "
            "rerun `openpairs filter`"
        )
    return take_rows(view, np.arange(piece.start, piece.stop))


def language_group(meta: pa.Table) -> np.ndarray:
    """LAION-5B group of each row: 0 English, 1 another language, 2 no language detected."""
    return np.array([group_of(v) for v in meta["language"].to_pylist()], dtype=np.int64)


def take_rows(view: join.ShardView, rows: np.ndarray) -> join.ShardView:
    """The view's rows at `rows` (with their embeddings)."""
    img = view.img_emb[rows] if view.img_emb is not None else None
    txt = view.text_emb[rows] if view.text_emb is not None else None
    return join.ShardView(view.name, view.meta.take(rows), view.tar, img, txt)


def concat(views: list[join.ShardView]) -> join.ShardView:
    """The views' rows one after the other (embeddings only when every view has them)."""
    meta = pa.concat_tables([v.meta for v in views])
    img = _stack([v.img_emb for v in views])
    txt = _stack([v.text_emb for v in views])
    return join.ShardView(views[0].name, meta, views[0].tar, img, txt)


def _stack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    return np.concatenate([a for a in arrays if a is not None])
