"""`openpairs index`: build, tune and save faiss indexes plus the memory-mapped metadata file."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from openpairs.core import crashpoints
from openpairs.index import tune
from openpairs.index.choose import IndexChoice, choose_index
from openpairs.index.metadata import write_metadata
from openpairs.index.sources import EmbeddingStore, IndexInputError, Sources, discover

# progress(phase, done, total): phase "train" (total 0 = unknown), "add" or "metadata"
Progress = Callable[[str, int, int], None]
INDEX_JSON = "index.json"
METADATA_FILE = "metadata.arrow"
TRAIN_POINTS_PER_LIST = 40
ZERO_NORM = 1e-6  # squared norm below which a row is a missing embedding
# Measured on this build, so returned and printed but not written to index.json (its bytes repeat).
MEASURED = ("p50_ms", "p99_ms", "build_seconds")


@dataclass(frozen=True)
class IndexConfig:
    """Settings of `openpairs index`."""

    memory_budget: int = 4 * 1024**3
    target_recall: float = 0.95
    text: bool = False
    tune_queries: int = 1000
    k: int = 10
    threads: int = 0  # 0: faiss default (all cores)
    factory: str | None = None  # force a faiss factory string instead of the automatic choice


def _noop(phase: str, done: int, total: int) -> None:
    return None


def train_and_add(
    store: EmbeddingStore, choice: IndexChoice, progress: Progress, seed: int = 0
) -> tuple[faiss.Index, int]:
    """Create the index, train it on a sample, add every non-zero vector by id; returns it and the count.

    The clip stage writes an all-zero row where an image or caption is missing: such rows keep their id
    (metadata stays aligned) but are not indexed, so they never come back as results.
    """
    factory = choice.factory if choice.factory.startswith("IDMap") else f"IDMap,{choice.factory}"
    index = faiss.index_factory(store.dim, factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        progress("train", 0, 0)
        wanted = max(choice.nlist * TRAIN_POINTS_PER_LIST, 20_000)
        sample = nonzero_sample(store, wanted, seed)
        if len(sample) == 0:
            raise IndexInputError("every embedding is all-zero: nothing to index")
        faiss.extract_index_ivf(index).cp.niter = 10
        index.train(sample)
        progress("train", 1, 1)
    progress("add", 0, store.count)
    added = 0
    for start, stop in store.chunks():
        rows = store.rows(start, stop)
        keep = np.einsum("ij,ij->i", rows, rows) > ZERO_NORM
        index.add_with_ids(rows[keep], np.arange(start, stop, dtype=np.int64)[keep])
        added += int(keep.sum())
        crashpoints.reached("index.add", start)
        progress("add", stop, store.count)
    return index, added


def nonzero_sample(store: EmbeddingStore, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` random stored vectors, all-zero rows left out."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(store.count, size=min(count, store.count), replace=False))
    vectors = store.take(ids)
    return vectors[np.einsum("ij,ij->i", vectors, vectors) > ZERO_NORM]


def build_one(
    store: EmbeddingStore, config: IndexConfig, progress: Progress
) -> tuple[faiss.Index, dict[str, Any]]:
    """Build and tune one modality's index; returns it with its index.json entry."""
    choice = choose_index(store.count, store.dim, config.memory_budget)
    if config.factory:
        param = "nprobe" if "IVF" in config.factory else "efSearch" if "HNSW" in config.factory else None
        match = re.search(r"IVF(\d+)", config.factory)
        nlist = int(match.group(1)) if match else 0
        choice = IndexChoice(config.factory, param, 0, nlist)
    started = time.perf_counter()
    index, added = train_and_add(store, choice, progress)
    if added == 0:
        raise IndexInputError("every embedding is all-zero: nothing to index")
    build_seconds = time.perf_counter() - started
    progress("tune", 0, 0)
    ids, queries = tune.sample_queries(store, config.tune_queries)
    k = min(config.k, max(added - 1, 1))
    truth = tune.without_self(tune.exact_knn(store, queries, k + 1), ids, k)
    tuned = tune.tune(index, choice.param, queries, truth, config.target_recall, ids)
    latency = tune.latency_ms(index, queries, k)
    progress("tune", 1, 1)
    entry = {
        **asdict(choice),
        "count": store.count,
        "indexed": added,
        "dim": store.dim,
        "value": tuned["value"],
        f"recall_at_{k}": tuned["recall"],
        "target_recall": config.target_recall,
        "sweep": tuned["sweep"],
        **latency,
        "build_seconds": round(build_seconds, 3),
        "tune_queries": len(queries),
    }
    return index, entry


def dataset_clip_model(root: str) -> dict[str, Any]:
    """The CLIP model recorded in DIR/config.json (its `clip` section), if any."""
    path = os.path.join(root, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    section = config.get("clip", config.get("stages", {}).get("clip", {})) if isinstance(config, dict) else {}
    keys = ("model", "pretrained", "checkpoint")
    return {k: section[k] for k in keys if isinstance(section, dict) and section.get(k) is not None}


def build_index(root: str, out: str, config: IndexConfig, progress: Progress = _noop) -> dict[str, Any]:
    """Index the embeddings under `root` into `out`; writes index.json last and returns it."""
    if config.threads > 0:
        faiss.omp_set_num_threads(config.threads)
    sources = discover(root)
    os.makedirs(out, exist_ok=True)
    manifest: dict[str, Any] = {
        "version": 1,
        "layout": sources.layout,
        "root": os.path.relpath(os.path.abspath(root), os.path.abspath(out)),
        "metadata": METADATA_FILE,
        "clip": dataset_clip_model(root),
        "indices": {},
    }
    tmp = os.path.join(out, METADATA_FILE + ".tmp")
    manifest["count"] = write_metadata(sources, tmp, lambda n: progress("metadata", n, 0))
    os.replace(tmp, os.path.join(out, METADATA_FILE))
    for modality in ("image", "text") if config.text else ("image",):
        files = sources.npy_files(modality)
        store = EmbeddingStore(files)
        if store.count != manifest["count"]:
            raise IndexInputError(f"{store.count} {modality} vectors but {manifest['count']} metadata rows")
        index, entry = build_one(store, config, progress)
        entry["file"] = f"{modality}.index"
        entry["embeddings"] = [os.path.relpath(f, out) for f in files]
        faiss.write_index(index, os.path.join(out, entry["file"] + ".tmp"))
        os.replace(os.path.join(out, entry["file"] + ".tmp"), os.path.join(out, entry["file"]))
        manifest["indices"][modality] = entry
    _write_json(os.path.join(out, INDEX_JSON), _without_measurements(manifest))
    return manifest


def _without_measurements(manifest: dict[str, Any]) -> dict[str, Any]:
    indices = {
        modality: {k: v for k, v in entry.items() if k not in MEASURED}
        for modality, entry in manifest["indices"].items()
    }
    return {**manifest, "indices": indices}


def dataset_root(index_dir: str, manifest: dict[str, Any]) -> str:
    """The dataset directory an index was built from (index.json records it relative to the index)."""
    recorded = manifest.get("root")
    if not recorded:
        return os.path.dirname(os.path.abspath(index_dir))
    return os.path.normpath(os.path.join(os.path.abspath(index_dir), recorded))


def _write_json(path: str, payload: dict[str, Any]) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(path + ".tmp", path)


def sources_of(root: str) -> Sources:
    """The embedding shards `build_index` would read (for a dry run)."""
    return discover(root)
