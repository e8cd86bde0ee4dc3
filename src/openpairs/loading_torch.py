"""PyTorch IterableDataset over `openpairs.load`: shards are split between DataLoader workers and ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from openpairs.loading import Config, iter_view, shard_readers


def _default_rank() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed job, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class LaionIterable(IterableDataset):  # type: ignore[type-arg]
    """Yields TFDS `laion400m` feature dicts; each worker of each rank reads its own subset of shards."""

    def __init__(
        self, path: str, config: Config = "images", rank: int | None = None, world_size: int | None = None
    ) -> None:
        default_rank, default_world = _default_rank()
        self.path = path
        self.config: Config = config
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.num_shards = len(shard_readers(path, config))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        slot, slots = self.rank * workers + worker, self.world_size * workers
        for index, reader in enumerate(shard_readers(self.path, self.config)):
            if index % slots == slot:
                yield from iter_view(reader(), self.config)
