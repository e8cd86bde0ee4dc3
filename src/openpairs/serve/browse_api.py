"""The browser's routes: `GET /api/browse` (a page), `/api/browse/facets` and `/api/browse/image/{shard}/{key}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from openpairs.serve.browse import DatasetBrowser
from openpairs.serve.browse_images import IMAGE_TYPES
from openpairs.serve.browse_schemas import NUMBER_PATTERN, BrowseFacets, BrowsePage, BrowseQuery
from openpairs.serve.schemas import ErrorResponse

ERRORS = {
    404: "no download shards under the dataset directory, or no stored image of that key",
    422: "a filter, cursor or page size is invalid (the message names it)",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in ERRORS.items()
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the stored image bytes, as the download wrote them",
        "content": {kind: BINARY for kind in sorted(set(IMAGE_TYPES.values()))},
    },
    **ERROR_RESPONSES,
}
_Number = Annotated[str, Path(pattern=NUMBER_PATTERN, description="digits")]


def router(browser: DatasetBrowser) -> APIRouter:
    """The /api/browse routes bound to `browser`."""
    api = APIRouter(prefix="/api/browse", tags=["browse"])

    @api.get("", response_model=BrowsePage, responses=ERROR_RESPONSES)
    def browse(query: Annotated[BrowseQuery, Query()]) -> BrowsePage:
        """One page of the build's candidates, kept and dropped, filtered by status, language and scores."""
        return browser.page(query)

    @api.get("/facets", response_model=BrowseFacets, responses={404: ERROR_RESPONSES[404]})
    def facets() -> BrowseFacets:
        """Row counts by status and by language over the whole build, and the filter's settings."""
        return browser.facets()

    @api.get("/image/{shard}/{key}", response_class=Response, responses=IMAGE_RESPONSES)
    def image(shard: _Number, key: _Number) -> Response:
        """The stored image of a sample, read from its download tar by key."""
        data, media_type = browser.image(shard, key)
        return Response(data, media_type=media_type, headers={"cache-control": "max-age=3600"})

    return api
