"""Request and response models of `POST /api/search` (they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

QUERY_FIELDS = ("text", "image", "image_url", "embedding", "id")


def _exactly_one_query(schema: dict[str, Any]) -> None:
    """Say in the JSON schema what `_one_query` checks: exactly one query field is given (not null)."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in QUERY_FIELDS
    ]


class SearchRequest(BaseModel):
    """One query (exactly one of text, image, image_url, embedding, id) plus the result options."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_query)

    text: str | None = Field(None, description="text query, encoded with the dataset's CLIP text model")
    image: str | None = Field(None, description="image query as base64 (or a data: URL)")
    image_url: str | None = Field(None, description="fetch this image (only when the server allows it)")
    embedding: list[float] | None = Field(None, description="a raw query vector of the index dimension")
    id: int | None = Field(None, description="search by the stored embedding of this result id")
    id_modality: Literal["image", "text"] = Field("image", description="which stored embedding `id` names")
    k: int = Field(20, ge=1, description="number of results (capped by the server)")
    modality: Literal["image", "text"] = Field("image", description="search the image or the text index")
    safe: bool = Field(True, description="drop results with punsafe > 0.5 or an NSFW tag of NSFW")
    dedup: bool = Field(True, description="drop results near-identical to a better one")
    min_aesthetic: float | None = Field(None, description="drop results with a lower aesthetic score")
    index: str | None = Field(None, description="index name (default: the only one)")

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        given = [name for name in QUERY_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(QUERY_FIELDS)} (got {len(given)})")
        return self


class SearchResult(BaseModel):
    """One result: the dataset row and its similarity to the query."""

    id: int
    url: str | None = None
    caption: str | None = None
    similarity: float
    punsafe: float | None = None
    aesthetic: float | None = None
    width: int | None = None
    height: int | None = None
    nsfw: str | None = None
    key: str | None = None
    clip_similarity: float | None = None


class SearchResponse(BaseModel):
    """Results, best first, and the effective options."""

    index: str
    modality: str
    k: int
    results: list[SearchResult]


class IndexInfo(BaseModel):
    """What the service can search."""

    name: str
    count: int
    dim: int
    modalities: list[str]
    text_queries: bool
    image_queries: bool
    image_url_queries: bool
    max_k: int
    clip_error: str | None = None


class ErrorResponse(BaseModel):
    """A refused request: its 4xx (or 503) status comes with one line saying why."""

    detail: str


ERROR_DESCRIPTIONS = {
    400: "the body is not JSON (or not a readable multipart form)",
    403: "image_url queries are disabled on this server",
    404: "unknown index, modality or id",
    413: "the body, text, image or id list is over the server's limit",
    422: "the query is invalid (the message names the field)",
    503: "text and image queries need the CLIP model, which is not loaded",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses an endpoint may answer."""
    return {code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_COUNT = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}], "description": "an integer >= 1"}
KNN_REQUEST_DOC = _json_body(
    {
        "type": "object",
        "description": "clip-retrieval's query: exactly one of text, image, image_url, embedding_input",
        "properties": {
            "text": _TEXT_OR_NULL,
            "image": _TEXT_OR_NULL,
            "image_url": _TEXT_OR_NULL,
            "embedding_input": {"type": ["array", "null"], "items": {"type": "number"}},
            "modality": {"enum": ["image", "text"]},
            "num_images": _COUNT,
            "num_result_ids": _COUNT,
            "indice_name": _TEXT_OR_NULL,
            "use_safety_model": {"description": "any value; true-ish drops unsafe results"},
            "deduplicate": {"description": "any value; true-ish drops near-duplicates"},
        },
        "oneOf": [
            {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
            for name in ("text", "image", "image_url")
        ]
        + [{"required": ["embedding_input"], "properties": {"embedding_input": {"type": "array"}}}],
    }
)
METADATA_REQUEST_DOC = _json_body(
    {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "integer"}}, "indice_name": _TEXT_OR_NULL},
    }
)
