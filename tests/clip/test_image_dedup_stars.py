"""Image dedup's star rounds (stages/image_dedup_stars.py): the components of edges spread over many files
and parts equal the in-memory components, for long chains (many rounds) and big stars alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig, make_executor
from openpairs.io import fs as ofs
from openpairs.stages import image_dedup_stars as stars
from openpairs.stages import shuffle
from openpairs.stages.image_dedup_pairs import components
from openpairs.stages.image_dedup_tasks import Settings


def _graph(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Key numbers far apart, joined as: a 600-key chain in shuffled key order, a 400-key star whose centre
    is its largest key, and 300 random edges among 2,000 keys."""
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.choice(10**12, size=3_000, replace=False)).astype(np.int64)
    chain = rng.permutation(600)
    star = np.arange(600, 1_000)
    loose = rng.integers(1_000, 3_000, size=(300, 2))
    a = np.concatenate([chain[:-1], np.full(399, 999), loose[:, 0]])
    b = np.concatenate([chain[1:], star[:-1], loose[:, 1]])
    keep = a != b
    return keys[a[keep]], keys[b[keep]]


def _write_edges(scratch: str, a: np.ndarray, b: np.ndarray, files: int, parts: int) -> stars.Files:
    """The edges as reducers leave them: spread over `files` files, both ways, split into parts."""
    edges = stars.Files(scratch, "reduce", ".edges.parquet", files)
    for index, rows in enumerate(np.array_split(np.arange(len(a)), files)):
        pairs = stars.both_ways(a[rows], b[rows])
        stars.write_parted(edges.path(index), pairs, stars.part_of(pairs["node"].to_numpy(), parts), parts)
    return edges


def _labels(settings: Settings, rounds: int, parts: int) -> dict[int, int]:
    found: dict[int, int] = {}
    for part in range(parts):
        table = pq.read_table(stars.labels_path(settings, rounds - 1, part)).to_pydict()
        assert not set(table["node"]) & set(found)  # a key is labelled in one part only
        found.update(zip(table["node"], table["label"], strict=True))
    return found


@pytest.mark.parametrize(("files", "parts", "workers"), [(1, 1, 1), (5, 7, 1), (3, 4, 2)])
def test_components_equal_the_in_memory_components(
    tmp_path: Path, files: int, parts: int, workers: int
) -> None:
    a, b = _graph(seed=parts)
    settings = Settings(str(tmp_path / "out"), str(tmp_path / "scratch"), 0.95, 2, 4096)
    edges = _write_edges(settings.scratch, a, b, files, parts)
    runner = make_executor(ExecutorConfig(workers=workers))

    def phase(work: Any, tasks: list[Any], folder: str) -> None:
        shuffle.run_phase(runner, work, tasks, 0, ofs.join(settings.scratch, folder))

    try:
        rounds = stars.find_components(phase, settings, edges, parts)
    finally:
        runner.close()
    nodes = np.unique(np.concatenate([a, b]))
    label = components(len(nodes), np.searchsorted(nodes, a), np.searchsorted(nodes, b))
    assert _labels(settings, rounds, parts) == dict(zip(nodes.tolist(), nodes[label].tolist(), strict=True))
    assert 3 <= rounds <= 20  # the shuffled chain needs several rounds, and they stay few
