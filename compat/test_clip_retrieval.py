"""clip-retrieval 2.45.0's own back end (`clip-retrieval back`, its own venv) serves the demo's `openpairs index`.

Its /knn-service is queried over HTTP and through its ClipClient, by text and by image (encoded by ITS copy of
the demo's CLIP, loaded from the demo's local checkpoint) and by embedding; every answer must equal what openpairs' own
index search returns for the same query vector: ids, urls, captions, keys and similarities.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compat.venvs import openpairs_bin
from openpairs.index.search import Filters, SearchIndex
from openpairs.models.clip import ClipEncoder, ClipModelSpec, load_clip

K = 10
DEEPER = 30  # our search goes deeper, so results tied at the k-th similarity are there to compare
COLUMNS = ["url", "caption", "key"]
TEXTS = ("a cyclist crossing the finish line", "photos of a holiday in Thailand")
SERVER_FLAGS = (  # nothing that downloads: no multilingual CLIP, no aesthetic embeddings, no TorchScript
    "--use_arrow=True",
    "--enable_mclip_option=False",
    "--provide_aesthetic_embeddings=False",
    "--use_jit=False",
    f"--columns_to_return={json.dumps(COLUMNS)}",
)
# open_clip 2.32 (clip-retrieval's) does not know a custom architecture: register its config, then run the
# very function `clip-retrieval back` runs.
REGISTER_AND_SERVE = (
    "import sys, fire, open_clip; open_clip.add_model_config(sys.argv.pop(1)); "
    "from clip_retrieval.clip_back import clip_back; fire.Fire(clip_back)"
)
KNOWS_MODEL = "import sys, open_clip; sys.exit(sys.argv[1] not in open_clip.list_models())"
CLIENT = """
import json, sys
from clip_retrieval.clip_client import ClipClient, Modality
job = json.load(sys.stdin)
answers = []
for modality, query in job["queries"]:
    client = ClipClient(job["url"], "openpairs", modality=Modality(modality), num_images=job["k"],
                        deduplicate=False, use_safety_model=False, use_violence_detector=False)
    answers.append(client.query(**query))
json.dump(answers, sys.stdout)
"""
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


@dataclass
class Served:
    """The back end's URL, openpairs' own search over the same index folder, and the CLIP it records."""

    url: str
    ours: SearchIndex
    clip: ClipEncoder


def free_port() -> int:
    """A port no one listens on now (the back end binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(url: str, payload: dict[str, Any]) -> Any:
    """POST JSON, return the decoded answer."""
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)


def wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    """Return once the back end lists our index; fail if it exits first."""
    while process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/indices-list", timeout=5) as answer:
                if json.load(answer) == ["openpairs"]:
                    return
        except OSError:
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
    raise AssertionError(f"clip-retrieval back exited with {process.returncode}")


def server_command(bin_dir: Path, spec: ClipModelSpec, work: Path) -> list[str]:
    """`clip-retrieval back` with the demo's CLIP from its local checkpoint (`open_clip:<arch>/<file>`)."""
    import open_clip

    clip_model = f"--clip_model=open_clip:{spec.model}/{spec.checkpoint}"
    flags = [f"--indices_paths={work / 'indices.json'}", clip_model, *SERVER_FLAGS]
    python = str(bin_dir / "python")
    if subprocess.run([python, "-c", KNOWS_MODEL, spec.model], check=False).returncode == 0:
        return [str(bin_dir / "clip-retrieval"), "back", *flags]
    config = work / f"{spec.model}.json"
    config.write_text(json.dumps(open_clip.get_model_config(spec.model)))
    return [python, "-c", REGISTER_AND_SERVE, str(config), *flags]


def index_folder(demo_dir: Path, layout: str, work: Path) -> Path:
    """The demo's own index folder ("single": one file per modality), or one built here with
    `--layout merged` (2 add tasks merged into one IVF index with on-disk lists)."""
    if layout == "single":
        return demo_dir / "index"
    out = work / "merged"
    options = ["--text", "--shards", "2", "--layout", "merged", "--factory", "IVF4,Flat"]
    subprocess.run(
        [str(openpairs_bin()), "index", str(demo_dir), "--out", str(out), *options], check=True, timeout=600
    )
    return out


@pytest.fixture(scope="module", params=["single", "merged"])
def served(
    demo_dir: Path,
    venv: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Served]:
    """`clip-retrieval back` serving an index folder of DIR as index "openpairs", beside openpairs' own search
    of it."""
    work = tmp_path_factory.mktemp("clip-back")
    index_dir = index_folder(demo_dir, request.param, work)
    ours = SearchIndex(str(index_dir))
    recorded = ours.manifest["clip"]
    checkpoint = str(demo_dir / recorded["checkpoint"])  # as recorded: absolute, or relative to DIR
    spec = ClipModelSpec(model=recorded["model"], pretrained=None, checkpoint=checkpoint, device="cpu")
    clip = load_clip(spec)  # registers a custom architecture's config with our open_clip
    (work / "indices.json").write_text(json.dumps({"openpairs": str(index_dir)}))
    port = free_port()
    command = [*server_command(venv("clip_retrieval"), spec, work), f"--port={port}"]
    log = (work / "server.log").open("wb")
    process = subprocess.Popen(
        command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url)
        yield Served(url, ours, clip)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        ours.close()


def ours_for(served: Served, vector: np.ndarray, modality: str) -> list[dict[str, Any]]:
    """openpairs' own top results for a unit query vector, no filters (the back end applies none here)."""
    return served.ours.search(vector, modality, DEEPER, Filters(safe=False, dedup=False))


def assert_same(theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> None:
    """Their top K equals ours: the same similarities in order, and each id with our similarity and metadata
    (ids tied at one similarity may come in another order)."""
    assert len(theirs) == min(K, len(ours)) and theirs
    np.testing.assert_allclose(
        [r["similarity"] for r in theirs], [r["similarity"] for r in ours[: len(theirs)]], atol=1e-4
    )
    by_id = {r["id"]: r for r in ours}
    for result in theirs:
        mine = by_id[result["id"]]
        assert abs(result["similarity"] - mine["similarity"]) < 1e-4
        assert {c: result.get(c) for c in COLUMNS} == {c: mine[c] for c in COLUMNS}


def embedding_queries(served: Served) -> list[tuple[str, np.ndarray]]:
    """(modality, unit vector): a stored image embedding, a stored text embedding and a random direction."""
    dim = served.ours.dim
    stored = [served.ours.stores[m] for m in ("image", "text")]
    assert all(store is not None for store in stored)
    picks = [store.take(np.array([3]))[0] for store in stored if store is not None]
    random = np.random.default_rng(17).standard_normal(dim)
    vectors = [*picks, random]
    return [(m, v / np.linalg.norm(v)) for m in ("image", "text") for v in vectors]


def knn_payload(modality: str, **query: Any) -> dict[str, Any]:
    """A /knn-service body as clip-retrieval's front page sends it, with no filters."""
    return {"modality": modality, "num_images": K, "indice_name": "openpairs", "deduplicate": False, **query}


def test_knn_service_by_embedding_and_text(served: Served) -> None:
    for modality, vector in embedding_queries(served):
        theirs = post(served.url + "/knn-service", knn_payload(modality, embedding_input=vector.tolist()))
        assert_same(theirs, ours_for(served, vector, modality))
    for text in TEXTS:
        vector = served.clip.encode_text([text])[0]
        for modality in ("image", "text"):
            theirs = post(served.url + "/knn-service", knn_payload(modality, text=text))
            assert_same(theirs, ours_for(served, vector, modality))
    print(
        f"clip-retrieval back: {len(embedding_queries(served))} embedding and {2 * len(TEXTS)} text queries, "
        f"{served.ours.dim}-d, {len(served.ours.metadata)} rows: equal to openpairs' search"
    )


def test_knn_service_by_image(served: Served) -> None:
    """An image query, encoded by clip-retrieval's copy of the CLIP, equals ours for the same image bytes."""
    from PIL import Image

    photos = resources.files("openpairs.demo").joinpath("data/images")
    photo = next(p for p in sorted(photos.iterdir(), key=lambda p: p.name) if p.name.endswith(".jpg"))
    data = photo.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        vector = served.clip.encode_images(served.clip.preprocess(image.convert("RGB")).unsqueeze(0))[0]
    for modality in ("image", "text"):
        payload = knn_payload(modality, image=base64.b64encode(data).decode())
        assert_same(post(served.url + "/knn-service", payload), ours_for(served, vector, modality))


def test_clip_client(served: Served, venv: Callable[[str], Path]) -> None:
    queries = [(m, {"embedding_input": v.tolist()}) for m, v in embedding_queries(served)]
    queries += [(m, {"text": t}) for t in TEXTS for m in ("image", "text")]
    job = {"url": served.url + "/knn-service", "k": K, "queries": queries}
    done = subprocess.run(
        [str(venv("clip_retrieval") / "python"), "-c", CLIENT],
        input=json.dumps(job).encode(),
        capture_output=True,
        check=True,
        timeout=600,
    )
    answers = json.loads(done.stdout)
    for (modality, query), theirs in zip(queries, answers, strict=True):
        vector = (
            np.asarray(query["embedding_input"])
            if "embedding_input" in query
            else served.clip.encode_text([query["text"]])[0]
        )
        assert_same(theirs, ours_for(served, vector, modality))


def test_metadata_service(served: Served) -> None:
    ids = [0, len(served.ours.metadata) // 2, len(served.ours.metadata) - 1]
    theirs = post(served.url + "/metadata", {"ids": ids, "indice_name": "openpairs"})
    ours = served.ours.metadata.rows(ids, COLUMNS)
    assert [t["id"] for t in theirs] == ids and [t["metadata"] for t in theirs] == ours
