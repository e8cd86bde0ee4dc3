"""`openpairs index`: build, tune and save faiss indexes plus the memory-mapped metadata file."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import faiss

from openpairs.executors import ExecutorConfig
from openpairs.index import tune
from openpairs.index.choose import IndexChoice, choose_index, ids_in_lists, memory_of, with_ids
from openpairs.index.metadata import write_metadata
from openpairs.index.parallel import (
    AddTask,
    add_all,
    id_ranges,
    merge_on_disk,
    plan_of,
    prepare_parts,
    train_once,
)
from openpairs.index.shardset import ShardSet, omp_threads, store_param
from openpairs.index.sources import EmbeddingStore, IndexInputError, Sources, discover, is_local
from openpairs.io import fs

# progress(phase, done, total): phase "train" (total 0 = unknown), "add" or "metadata"
Progress = Callable[[str, int, int], None]
INDEX_JSON = "index.json"
METADATA_FILE = "metadata.arrow"
# clip-retrieval's back end (`--use_arrow True`) reads every file under <index folder>/metadata/
METADATA_FOLDER = "metadata"
TRAIN_POINTS_PER_LIST = 40
# Measured on this build, so returned and printed but not written to index.json (its bytes repeat).
MEASURED = ("p50_ms", "p99_ms", "build_seconds", "shards_reused")
LAYOUTS = ("sharded", "merged")


@dataclass(frozen=True)
class IndexConfig:
    """Settings of `openpairs index`."""

    memory_budget: int = 4 * 1024**3
    target_recall: float = 0.95
    text: bool = False
    tune_queries: int = 1000
    tune_sample: int = 100_000  # vectors whose exact kNN is the tuning ground truth
    k: int = 10
    threads: int = 0  # 0: faiss default (all cores), split between local add workers
    factory: str | None = None  # force a faiss factory string instead of the automatic choice
    shards: int = 1  # K add tasks, each a contiguous id range
    layout: str = "sharded"  # with shards > 1: "sharded" (K files) or "merged" (one file, on-disk lists)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if self.shards < 1:
            raise ValueError("shards must be at least 1")


def _noop(phase: str, done: int, total: int) -> None:
    return None


def choice_for(store: EmbeddingStore, config: IndexConfig) -> IndexChoice:
    """The automatic choice, or the forced factory with its tuned parameter and list count."""
    if not config.factory:
        choice = choose_index(store.count, store.dim, config.memory_budget)
    else:
        param = "nprobe" if "IVF" in config.factory else "efSearch" if "HNSW" in config.factory else None
        match = re.search(r"IVF(\d+)", config.factory)
        memory = memory_of(config.factory, store.count, store.dim)
        choice = IndexChoice(config.factory, param, memory, int(match.group(1)) if match else 0)
    if config.layout == "merged" and config.shards > 1 and not ids_in_lists(choice.factory):
        raise IndexInputError(
            f"--layout merged needs a plain IVF index, not {choice.factory}: use --layout sharded"
        )
    return choice


def new_index(dim: int, factory: str) -> faiss.Index:
    """An empty inner-product index of `factory` (an id map added where needed), ready to train.

    IVF-PQ's polysemous training is switched off: it took 8x the whole PQ training (measured) and only
    serves Hamming-threshold search, which openpairs never uses.
    """
    index = faiss.index_factory(dim, with_ids(factory), faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.try_extract_index_ivf(index)
    concrete = faiss.downcast_index(ivf) if ivf is not None else None
    if isinstance(concrete, faiss.IndexIVFPQ):
        concrete.do_polysemous_training = False  # type: ignore[attr-defined]  # missing from the stubs
    return index


def trained_index(store: EmbeddingStore, choice: IndexChoice, progress: Progress, seed: int) -> faiss.Index:
    """The empty index, its quantizer trained on a seeded sample of the non-zero vectors."""
    index = new_index(store.dim, choice.factory)
    if not index.is_trained:
        progress("train", 0, 0)
        sample = tune.nonzero_sample(store, max(choice.nlist * TRAIN_POINTS_PER_LIST, 20_000), seed)
        if len(sample.ids) == 0:
            raise IndexInputError("every embedding is all-zero: nothing to index")
        faiss.extract_index_ivf(index).cp.niter = 10
        index.train(sample.vectors)
        progress("train", 1, 1)
    return index


def build_parts(
    store: EmbeddingStore, choice: IndexChoice, parts: str, config: IndexConfig, progress: Progress
) -> tuple[str, list[str], int, int]:
    """Train once and add every range in parallel tasks: (trained file, shard files, added, reused)."""
    ranges = id_ranges(store.count, config.shards)
    plan = plan_of(store.files, choice.factory, store.count, store.dim, len(ranges), config.seed)
    prepare_parts(parts, plan)
    trained = train_once(parts, lambda: trained_index(store, choice, progress, config.seed))
    workers = min(config.executor.worker_count(), len(ranges))
    threads = config.threads or max(1, (os.cpu_count() or 1) // workers)
    files = tuple(os.path.abspath(f) if is_local(f) else f for f in store.files)  # workers' cwd differs
    tasks = [
        AddTask(files, lo, hi, trained, os.path.join(parts, f"shard-{n:05d}.index"), n, threads)
        for n, (lo, hi) in enumerate(ranges)
    ]
    progress("add", 0, store.count)
    added, reused = add_all(tasks, config.executor, parts)
    progress("add", store.count, store.count)
    if added == 0:
        raise IndexInputError("every embedding is all-zero: nothing to index")
    return trained, [t.out for t in tasks], added, reused


def publish(out: str, modality: str, trained: str, shards: list[str], layout: str) -> dict[str, Any]:
    """Move the built shards into `out` (or merge them onto disk); returns the entry's file names."""
    if len(shards) == 1 or layout == "merged":
        name = f"{modality}.index"
        if len(shards) == 1:
            os.replace(shards[0], os.path.join(out, name))
            return {"file": name}
        merge_on_disk(trained, shards, os.path.join(out, name), os.path.join(out, f"{modality}.ivfdata"))
        return {"file": name, "data": f"{modality}.ivfdata"}
    names = [f"{modality}.shard-{n:05d}.index" for n in range(len(shards))]
    for path, name in zip(shards, names, strict=True):
        os.replace(path, os.path.join(out, name))
    return {"shards": names}


def tune_on_sample(
    store: EmbeddingStore, built: ShardSet, trained: str, choice: IndexChoice, config: IndexConfig, added: int
) -> dict[str, Any]:
    """Tune the search parameter on a seeded sample (the whole index when the sample is all of it)."""
    sample = tune.nonzero_sample(store, config.tune_sample, config.seed + 1)
    target = built
    if len(sample.ids) < added:  # the same quantizer and codes, holding the sample only
        index = faiss.read_index(trained)
        index.add_with_ids(sample.vectors, sample.ids)
        target = ShardSet([index])
    ids, queries = tune.query_subset(sample, config.tune_queries, config.seed)
    k = min(config.k, max(len(sample.ids) - 1, 1))
    truth = tune.sample_truth(sample, queries, ids, k)
    tuned = tune.tune(target, choice.param, queries, truth, config.target_recall, ids)
    return {**tuned, "queries": queries, "k": k, "sample": len(sample.ids)}


def build_one(
    store: EmbeddingStore, modality: str, out: str, config: IndexConfig, progress: Progress
) -> dict[str, Any]:
    """Build, publish and tune one modality's index; returns its index.json entry."""
    choice = choice_for(store, config)
    started = time.perf_counter()
    parts = os.path.abspath(os.path.join(out, f"{modality}.parts"))
    trained, shards, added, reused = build_parts(store, choice, parts, config, progress)
    files = publish(out, modality, trained, shards, config.layout)
    build_seconds = time.perf_counter() - started
    progress("tune", 0, 0)
    built = ShardSet.read(out, files)
    tuned = tune_on_sample(store, built, trained, choice, config, added)
    built.set_param(choice.param, tuned["value"] or 0)
    latency = tune.latency_ms(built, tuned["queries"], tuned["k"])
    built.close()
    if "file" in files:  # one index file (its lists inside or in `data`): it carries its parameter
        path = os.path.abspath(os.path.join(out, files["file"]))
        store_param(path, choice.param, tuned["value"] or 0, on_disk="data" in files)
    shutil.rmtree(parts)
    progress("tune", 1, 1)
    return {
        **asdict(choice),
        **files,
        "count": store.count,
        "indexed": added,
        "dim": store.dim,
        "value": tuned["value"],
        f"recall_at_{tuned['k']}": tuned["recall"],
        "target_recall": config.target_recall,
        "sweep": tuned["sweep"],
        **latency,
        "build_seconds": round(build_seconds, 3),
        "shards_reused": reused,
        "tune_queries": len(tuned["queries"]),
        "tune_sample": tuned["sample"],
    }


def _relative(path: str, out: str) -> str:
    """A local path relative to the index directory (both can move together); a URL as it is."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(out)) if is_local(path) else path


def dataset_clip_model(root: str) -> dict[str, Any]:
    """The CLIP model recorded in DIR/config.json (its `clip` section), if any."""
    path = fs.join(root, "config.json")
    if not fs.exists(path):
        return {}
    config = json.loads(fs.read_text(path))
    section = config.get("clip", config.get("stages", {}).get("clip", {})) if isinstance(config, dict) else {}
    keys = ("model", "pretrained", "checkpoint")
    return {k: section[k] for k in keys if isinstance(section, dict) and section.get(k) is not None}


def build_index(root: str, out: str, config: IndexConfig, progress: Progress = _noop) -> dict[str, Any]:
    """Index the embeddings under `root` into `out`; writes index.json last and returns it."""
    with omp_threads(config.threads):
        return _build(root, out, config, progress)


def _build(root: str, out: str, config: IndexConfig, progress: Progress) -> dict[str, Any]:
    """`build_index` with faiss's thread count set."""
    if not is_local(out):
        raise IndexInputError(f"the index directory must be local (it is memory-mapped), not {out}")
    sources = discover(root)
    os.makedirs(out, exist_ok=True)
    manifest: dict[str, Any] = {
        "version": 1,
        "layout": sources.layout,
        "root": _relative(root, out),
        "metadata": METADATA_FILE,
        "clip": dataset_clip_model(root),
        "indices": {},
    }
    tmp = os.path.join(out, METADATA_FILE + ".tmp")
    manifest["count"] = write_metadata(sources, tmp, lambda n: progress("metadata", n, 0))
    os.replace(tmp, os.path.join(out, METADATA_FILE))
    link_metadata_folder(out)
    for modality in ("image", "text") if config.text else ("image",):
        files = sources.npy_files(modality)
        store = EmbeddingStore(files)
        if store.count != manifest["count"]:
            raise IndexInputError(f"{store.count} {modality} vectors but {manifest['count']} metadata rows")
        entry = build_one(store, modality, out, config, progress)
        entry["embeddings"] = [_relative(f, out) for f in files]
        manifest["indices"][modality] = entry
    _write_json(os.path.join(out, INDEX_JSON), _without_measurements(manifest))
    return manifest


def link_metadata_folder(out: str) -> None:
    """`out/metadata/metadata.arrow`: a relative link to the metadata file, where clip-retrieval's back end
    looks for it (its Arrow provider reads every file under `metadata/`); the file is not copied."""
    folder = os.path.join(out, METADATA_FOLDER)
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, METADATA_FILE)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.join(os.pardir, METADATA_FILE), link)


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
    if not is_local(recorded):
        return str(recorded)
    return os.path.normpath(os.path.join(os.path.abspath(index_dir), recorded))


def _write_json(path: str, payload: dict[str, Any]) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(path + ".tmp", path)


def sources_of(root: str) -> Sources:
    """The embedding shards `build_index` would read (for a dry run)."""
    return discover(root)
