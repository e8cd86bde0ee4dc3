"""Our API: `POST /api/search` (JSON or multipart upload) and `GET /api/info`."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from openpairs.index.search import Filters
from openpairs.serve.config import ApiError
from openpairs.serve.limits import parse_json_object
from openpairs.serve.schemas import IndexInfo, SearchRequest, SearchResponse, error_responses
from openpairs.serve.service import Service

FORM_FILE_FIELD = "image"
SEARCH_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SearchRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        FORM_FILE_FIELD: {"type": "string", "format": "binary"},
                        "k": {"type": "integer"},
                        "modality": {"type": "string", "enum": ["image", "text"]},
                        "safe": {"type": "boolean"},
                        "dedup": {"type": "boolean"},
                        "min_aesthetic": {"type": "number"},
                    },
                }
            },
        },
    }
}


def validation_message(exc: ValidationError) -> str:
    """A one-line summary of pydantic errors: `field: problem; ...`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


async def read_request(request: Request, service: Service) -> SearchRequest:
    """Parse a JSON or multipart/form-data search request into a validated SearchRequest."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        payload = await _read_form(request, service)
    else:
        payload = parse_json_object(await request.body())
    try:
        return SearchRequest.model_validate(payload)
    except ValidationError as exc:
        raise ApiError(422, validation_message(exc)) from exc


async def _read_form(request: Request, service: Service) -> dict[str, Any]:
    try:
        form = await request.form(max_files=1, max_fields=20)
    except Exception as exc:  # starlette raises several types for malformed multipart bodies
        raise ApiError(400, f"malformed multipart body: {exc}") from exc
    payload: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            payload[name] = json.loads(value) if name == "embedding" and value.startswith("[") else value
        elif name == FORM_FILE_FIELD:
            data = await value.read(service.config.max_image_bytes + 1)
            if len(data) > service.config.max_image_bytes:
                raise ApiError(413, f"image larger than {service.config.max_image_bytes} bytes")
            payload[name] = base64.b64encode(data).decode("ascii")
        else:
            raise ApiError(422, f"unexpected file field {name!r}; upload the image as {FORM_FILE_FIELD!r}")
    return payload


async def query_vector(query: SearchRequest, service: Service) -> np.ndarray:
    """The query's unit vector, from whichever query field it carries."""
    encoder = service.encoder
    if query.embedding is not None:
        return encoder.embedding(query.embedding)
    if query.id is not None:
        return encoder.stored(query.id, query.id_modality)
    if query.image_url is not None:
        return await encoder.image_url(query.image_url)
    from starlette.concurrency import run_in_threadpool

    if query.image is not None:
        return await run_in_threadpool(encoder.image_base64, query.image)
    return await run_in_threadpool(encoder.text, query.text or "")


def router(service: Service) -> APIRouter:
    """The /api routes bound to `service`."""
    api = APIRouter(prefix="/api", tags=["search"])

    @api.post(
        "/search",
        response_model=SearchResponse,
        openapi_extra=SEARCH_BODY_DOC,
        responses=error_responses(400, 403, 404, 413, 422, 503),
    )
    async def search(request: Request) -> Response:
        """k nearest neighbours of a text, image, image URL, embedding or stored-id query."""
        query = await read_request(request, service)
        service.check_index(query.index)
        modality = service.check_modality(query.modality)
        vector = await query_vector(query, service)
        k = min(query.k, service.config.max_k)
        filters = Filters(safe=query.safe, dedup=query.dedup, min_aesthetic=query.min_aesthetic)
        results = await service.search(vector, modality, k, filters)
        response = SearchResponse.model_validate(
            {"index": service.name, "modality": modality, "k": k, "results": results}
        )
        return Response(response.model_dump_json(), media_type="application/json")  # validated once

    @api.get("/info", response_model=IndexInfo)
    def info() -> IndexInfo:
        """The index name, size, dimension and which query kinds work."""
        encoder = service.encoder
        return IndexInfo(
            name=service.name,
            count=len(service.index.metadata),
            dim=service.index.dim,
            modalities=service.index.modalities,
            text_queries=encoder.clip is not None,
            image_queries=encoder.clip is not None,
            image_url_queries=encoder.clip is not None and service.config.allow_image_url,
            max_k=service.config.max_k,
            clip_error=None if encoder.clip is not None else encoder.clip_error,
        )

    return api
