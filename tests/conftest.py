"""Fixtures shared by the test packages: a finished pipeline DIR, built once per session by the real stages.

See docs/testing.md: `built_pipeline` is the shared, read-only build; `pipeline` is a private copy of it for
a test that writes into the DIR (export writes DIR/dataset, report writes DIR/report and DIR/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fixtures.pipeline_output import PipelineOutput


@pytest.fixture(scope="session")
def built_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineOutput]:
    """The pipeline's output over the demo data, built once per session; a test must not write into it."""
    from tests.fixtures.pipeline_build import build_pipeline

    built = build_pipeline(tmp_path_factory.mktemp("pipeline"))
    before = built.digest()
    yield built
    assert built.digest() == before, "a test wrote into the shared pipeline DIR: give it the `pipeline` copy"


@pytest.fixture
def pipeline(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> PipelineOutput:
    """A private copy of the built pipeline DIR, for one test to write into or damage."""
    return built_pipeline.copy(tmp_path_factory.mktemp("pipeline-copy") / "run")


@pytest.fixture(autouse=True)
def _fresh_fetch_service() -> Iterator[None]:
    """Each test starts without the fetch service an earlier in-process download left (its host state,
    robots.txt verdicts and connections live as long as the process)."""
    yield
    from openpairs.net.shared import close_services

    close_services()
