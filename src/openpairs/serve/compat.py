"""clip-retrieval's back-end API (`/knn-service`, `/metadata`, `/indices-list`) so its ClipClient and its
`front` page work against openpairs unchanged. Bodies are parsed whatever their content type, as its
Flask back end does (`get_json(force=True)`; the front page posts JSON as text/plain)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from openpairs.index.search import Filters
from openpairs.serve.api import query_vector
from openpairs.serve.config import ApiError
from openpairs.serve.limits import parse_json_object
from openpairs.serve.schemas import (
    KNN_REQUEST_DOC,
    METADATA_REQUEST_DOC,
    SearchRequest,
    error_responses,
)
from openpairs.serve.service import Service


def _int_field(payload: dict[str, Any], name: str, default: int | None = None) -> int:
    value = payload.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(422, f"{name} must be an integer, not {value!r}")
    if value < 1:
        raise ApiError(422, f"{name} must be at least 1")
    return value


def _query(payload: dict[str, Any]) -> SearchRequest:
    """Map clip-retrieval's fields onto a SearchRequest (aesthetic boosting and mclip are not supported)."""
    fields = {
        "text": payload.get("text"),
        "image": payload.get("image"),
        "image_url": payload.get("image_url"),
    }
    fields["embedding"] = payload.get("embedding_input")
    given = {k: v for k, v in fields.items() if v not in (None, "")}
    if len(given) != 1:
        raise ApiError(422, "give exactly one of text, image, image_url, embedding_input")
    if "embedding" in given and not isinstance(given["embedding"], list):
        raise ApiError(422, "embedding_input must be a list of numbers")
    if any(not isinstance(v, str) for k, v in given.items() if k != "embedding"):
        raise ApiError(422, "text, image and image_url must be strings")
    if "embedding" in given:
        given["embedding"] = [0.0]  # validated by the encoder, which names the expected length
    return SearchRequest.model_validate(given)


def router(service: Service) -> APIRouter:
    """The clip-retrieval compatible routes bound to `service`."""
    compat = APIRouter(tags=["clip-retrieval compatibility"])

    @compat.get("/indices-list")
    def indices_list() -> list[str]:
        """Names of the served indexes."""
        return [service.name]

    @compat.post(
        "/knn-service", openapi_extra=KNN_REQUEST_DOC, responses=error_responses(400, 403, 404, 413, 422, 503)
    )
    async def knn_service(request: Request) -> list[dict[str, Any]]:
        """clip-retrieval's kNN query: results with id, similarity and metadata for the first num_images."""
        payload = parse_json_object(await request.body())
        service.check_index(payload.get("indice_name"))
        modality = service.check_modality(payload.get("modality", "image"))
        num_images = min(_int_field(payload, "num_images", 40), service.config.max_k)
        wanted = _int_field(payload, "num_result_ids", num_images)
        wanted = min(max(wanted, num_images), service.config.max_result_ids)
        query = _query(payload)
        if query.embedding is not None:
            vector = service.encoder.embedding(payload["embedding_input"])
        else:
            vector = await query_vector(query, service)
        filters = Filters(
            safe=bool(payload.get("use_safety_model", False)), dedup=bool(payload.get("deduplicate", False))
        )
        results = await service.search(vector, modality, wanted, filters)
        head = [_with_metadata(r) for r in results[:num_images]]
        return head + [{"id": r["id"], "similarity": r["similarity"]} for r in results[num_images:]]

    @compat.post(
        "/metadata", openapi_extra=METADATA_REQUEST_DOC, responses=error_responses(400, 404, 413, 422)
    )
    async def metadata(request: Request) -> list[dict[str, Any]]:
        """Metadata of result ids: [{"id": i, "metadata": {...}}]."""
        payload = parse_json_object(await request.body())
        service.check_index(payload.get("indice_name"))
        ids = _checked_ids(payload.get("ids"), service)
        rows = service.index.metadata.rows(np.array(ids, dtype=np.int64))
        return [{"id": i, "metadata": row} for i, row in zip(ids, rows, strict=True)]

    return compat


def _checked_ids(ids: Any, service: Service) -> list[int]:
    """The ids of a /metadata request, or the ApiError that says what is wrong with them."""
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(422, "ids must be a list of integers")
    if len(ids) > service.config.max_result_ids:
        raise ApiError(413, f"at most {service.config.max_result_ids} ids per request")
    count = len(service.index.metadata)
    bad = [i for i in ids if not 0 <= i < count]
    if bad:
        raise ApiError(404, f"ids out of range 0..{count - 1}: {bad[:10]}")
    return ids


def _with_metadata(result: dict[str, Any]) -> dict[str, Any]:
    """A full result row; `similarity` is the query's, as in clip-retrieval."""
    return {k: v for k, v in result.items() if v is not None or k in ("url", "caption")}
