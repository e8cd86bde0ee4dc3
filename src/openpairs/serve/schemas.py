"""Request and response models of `POST /api/search` (they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

QUERY_FIELDS = ("text", "image", "image_url", "embedding", "id")


class SearchRequest(BaseModel):
    """One query (exactly one of text, image, image_url, embedding, id) plus the result options."""

    model_config = ConfigDict(extra="forbid")

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
