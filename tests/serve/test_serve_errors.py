"""Bad requests get a 4xx with a clear message, never a 500 (a hand-written negative test set)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openpairs.serve.app import create_app
from tests.fixtures.webserver import ImageServer
from tests.serve.conftest import DIM, Dataset

GOOD = [0.1] * DIM

# (path, json body or raw bytes, expected status, fragment of the message)
CASES: list[tuple[str, Any, int, str]] = [
    ("/api/search", b"{not json", 400, "not valid JSON"),
    ("/api/search", b"", 400, "empty request body"),
    ("/api/search", b"\xff\xfe\x00garbage", 400, "not valid JSON"),
    ("/api/search", [1, 2, 3], 422, "JSON object"),
    ("/api/search", "just a string", 422, "JSON object"),
    ("/api/search", {}, 422, "exactly one of"),
    ("/api/search", {"text": "cat", "embedding": GOOD}, 422, "exactly one of"),
    ("/api/search", {"embedding": [0.1, 0.2, 0.3]}, 422, f"this index expects {DIM}"),
    ("/api/search", {"embedding": [0.1] * (DIM + 1)}, 422, f"this index expects {DIM}"),
    ("/api/search", {"embedding": [0.0] * DIM}, 422, "zero"),
    ("/api/search", {"embedding": ["a"] * DIM}, 422, "embedding"),
    ("/api/search", {"embedding": "0.1,0.2"}, 422, "embedding"),
    ("/api/search", b'{"embedding": [NaN' + b", 0.1" * (DIM - 1) + b"]}", 422, "finite"),
    ("/api/search", b'{"embedding": [1e400' + b", 0.1" * (DIM - 1) + b"]}", 422, "finite"),
    ("/api/search", {"embedding": GOOD, "k": 0}, 422, "k"),
    ("/api/search", {"embedding": GOOD, "k": -5}, 422, "k"),
    ("/api/search", {"embedding": GOOD, "k": "many"}, 422, "k"),
    ("/api/search", {"embedding": GOOD, "modality": "video"}, 422, "modality"),
    ("/api/search", {"embedding": GOOD, "index": "nope"}, 404, "unknown index 'nope'"),
    ("/api/search", {"embedding": GOOD, "min_aesthetic": "high"}, 422, "min_aesthetic"),
    ("/api/search", {"embedding": GOOD, "colour": "red"}, 422, "colour"),
    ("/api/search", {"text": ""}, 422, "text is empty"),
    ("/api/search", {"text": "x" * 5000}, 413, "longer than"),
    ("/api/search", {"image": "%%%not-base64%%%"}, 422, "base64"),
    (
        "/api/search",
        {"image": base64.b64encode(b"not an image at all").decode()},
        422,
        "could not be decoded",
    ),
    ("/api/search", {"image_url": "http://127.0.0.1/x.jpg"}, 403, "disabled"),
    ("/api/search", {"id": 10**9}, 404, "out of range"),
    ("/api/search", {"id": -1}, 404, "out of range"),
    ("/knn-service", b"{oops", 400, "not valid JSON"),
    (
        "/knn-service",
        {"indice_name": "nope", "modality": "image", "num_images": 3, "text": "a"},
        404,
        "unknown index",
    ),
    ("/knn-service", {"modality": "audio", "num_images": 3, "text": "a"}, 422, "modality"),
    ("/knn-service", {"modality": "image", "num_images": 0, "text": "a"}, 422, "num_images"),
    ("/knn-service", {"modality": "image", "num_images": "lots", "text": "a"}, 422, "num_images"),
    ("/knn-service", {"modality": "image", "num_images": 3}, 422, "exactly one of"),
    ("/knn-service", {"modality": "image", "num_images": 3, "embedding_input": [1.0, 2.0]}, 422, "expects"),
    ("/knn-service", {"modality": "image", "num_images": 3, "embedding_input": "x"}, 422, "list of numbers"),
    ("/knn-service", {"modality": "image", "num_images": 3, "text": 5}, 422, "strings"),
    ("/metadata", {"ids": "1,2"}, 422, "list of integers"),
    ("/metadata", {"ids": [1, "2"]}, 422, "list of integers"),
    ("/metadata", {"ids": [1, 10**9]}, 404, "out of range"),
    ("/metadata", {"ids": [1], "indice_name": "nope"}, 404, "unknown index"),
    ("/metadata", [], 422, "JSON object"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), CASES)
def test_bad_request_gets_clear_4xx(
    client: TestClient, path: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_body_over_the_cap_is_413(client: TestClient) -> None:
    response = client.post("/api/search", content=b"x" * (3 * 1024 * 1024))
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_chunked_body_over_the_cap_is_413(client: TestClient) -> None:
    chunks = (b"y" * 65536 for _ in range(40))  # no Content-Length: streamed
    response = client.post("/api/search", content=chunks)
    assert response.status_code == 413


def test_uploaded_image_over_the_cap_is_413(client: TestClient) -> None:
    files = {"image": ("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 10), "image/png")}
    response = client.post("/api/search", files=files)
    assert response.status_code == 413 and "image larger" in response.json()["detail"]


def test_decompression_bomb_is_refused(client: TestClient) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, "PNG")  # 48 Mpx in a few KB
    response = client.post("/api/search", files={"image": ("bomb.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/api/search").status_code == 405
    assert client.post("/api/nothing", json={}).status_code == 404


def test_malformed_multipart_is_400(client: TestClient) -> None:
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/api/search", content=b"--xyz\r\nbroken", headers=headers)
    assert 400 <= response.status_code < 500


def test_missing_text_index_is_404(dataset: Dataset, tmp_path: Any) -> None:
    from openpairs.index.build import IndexConfig, build_index

    build_index(str(dataset.root), str(tmp_path / "index"), IndexConfig(text=False, tune_queries=50))
    with TestClient(create_app(dataset.config(index_dir=str(tmp_path / "index"), clip_model=None))) as client:
        response = client.post("/api/search", json={"embedding": GOOD, "modality": "text"})
        assert response.status_code == 404 and "--text" in response.json()["detail"]
        response = client.post("/api/search", json={"text": "a dog"})
        assert response.status_code == 503 and "CLIP" in response.json()["detail"]


def test_image_url_goes_through_the_address_guard(dataset: Dataset, image_server: ImageServer) -> None:
    url = image_server.url("/img/jpeg_baseline")
    with TestClient(create_app(dataset.config(allow_image_url=True))) as guarded:
        response = guarded.post("/api/search", json={"image_url": url})
        assert response.status_code == 422 and "blocked_address" in response.json()["detail"]
    allowed = dataset.config(allow_image_url=True, image_url_allow_addresses=("127.0.0.1",))
    with TestClient(create_app(allowed)) as client:
        response = client.post("/api/search", json={"image_url": url, "k": 3})
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == 3
        missing = client.post("/api/search", json={"image_url": image_server.url("/status/404")})
        assert missing.status_code == 422 and "http_404" in missing.json()["detail"]
