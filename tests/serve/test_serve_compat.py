"""clip-retrieval compatibility, checked with clip-retrieval's own ClipClient (the installed package)."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.serve.conftest import Dataset, LiveServer, unit


def _clip_client_module() -> ModuleType:
    """clip_retrieval/clip_client.py, loaded on its own: the package __init__ pulls in its Flask back end."""
    spec = importlib.util.find_spec("clip_retrieval")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("clip-retrieval is not installed: pip install --no-deps clip-retrieval==2.45.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "clip_client.py"
    module_spec = importlib.util.spec_from_file_location("clip_retrieval_clip_client", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clip_client() -> ModuleType:
    """The real clip_retrieval.clip_client module."""
    return _clip_client_module()


def _name(live_server: LiveServer) -> str:
    names = requests.get(f"{live_server.url}/indices-list", timeout=10).json()
    assert isinstance(names, list) and len(names) == 1
    return str(names[0])


def test_indices_list_names_the_dataset(live_server: LiveServer, dataset: Dataset) -> None:
    assert _name(live_server) == dataset.root.name


def test_clip_client_embedding_query(
    live_server: LiveServer, dataset: Dataset, clip_client: ModuleType
) -> None:
    client = clip_client.ClipClient(
        url=f"{live_server.url}/knn-service",
        indice_name=_name(live_server),
        num_images=5,
        use_safety_model=False,
    )
    results = client.query(embedding_input=unit(dataset.images[7]))
    assert len(results) == 5
    assert results[0]["id"] == 7 and results[0]["similarity"] > 0.99
    assert results[0]["url"] == "http://127.0.0.1/img/7.jpg" and results[0]["caption"] == "caption number 7"


def test_clip_client_text_and_image_queries(
    live_server: LiveServer, dataset: Dataset, clip_client: ModuleType, tmp_path: Path
) -> None:
    client = clip_client.ClipClient(
        url=f"{live_server.url}/knn-service",
        indice_name=_name(live_server),
        num_images=6,
        modality=clip_client.Modality.TEXT,
    )
    by_text = client.query(text="a red bicycle")
    assert len(by_text) == 6 and all("caption" in r and "url" in r for r in by_text)
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "q.jpg")
    by_image = client.query(image=str(tmp_path / "q.jpg"))
    assert len(by_image) == 6
    assert all(r["similarity"] >= s["similarity"] for r, s in itertools.pairwise(by_image))


def test_clip_client_safety_flag_filters(
    live_server: LiveServer, dataset: Dataset, clip_client: ModuleType
) -> None:
    url, name = f"{live_server.url}/knn-service", _name(live_server)
    safe = clip_client.ClipClient(url=url, indice_name=name, num_images=30, use_safety_model=True)
    unsafe = clip_client.ClipClient(url=url, indice_name=name, num_images=30, use_safety_model=False)
    query = unit(dataset.images[3])  # row 3 has punsafe 0.9
    assert 3 not in [r["id"] for r in safe.query(embedding_input=query)]
    assert unsafe.query(embedding_input=query)[0]["id"] == 3


def test_front_page_protocol(live_server: LiveServer, dataset: Dataset) -> None:
    """What clip-retrieval's front sends: text/plain JSON, more result ids than images, then /metadata."""
    body = {
        "text": None,
        "image": None,
        "image_url": None,
        "embedding_input": unit(dataset.images[20]),
        "modality": "image",
        "num_images": 4,
        "indice_name": _name(live_server),
        "num_result_ids": 12,
        "use_mclip": False,
        "deduplicate": True,
        "use_safety_model": True,
        "use_violence_detector": True,
        "aesthetic_score": "",
        "aesthetic_weight": "",
    }
    headers = {"content-type": "text/plain;charset=UTF-8", "origin": "http://127.0.0.1:9"}
    response = requests.post(f"{live_server.url}/knn-service", data=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", "http://127.0.0.1:9")
    results = response.json()
    assert len(results) == 12
    assert all("url" in r for r in results[:4]) and all(set(r) == {"id", "similarity"} for r in results[4:])
    rest = [r["id"] for r in results[4:]]
    meta = requests.post(
        f"{live_server.url}/metadata", data=json.dumps({"ids": rest, "indice_name": _name(live_server)})
    ).json()
    assert [m["id"] for m in meta] == rest
    assert all(m["metadata"]["caption"] == f"caption number {m['id']}" for m in meta)
