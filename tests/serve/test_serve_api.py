"""POST /api/search and GET /api/info: every query kind, filters, caps and the OpenAPI schema."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from openpairs.index.build import IndexConfig, build_index
from openpairs.index.search import is_unsafe
from openpairs.serve.app import create_app
from openpairs.serve.config import ServeConfig
from tests.fixtures.embeddings import make_dataset
from tests.fixtures.tiny_clip import TINY_MODEL
from tests.serve.conftest import DIM, Dataset, unit


def _png(seed: int = 1) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (seed * 40 % 255, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_embedding_query_returns_nearest_with_all_fields(client: TestClient, dataset: Dataset) -> None:
    response = client.post("/api/search", json={"embedding": unit(dataset.images[1]), "k": 5, "safe": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["k"] == 5 and body["modality"] == "image" and body["index"]
    results = body["results"]
    assert len(results) == 5
    assert results[0]["id"] == 1 and results[0]["similarity"] > 0.99
    assert results[0]["url"] == "http://127.0.0.1/img/1.jpg" and results[0]["caption"] == "caption number 1"
    assert {"punsafe", "aesthetic", "width", "height"} <= set(results[0])
    assert results[0]["width"] == 256 and results[0]["height"] == 192
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True)


def test_safe_mode_is_on_by_default(client: TestClient, dataset: Dataset) -> None:
    unsafe_id = 3  # punsafe 0.9 in the fixture
    default = client.post("/api/search", json={"embedding": unit(dataset.images[unsafe_id]), "k": 50}).json()
    assert default["results"] and not any(is_unsafe(r) for r in default["results"])
    assert unsafe_id not in [r["id"] for r in default["results"]]
    off = client.post(
        "/api/search", json={"embedding": unit(dataset.images[unsafe_id]), "k": 50, "safe": False}
    )
    assert off.json()["results"][0]["id"] == unsafe_id


def test_min_aesthetic_filters(client: TestClient, dataset: Dataset) -> None:
    body = {"embedding": unit(dataset.images[0]), "k": 30, "min_aesthetic": 7.0}
    results = client.post("/api/search", json=body).json()["results"]
    assert results and all(r["aesthetic"] >= 7.0 for r in results)


def test_text_modality_searches_the_text_index(client: TestClient, dataset: Dataset) -> None:
    body = {"embedding": unit(dataset.texts[10]), "k": 3, "modality": "text", "safe": False}
    results = client.post("/api/search", json=body).json()["results"]
    assert results[0]["id"] == 10


def test_text_query_uses_the_clip_text_model(client: TestClient) -> None:
    response = client.post("/api/search", json={"text": "a photo of a cat", "k": 7})
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 7


def test_uploaded_image_query(client: TestClient) -> None:
    files = {"image": ("q.png", _png(), "image/png")}
    response = client.post("/api/search", files=files, data={"k": "4", "safe": "false"})
    assert response.status_code == 200, response.text
    assert response.json()["k"] == 4 and len(response.json()["results"]) == 4


def test_base64_image_query_matches_upload(client: TestClient) -> None:
    encoded = base64.b64encode(_png(2)).decode()
    as_json = client.post("/api/search", json={"image": encoded, "k": 5, "safe": False}).json()
    as_upload = client.post(
        "/api/search", files={"image": ("q.png", _png(2), "image/png")}, data={"k": "5", "safe": "false"}
    ).json()
    assert [r["id"] for r in as_json["results"]] == [r["id"] for r in as_upload["results"]]


def test_search_by_stored_id(client: TestClient) -> None:
    results = client.post("/api/search", json={"id": 42, "k": 3, "safe": False}).json()["results"]
    assert results[0]["id"] == 42
    by_text = client.post("/api/search", json={"id": 42, "id_modality": "text", "modality": "text"}).json()
    assert by_text["results"][0]["id"] == 42


def test_k_is_capped(client: TestClient, dataset: Dataset) -> None:
    body = client.post("/api/search", json={"embedding": unit(dataset.images[0]), "k": 100000}).json()
    assert body["k"] == 100 and len(body["results"]) <= 100


def test_dedup_drops_near_identical_vectors(client: TestClient, dataset: Dataset) -> None:
    query = unit(dataset.images[0])
    with_dedup = client.post("/api/search", json={"embedding": query, "k": 40, "safe": False}).json()[
        "results"
    ]
    ids = [r["id"] for r in with_dedup]
    vectors = dataset.images[ids]
    sims = vectors @ vectors.T
    assert (sims[~np.eye(len(ids), dtype=bool)] < 0.94).all()


def test_info_reports_capabilities(client: TestClient, dataset: Dataset) -> None:
    info = client.get("/api/info").json()
    assert info["count"] == 900 and info["dim"] == DIM
    assert info["modalities"] == ["image", "text"]
    assert info["text_queries"] is True and info["image_url_queries"] is False


def test_openapi_schema_documents_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/info", "/knn-service", "/metadata", "/indices-list"} <= set(schema["paths"])
    body = schema["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    request = body["application/json"]["schema"]["properties"]
    assert {"text", "image", "embedding", "k", "modality", "safe", "dedup", "min_aesthetic"} <= set(request)
    result = schema["components"]["schemas"]["SearchResult"]["properties"]
    assert {"id", "url", "caption", "similarity", "punsafe", "aesthetic", "width", "height"} <= set(result)
    assert client.get("/docs").status_code == 200


def test_web_page_and_assets_are_local(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_clip_model_defaults_to_the_dataset_config(dataset: Dataset, tmp_path: Path) -> None:
    make_dataset(str(tmp_path), "openpairs", shards=1, rows=50, dim=DIM)
    clip = {"model": TINY_MODEL, "pretrained": None, "checkpoint": dataset.checkpoint, "device": "cpu"}
    (tmp_path / "config.json").write_text(json.dumps({"clip": clip}))
    build_index(str(tmp_path), str(tmp_path / "index"), IndexConfig(tune_queries=10))
    with TestClient(create_app(ServeConfig(index_dir=str(tmp_path / "index")))) as local:
        assert local.get("/api/info").json()["text_queries"] is True
        assert len(local.post("/api/search", json={"text": "a boat", "k": 3}).json()["results"]) == 3
