"""A tiny finished pipeline DIR (tests.fixtures.pipeline_dir), built once per test module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.pipeline_dir import PipelineDir, make_pipeline_dir


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineDir:
    """Two shards of 14 candidates: kept, download drops and filter drops."""
    return make_pipeline_dir(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture
def fresh_pipeline(tmp_path: Path) -> Callable[..., PipelineDir]:
    """A factory for a private pipeline DIR that a test may damage."""
    return lambda **kw: make_pipeline_dir(tmp_path / "run", **kw)
