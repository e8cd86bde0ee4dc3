"""Fuzzing the search API with schemathesis, from its own OpenAPI document, over a real uvicorn socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import given
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from openpairs.serve.app import create_app
from tests.fuzz.budget import fuzz_settings
from tests.serve.conftest import Dataset, LiveServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`openpairs serve`'s app over a small built index (tiny CLIP loaded), on 127.0.0.1."""
    dataset = Dataset(tmp_path_factory.mktemp("fuzz-serve"))
    with LiveServer(create_app(dataset.config())) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(served: LiveServer) -> schemathesis.BaseSchema:
    """The API's OpenAPI document, as the server itself publishes it."""
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


OPERATIONS = ("POST /api/search", "GET /api/info", "GET /indices-list", "POST /knn-service", "POST /metadata")
BROWSE = ("GET /api/browse", "GET /api/browse/facets", "GET /api/browse/image/{shard}/{key}")
WITH_INPUT = (*(label for label in OPERATIONS if label.startswith("POST")), BROWSE[0], BROWSE[2])
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
CASES = [(label, POSITIVE) for label in OPERATIONS + BROWSE] + [(label, NEGATIVE) for label in WITH_INPUT]


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    """The document lists exactly the operations fuzzed below: a new endpoint cannot go unfuzzed."""
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS + BROWSE)


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_api_never_fails_and_keeps_its_schema(
    api_schema: schemathesis.BaseSchema, served: LiveServer, label: str, mode: schemathesis.GenerationMode
) -> None:
    """Any request, valid (positive) or not (negative), gets a documented status, never a 5xx, with a
    body of the documented schema, and a request the schema forbids is refused. (That a schema-valid
    request is accepted is not checked: a schema cannot say "base64 of a decodable image" or "as many
    numbers as the index has dimensions", which the API refuses with a documented 422.)"""
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None

    @fuzz_settings(25)
    @given(case=operation.as_strategy(mode))
    def check(case: Case) -> None:
        case.call_and_validate(base_url=served.url, excluded_checks=[positive_data_acceptance])

    check()
