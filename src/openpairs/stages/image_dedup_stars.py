"""Connected components of image dedup's edges in rounds of tasks, none holding more than its part's edges.

Every reducer leaves its edges (key -> smallest key of its local component) split into `parts` by a hash
of the key, in both directions. The components are found by alternating large-star and small-star rounds
(Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), one task per part in each:
- large-star, at each key u: every larger neighbour v is linked to m(u), the smallest of u and its
  neighbours;
- small-star, at each key u: u and every smaller neighbour are linked to the smallest of them.
Both keep every component connected and never increase the number of edges, and together they end with
every component a star around its smallest key. A large-star task counts the keys that are not yet
settled (a key with both smaller and larger neighbours, or with two smaller ones); when no task counts
one, the graph is those stars and the round's labels (each key's m(u)) are final. The rounds needed grow
with the size of the largest component (O(log^2 n) at most, far fewer in practice), not with the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core import crashpoints
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import shuffle
from openpairs.stages.image_dedup_tasks import Settings

MAX_ROUNDS = 64  # large-star/small-star needs O(log^2 n) rounds; far past that is a bug, not a big graph
PAIR_SCHEMA = pa.schema([("node", pa.int64()), ("nbr", pa.int64())])
LABEL_SCHEMA = pa.schema([("node", pa.int64()), ("label", pa.int64())])
_MIX = np.uint64(0x9E3779B97F4A7C15)

Phase = Callable[[Callable[[Any], None], list[Any], str], None]


def part_of(nodes: np.ndarray, parts: int) -> np.ndarray:
    """The part (0..parts-1) of each key number: a multiplicative hash, the same on any machine."""
    mixed = (nodes.astype(np.uint64) * _MIX) >> np.uint64(32)
    return (mixed % np.uint64(max(parts, 1))).astype(np.int64)


def write_parted(path: str, table: pa.Table, part: np.ndarray, parts: int) -> None:
    """Write `table` with one row group per part, row group p holding the rows whose part is p (in their
    order; a table already in part order is not copied)."""
    if np.any(part[1:] < part[:-1]):
        order = np.argsort(part, kind="stable")
        table, part = table.take(pa.array(order)), part[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=parts))])
    with (
        commit.atomic_open(path) as handle,
        pq.ParquetWriter(handle, table.schema, compression=shuffle.SCRATCH_COMPRESSION) as writer,
    ):
        for p in range(parts):
            writer.write_table(table.slice(bounds[p], bounds[p + 1] - bounds[p]))


@dataclass(frozen=True)
class Files:
    """`count` files `<folder>/<i><suffix>` in the scratch folder, each with one row group per part."""

    scratch: str
    folder: str
    suffix: str
    count: int

    def path(self, index: int) -> str:
        """File `index`."""
        return ofs.join(self.scratch, self.folder, f"{commit.shard_name(index)}{self.suffix}")

    def read_part(self, part: int, schema: pa.Schema | None = None) -> pa.Table:
        """Row group `part` of every file, one file open at a time (`schema`: of the result when there
        are no files)."""
        shares = [] if schema is None else [schema.empty_table()]
        for index in range(self.count):
            with ofs.open_file(self.path(index), "rb") as handle:
                shares.append(pq.ParquetFile(handle).read_row_group(part))
        return pa.concat_tables(shares).combine_chunks()


def both_ways(a: np.ndarray, b: np.ndarray) -> pa.Table:
    """The directed pairs (a, b) and (b, a), for a task that needs every neighbour of its keys."""
    return pa.table({"node": np.concatenate([a, b]), "nbr": np.concatenate([b, a])}, schema=PAIR_SCHEMA)


@dataclass(frozen=True)
class StarTask:
    """One part of one large-star or small-star round."""

    settings: Settings
    kind: str  # "large" or "small"
    round: int
    index: int
    source: Files
    parts: int

    @property
    def output(self) -> Files:
        """This round's pairs for the next one (and, for large-star, `.labels.parquet` beside them)."""
        return Files(self.settings.scratch, f"{self.kind}.{self.round}", ".parquet", self.parts)

    @property
    def marker(self) -> str:
        """Done marker: {"pairs" written, "unsettled" keys (large-star only)}."""
        name = f"{commit.shard_name(self.index)}.json"
        return ofs.join(self.settings.scratch, f"{self.kind}.{self.round}", name)


def labels_path(settings: Settings, round_number: int, part: int) -> str:
    """Part `part`'s (key, label) after large-star round `round_number`, sorted by key."""
    name = f"{commit.shard_name(part)}.labels.parquet"
    return ofs.join(settings.scratch, f"large.{round_number}", name)


def _neighbours(task: StarTask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This part's distinct pairs sorted by (node, nbr), and where each node's run starts."""
    table = task.source.read_part(task.index, PAIR_SCHEMA)
    node, nbr = table["node"].to_numpy(), table["nbr"].to_numpy()
    if len(node) == 0:
        return node, nbr, np.zeros(0, np.int64)
    order = np.lexsort((nbr, node))
    node, nbr = node[order], nbr[order]
    distinct = np.concatenate([[True], (node[1:] != node[:-1]) | (nbr[1:] != nbr[:-1])])
    node, nbr = node[distinct], nbr[distinct]
    return node, nbr, np.flatnonzero(np.concatenate([[True], node[1:] != node[:-1]]))


def run_star(task: StarTask) -> None:
    """Run one part of a round: write the next round's pairs (and labels), then the marker."""
    node, nbr, starts = _neighbours(task)
    crashpoints.reached(f"image_dedup.{task.kind}_star", task.index)
    runs = np.diff(np.concatenate([starts, [len(node)]])).astype(np.int64)
    if task.kind == "large":
        pairs, record = _large_star(task, node, nbr, starts, runs)
    else:
        pairs, record = _small_star(node, nbr, starts, runs), {}
    keyed = pairs["node"].to_numpy()
    write_parted(task.output.path(task.index), pairs, part_of(keyed, task.parts), task.parts)
    shuffle.write_marker(task.marker, record | {"pairs": pairs.num_rows})


def _large_star(
    task: StarTask, node: np.ndarray, nbr: np.ndarray, starts: np.ndarray, runs: np.ndarray
) -> tuple[pa.Table, dict[str, int]]:
    """Both directions arrive, so each key's run is its whole neighbourhood: write its label m(u), count
    the unsettled keys, and link every larger neighbour v to m(u), keyed at v for the small-star round."""
    head = node[starts]
    centre = np.minimum(head, nbr[starts]) if len(node) else head
    smaller = np.add.reduceat((nbr < node).astype(np.int64), starts) if len(node) else head
    unsettled = ((smaller > 0) & (smaller < runs)) | (smaller > 1)
    labels = pa.table({"node": head, "label": centre}, schema=LABEL_SCHEMA)
    commit.write_parquet_atomic(labels, labels_path(task.settings, task.round, task.index))
    up = nbr > node
    pairs = pa.table({"node": nbr[up], "nbr": np.repeat(centre, runs)[up]}, schema=PAIR_SCHEMA)
    return pairs, {"unsettled": int(unsettled.sum())}


def _small_star(node: np.ndarray, nbr: np.ndarray, starts: np.ndarray, runs: np.ndarray) -> pa.Table:
    """Only smaller neighbours arrive (smallest first): link each key and its smaller neighbours to the
    smallest of them, in both directions for the large-star round."""
    low = np.repeat(nbr[starts], runs)
    move = nbr != low
    return both_ways(np.concatenate([nbr[move], node[starts]]), np.concatenate([low[move], nbr[starts]]))


def find_components(phase: Phase, settings: Settings, edges: Files, parts: int) -> int:
    """Alternate the rounds from the reducers' `edges` until settled; the number of rounds (the last
    large-star round's labels, `labels_path(settings, rounds - 1, part)`, are final)."""
    source = edges
    for round_number in range(MAX_ROUNDS):
        large = [StarTask(settings, "large", round_number, p, source, parts) for p in range(parts)]
        phase(run_star, large, f"large.{round_number}")
        if sum(shuffle.read_marker(task)["unsettled"] for task in large) == 0:
            return round_number + 1
        small = [StarTask(settings, "small", round_number, p, large[0].output, parts) for p in range(parts)]
        phase(run_star, small, f"small.{round_number}")
        source = small[0].output
    raise RuntimeError(f"image dedup's components did not settle in {MAX_ROUNDS} rounds")
