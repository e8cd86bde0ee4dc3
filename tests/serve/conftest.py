"""Fixtures for the search service: a built index over a small dataset, the tiny CLIP, a live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openpairs.index.build import IndexConfig, build_index
from openpairs.serve.app import create_app
from openpairs.serve.config import ServeConfig
from tests.fixtures.embeddings import make_dataset
from tests.fixtures.tiny_clip import TINY_MODEL, tiny_checkpoint
from tests.fixtures.webserver import image_server  # noqa: F401  (pytest fixture)

DIM = 64  # the tiny CLIP's embedding size


class Dataset:
    """A dataset directory with its built index, its vectors and the tiny CLIP checkpoint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images, self.texts = make_dataset(str(root), "openpairs", shards=3, rows=300, dim=DIM)
        build_index(str(root), str(root / "index"), IndexConfig(text=True, tune_queries=200))
        self.checkpoint = tiny_checkpoint(root / "model")

    def config(self, **overrides: object) -> ServeConfig:
        """A ServeConfig for this index with the tiny CLIP."""
        values: dict[str, object] = {
            "index_dir": str(self.root / "index"),
            "clip_model": TINY_MODEL,
            "clip_checkpoint": self.checkpoint,
            "max_k": 100,
            "max_body_bytes": 2 * 1024 * 1024,
            "max_image_bytes": 1024 * 1024,
        }
        values.update(overrides)
        return ServeConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The shared dataset + index (built once per session)."""
    return Dataset(tmp_path_factory.mktemp("serve-data"))


@pytest.fixture(scope="session")
def app(dataset: Dataset) -> FastAPI:
    """The app over the shared index, with the tiny CLIP loaded."""
    return create_app(dataset.config())


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """An in-process HTTP client for the app."""
    with TestClient(app) as test_client:
        yield test_client


class LiveServer:
    """uvicorn serving an app on 127.0.0.1:<ephemeral port> in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """The shared app served over real HTTP on loopback."""
    with LiveServer(app) as server:
        yield server


def unit(vector: np.ndarray) -> list[float]:
    """A vector as a JSON-ready list of floats."""
    return [float(x) for x in vector]
