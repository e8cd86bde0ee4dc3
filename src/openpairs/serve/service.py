"""The loaded index and query encoder behind every endpoint, and the search call they share."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from openpairs.index.search import Filters, SearchIndex
from openpairs.serve.browse import DatasetBrowser
from openpairs.serve.config import ApiError, ServeConfig
from openpairs.serve.encode import QueryEncoder

INLINE_MAX_K = 100


class Service:
    """One served index: its name, the SearchIndex, the QueryEncoder and the browser of its build."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.index = SearchIndex(config.index_dir)
        self.name = config.name or os.path.basename(os.path.normpath(self.index.root)) or "openpairs"
        self.encoder = QueryEncoder(config, self.index)
        self.browser = DatasetBrowser(self.index.root)

    def check_index(self, name: str | None) -> None:
        """404 unless `name` is None or this index's name."""
        if name is not None and name != self.name:
            raise ApiError(404, f"unknown index {name!r}; available: [{self.name!r}]")

    def check_modality(self, modality: Any) -> str:
        """The modality if it was indexed, else a 4xx naming what exists."""
        if modality not in ("image", "text"):
            raise ApiError(422, f"modality must be 'image' or 'text', not {modality!r}")
        if modality not in self.index.indexes:
            raise ApiError(404, f"no {modality} index: build it with `openpairs index --text`")
        return str(modality)

    async def search(
        self, vector: np.ndarray, modality: str, k: int, filters: Filters
    ) -> list[dict[str, Any]]:
        """Top-k filtered results for one query vector.

        Runs on the event loop: a search takes about a millisecond, while a hop to the thread pool and back
        cost 2-4 ms of GIL hand-over under load (measured). Large k still goes to the thread pool.
        """
        if k > INLINE_MAX_K:
            return await run_in_threadpool(self.index.search, vector, modality, k, filters)
        return self.index.search(vector, modality, k, filters)
